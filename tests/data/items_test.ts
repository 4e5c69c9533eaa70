/** rrec-spec §A.2: the item rules, in their order, and the kept fields. */
import assert from "node:assert/strict";
import { cleanItem, descriptionList, rewriteTitle } from "../../src/data/items.ts";
import { cleanup, meta, review, run, WIDE } from "./helpers.ts";

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");
const clean2023 = (fields: Record<string, unknown>) =>
  cleanItem({ parent_asin: "B1", fields }, "amazon2023-meta");

Deno.test("cleanItem() drops an item by the first failing rule, in the reference's order", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ price: 1 }, "title_missing"],
    [{ title: null, price: 1 }, "title_missing"],
    [{ title: 7, price: 1 }, "title_not_string"],
    [{ title: 'A <span id="x">B</span>', price: null }, "title_span"],
    [{ title: words(21), price: null }, "title_too_long"],
    [{ title: `${words(10)}  ${words(10)}`, price: 1 }, "title_too_long"], // 20 words + 1 empty token
    [{ title: '"X"', price: null }, "title_too_short"],
    [{ title: " &quot;&quot; ", price: 1 }, "title_too_short"],
    [{ title: "Good", price: null }, "price_not_numeric"],
    [{ title: "Good" }, "price_not_numeric"],
    [{ title: "Good", price: "1,000" }, "price_not_numeric"],
    [{ title: "Good", price: [1] }, "price_not_numeric"],
  ];
  for (const [fields, reason] of cases) {
    assert.deepEqual(clean2023(fields), { drop: reason }, JSON.stringify(fields));
  }
});

Deno.test("cleanItem() keeps a 20-word title and string or numeric prices", () => {
  assert.equal((clean2023({ title: words(20), price: 1 }) as { title: string }).title, words(20));
  assert.equal((clean2023({ title: "Good", price: " 12.5 " }) as { price: number }).price, 12.5);
  assert.equal((clean2023({ title: "Good", price: 0 }) as { price: number }).price, 0);
});

Deno.test("rewriteTitle() replaces &quot; and &amp;, then strips spaces, then quotes", () => {
  assert.equal(rewriteTitle("  &quot;Drum &amp; Bass&quot;  "), "Drum & Bass");
  assert.equal(rewriteTitle('" padded "'), " padded ");
});

Deno.test("cleanItem() cleans string fields, keeps lists, defaults ratings to 0 and drops image fields", () => {
  const item = clean2023({
    main_category: "Musical&nbsp;Instruments",
    title: "Caf\u00e9 <b>Strings</b>",
    price: 5,
    store: "  Fender\n",
    features: ["<b>raw</b>"],
    images: ["http://x"],
    details: { Brand: "F" },
    subtitle: null,
  });
  assert.deepEqual(item, {
    parent_asin: "B1",
    title: "Caf  Strings",
    average_rating: 0,
    rating_number: 0,
    description: [],
    price: 5,
    main_category: "Musical Instruments",
    store: "Fender",
    features: ["<b>raw</b>"],
    details: '{"Brand":"F"}',
    subtitle: "",
  });
});

Deno.test("cleanItem() turns a non-list features into [] and a nan/none subtitle into an empty string", () => {
  const item = clean2023({ title: "Good", price: 1, features: "text", subtitle: "none" }) as Record<
    string,
    unknown
  >;
  assert.deepEqual(item.features, []);
  assert.equal(item.subtitle, "");
  assert.equal(
    (clean2023({ title: "Good", price: 1, subtitle: "Live" }) as Record<string, unknown>).subtitle,
    "Live",
  );
});

Deno.test("cleanItem() reads 2018 prices after removing $ and commas; a range is not numeric", () => {
  const clean2018 = (price: unknown) =>
    cleanItem({ parent_asin: "A", fields: { title: "Card", price } }, "amazon2018-meta");
  assert.equal((clean2018("$1,299.99") as { price: number }).price, 1299.99);
  assert.deepEqual(clean2018("$5.99 - $9.99"), { drop: "price_not_numeric" });
  assert.deepEqual(clean2018(""), { drop: "price_not_numeric" });
});

Deno.test("descriptionList() keeps file order, removes repeats, wraps a string and ignores other types", () => {
  assert.deepEqual(descriptionList(["b", "a", "b", 3, "c"]), ["b", "a", "c"]);
  assert.deepEqual(descriptionList("one"), ["one"]);
  assert.deepEqual(descriptionList({ a: 1 }), []);
  assert.deepEqual(descriptionList(undefined), []);
});

Deno.test("preprocess() counts each item rule's drops and keeps average_rating and rating_number", async () => {
  const metas = [
    meta("K1", { average_rating: 4.5, rating_number: 12, description: ["p1", "p2"] }),
    meta("T0", { title: undefined }),
    meta("T1", { title: null }),
    meta("T2", { title: "<span id='a'>x</span>" }),
    meta("T3", { title: words(21) }),
    meta("T4", { title: "X" }),
    meta("P1", { price: null }),
    meta("P2", { price: "n/a" }),
    meta("K2"),
  ];
  const reviews = ["K1", "T0", "T1", "T2", "T3", "T4", "P1", "P2", "K2", "ZZ"].map((a, i) =>
    review("u", a, 1e12 + i)
  );
  const { result, ds, dir } = await run(reviews, metas, WIDE);
  const drops = result.info.drops;
  assert.deepEqual(
    ["title_missing", "title_span", "title_too_long", "title_too_short", "price_not_numeric"].map((r) =>
      drops[`meta.${r}`].count
    ),
    [2, 1, 1, 1, 2],
  );
  assert.deepEqual(drops["meta.title_missing"].first.map((p) => p.split(":").at(-1)), ["2", "3"]);
  assert.equal(drops["reviews.item_dropped"].count, 7);
  assert.deepEqual(drops["reviews.item_not_in_meta"].first.map((p) => p.split(":").at(-1)), ["10"]);
  assert.deepEqual(ds.items.map((i) => [i.item_id, i.parent_asin, i.average_rating, i.rating_number]), [
    [1, "K1", 4.5, 12],
    [2, "K2", 0, 0],
  ]);
  assert.deepEqual(ds.items[0].description, ["p1", "p2"]);
  await cleanup(dir);
});
