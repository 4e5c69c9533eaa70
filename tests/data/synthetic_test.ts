import { ok as assert, strictEqual as assertEquals } from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  SAMPLE_CORPUS_FILE,
  SAMPLE_DIR,
  SAMPLE_META_FILE,
  SAMPLE_REVIEWS_FILE,
  sampleFiles,
} from "../../src/data/sample_files.ts";
import { generateWorld, metaJsonl, reviewsJsonl, SAMPLE_CATEGORY } from "../../src/data/synthetic.ts";
import { FOLLOW_UPS, TIERS } from "../../src/data/synthetic_catalog.ts";
import { CORPUS_SEPARATOR } from "../../src/data/sample_corpus.ts";
import { preprocess } from "../../src/data/preprocess.ts";
import { readDataset } from "../../src/data/dataset.ts";

const MB = 1024 * 1024;
const fresh = sampleFiles();
const committed = (name: string) => join(SAMPLE_DIR, name);

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function lines(text: string): Record<string, unknown>[] {
  return text.trimEnd().split("\n").map((line) => JSON.parse(line));
}

Deno.test("sampleFiles() regenerates the committed data/sample files byte for byte", async () => {
  for (const name of [SAMPLE_REVIEWS_FILE, SAMPLE_META_FILE, SAMPLE_CORPUS_FILE]) {
    const onDisk = await Deno.readFile(committed(name));
    assertEquals(
      await sha256(new TextEncoder().encode(fresh[name])),
      await sha256(onDisk),
      `${name} differs from a fresh generation: run "deno task r2ec sample" and commit`,
    );
  }
});

Deno.test("generateWorld() gives the same world for a seed and another one for another seed", () => {
  const a = generateWorld({ seed: 5, users: 60 });
  const b = generateWorld({ seed: 5, users: 60 });
  const c = generateWorld({ seed: 6, users: 60 });
  assertEquals(reviewsJsonl(a, 5), reviewsJsonl(b, 5));
  assertEquals(metaJsonl(a), metaJsonl(b));
  assert(metaJsonl(a) !== metaJsonl(c));
});

Deno.test("the committed sample stays within its size budget", () => {
  const raw = fresh[SAMPLE_REVIEWS_FILE].length + fresh[SAMPLE_META_FILE].length;
  assert(raw <= 2 * MB, `reviews + meta are ${raw} bytes`);
  assert(new TextEncoder().encode(fresh[SAMPLE_CORPUS_FILE]).length <= 1.5 * MB);
  const items = lines(fresh[SAMPLE_META_FILE]).length;
  assert(items >= 500 && items <= 2000, `${items} items`);
  const users = new Set(lines(fresh[SAMPLE_REVIEWS_FILE]).map((review) => review.user_id)).size;
  assert(users >= 2000, `${users} users`);
});

Deno.test("the sample review and meta lines have the Amazon 2023 fields and types", () => {
  const meta = lines(fresh[SAMPLE_META_FILE]);
  const asins = new Set(meta.map((item) => item.parent_asin));
  assertEquals(asins.size, meta.length);
  for (const item of meta) {
    assert(typeof item.parent_asin === "string" && /^B0[A-Z0-9]{8}$/.test(item.parent_asin));
    assert(Array.isArray(item.description) && item.description.every((p) => typeof p === "string"));
    assert(typeof item.average_rating === "number" && Number.isInteger(item.rating_number));
  }
  const reviewLines = fresh[SAMPLE_REVIEWS_FILE].trimEnd().split("\n");
  assert(reviewLines.every((line) => /^\{"rating": [1-5]\.0, "title": /.test(line)), "ratings print as 5.0");
  const pairs = new Set<string>();
  for (const review of reviewLines.map((line) => JSON.parse(line))) {
    assert(asins.has(review.parent_asin), `review of unknown item ${review.parent_asin}`);
    assert(Number.isInteger(review.timestamp) && review.timestamp > Date.UTC(2020, 0, 1));
    assert(typeof review.user_id === "string" && typeof review.text === "string");
    const pair = `${review.user_id} ${review.parent_asin}`;
    assert(!pairs.has(pair), `user reviews an item twice: ${pair}`);
    pairs.add(pair);
  }
});

Deno.test("the sample exercises the item filters and the time window", () => {
  const meta = lines(fresh[SAMPLE_META_FILE]);
  assert(meta.some((item) => item.price === null), "an item without price");
  assert(meta.some((item) => typeof item.price === "string" && Number.isNaN(Number(item.price))));
  assert(meta.some((item) => typeof item.title === "string" && item.title.split(" ").length > 20));
  assert(meta.some((item) => typeof item.title === "string" && item.title.includes("&amp;")));
  assert(meta.some((item) => Array.isArray(item.description) && item.description.length === 0));
  assert(meta.some((item) => (item.description as string[]).join(" ").split(/\s+/).length > 100));
  const times = lines(fresh[SAMPLE_REVIEWS_FILE]).map((review) => review.timestamp as number);
  const inside = times.filter((t) => t >= Date.UTC(2022, 9, 1) && t <= Date.UTC(2023, 9, 1)).length;
  assert(inside / times.length > 0.6, "most reviews inside 2022-10..2023-10");
  assert(times.some((t) => t < Date.UTC(2022, 0, 1)), "some reviews from before 2022 widen the window");
  assert(times.some((t) => t > Date.UTC(2023, 9, 1)), "some reviews after the window");
});

Deno.test("the sample's ratings look like Amazon's: mostly 5, then 4, few low", () => {
  const counts = [0, 0, 0, 0, 0, 0];
  const reviews = lines(fresh[SAMPLE_REVIEWS_FILE]);
  for (const review of reviews) counts[review.rating as number]++;
  const share = (r: number) => counts[r] / reviews.length;
  assert(share(5) > 0.45 && share(5) < 0.75, `5 stars ${share(5)}`);
  assert(share(4) > share(3) && share(3) > 0.03 && share(1) > 0.02);
});

Deno.test("sample users buy the accessories of their instrument after it and keep to their tier", () => {
  const world = generateWorld();
  let afterMain = 0;
  let followUps = 0;
  let inTier = 0;
  let total = 0;
  for (const user of world.users) {
    user.reviews.forEach((review, i) => {
      total++;
      if (review.item.tier === user.tier) inTier++;
      const next = user.reviews[i + 1];
      if (!review.item.type.main || !next) return;
      afterMain++;
      if (FOLLOW_UPS[review.item.type.key].some(([key]) => key === next.item.type.key)) followUps++;
    });
  }
  assert(followUps / afterMain > 0.7, `accessory after an instrument ${followUps}/${afterMain}`);
  // A tier-blind choice would land in the user's tier about a third of the time.
  assert(inTier / total > 1.5 / TIERS.length, `purchases in the user's tier ${inTier}/${total}`);
});

Deno.test("the corpus holds item prompts and user prompts that end with <answer>", () => {
  const documents = fresh[SAMPLE_CORPUS_FILE].split(`\n${CORPUS_SEPARATOR}\n`).filter((doc) => doc !== "");
  const items = documents.filter((doc) =>
    doc.startsWith("Summarize key attributes of the following musical instrument")
  );
  const users = documents.filter((doc) =>
    doc.startsWith("Analyze in depth and finally recommend next musical instrument")
  );
  assert(items.length > 500 && users.length > 500, `${items.length} item and ${users.length} user documents`);
  assertEquals(items.length + users.length, documents.length);
  assert(users.every((doc) => doc.endsWith("<answer>") && doc.includes("(out of 5):\n")));
  assert(items.every((doc) => doc.includes("\nTitle: ") && doc.includes("\nDescription: ")));
});

Deno.test({
  name: "preprocess() turns the committed sample into a dataset with every split filled",
  ignore: !existsSync(committed(SAMPLE_REVIEWS_FILE)),
  async fn() {
    const out = join(await Deno.makeTempDir({ prefix: "r2ec-sample-" }), "ds");
    try {
      const { info } = await preprocess({
        reviews: committed(SAMPLE_REVIEWS_FILE),
        meta: committed(SAMPLE_META_FILE),
        category: SAMPLE_CATEGORY,
        out,
      });
      const dataset = await readDataset(out);
      assert(info.window_used.widenings > 0, "the window widens for lack of items");
      assert(dataset.items.length >= 500, `${dataset.items.length} items`);
      assert(dataset.train.length > 2000 && dataset.valid.length > 200 && dataset.test.length > 200);
      for (const reason of ["meta.price_not_numeric", "meta.title_too_long", "meta.title_missing"]) {
        assert((info.drops[reason]?.count ?? 0) > 0, `no drop for ${reason}`);
      }
      const malformed = Object.keys(info.drops).filter((reason) =>
        /json|type|malformed|missing_field/i.test(reason)
      );
      assertEquals(malformed.join(", "), "");
    } finally {
      await Deno.remove(join(out, ".."), { recursive: true });
    }
  },
});
