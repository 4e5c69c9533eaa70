/** rrec-spec §A.3–§A.4 pinned on small hand-made inputs with counts and ids worked out by hand. */
import assert from "node:assert/strict";
import { allSamples, cleanup, meta, review, run, WIDE } from "./helpers.ts";

// Window widening (§A.3): the initial window 2022-10-01..2023-10-01 holds I1, I2, I4 (I4 exactly at
// the inclusive end), I3 is 2022-08-15, I5 is 1 ms after the end, I6 (2021-05-01) is the oldest review.
const WIDENING_REVIEWS = [
  review("u1", "I1", "2022-11-05T00:00:00"),
  review("u1", "I2", "2023-01-01T00:00:00"),
  review("u2", "I3", "2022-08-15T00:00:00"),
  review("u2", "I4", "2023-10-01T00:00:00"),
  review("u3", "I5", "2023-10-01T00:00:00.001"),
  review("u3", "I6", "2021-05-01T00:00:00"),
];
// Meta order differs from review order: ids follow meta order.
const WIDENING_META = ["I4", "I3", "I2", "I1", "I5", "I6"].map((a) => meta(a));

Deno.test("preprocess() keeps both window ends inclusive and widens 3 months once when that is enough", async () => {
  const { result, ds, dir } = await run(WIDENING_REVIEWS, WIDENING_META, { minItems: 4 });
  const info = result.info;
  // 3 items < 4 → start 2022-07-01 takes I3 in: 4 items.
  assert.deepEqual(info.window_used, { start: "2022-07-01", end: "2023-10-01", widenings: 1 });
  assert.equal(info.counts.items, 4);
  assert.equal(info.counts.reviews, 4);
  assert.equal(info.drops["reviews.outside_window"].count, 2);
  assert.deepEqual(ds.items.map((i) => [i.item_id, i.parent_asin]), [[1, "I4"], [2, "I3"], [3, "I2"], [
    4,
    "I1",
  ]]);
  assert.equal(result.warning, undefined);
  await cleanup(dir);
});

Deno.test("preprocess() stops widening once the start year is not after the oldest review's year", async () => {
  const { result, dir } = await run(WIDENING_REVIEWS, WIDENING_META, { minItems: 5 });
  // 2022-10 → 2022-07 → 2022-04 → 2022-01 → 2021-10: year 2021 is not > 2021, so I6 (2021-05) stays out.
  assert.deepEqual(result.info.window_used, { start: "2021-10-01", end: "2023-10-01", widenings: 4 });
  assert.equal(result.info.counts.items, 4);
  assert.match(result.warning ?? "", /only 4 items/);
  await cleanup(dir);
});

Deno.test("preprocess() with the default window drops reviews outside it and makes pairs only within users", async () => {
  const { result, ds, dir } = await run(WIDENING_REVIEWS, WIDENING_META, { minItems: 0 });
  assert.deepEqual(result.info.window_used, { start: "2022-10-01", end: "2023-10-01", widenings: 0 });
  // u1: I1 → I2 (one sample); u2 has only I4 left; I4 (id 1), I2 (id 2), I1 (id 3).
  assert.deepEqual(ds.items.map((i) => i.parent_asin), ["I4", "I2", "I1"]);
  const samples = allSamples(ds);
  assert.equal(samples.length, 1);
  assert.deepEqual(samples[0].history_item_id, [3]);
  assert.equal(samples[0].item_id, 2);
  assert.equal(result.info.counts.users, 2);
  await cleanup(dir);
});

Deno.test("preprocess() runs the K-core loop on snapshots until a pass removes nothing (K=2: 4 passes)", async () => {
  const t = (d: number) => `2023-01-${String(d).padStart(2, "0")}T00:00:00`;
  const reviews = [
    review("u1", "A", t(1)),
    review("u1", "B", t(2)),
    review("u2", "A", t(3)),
    review("u2", "B", t(4)),
    review("u3", "A", t(5)),
    review("u3", "C", t(6)),
    review("u4", "C", t(7)),
  ];
  // Pass 1: u4 has 1 review (C still has 2 in this snapshot) → u4 goes. Pass 2: C has 1 → u3's C goes.
  // Pass 3: u3 has 1 → u3's A goes. Pass 4: nothing. Removing users and items one after the other
  // would take 3 passes instead.
  const { result, ds, dir } = await run(reviews, ["A", "B", "C"].map((a) => meta(a)), { ...WIDE, k: 2 });
  assert.equal(result.info.counts.k_core_passes, 4);
  assert.equal(result.info.drops["reviews.k_core"].count, 3);
  assert.equal(result.info.counts.reviews, 4);
  assert.equal(result.info.counts.users, 2);
  assert.deepEqual(ds.items.map((i) => i.parent_asin), ["A", "B"]);
  assert.equal(result.info.drops["meta.item_without_selected_reviews"].count, 1);
  await cleanup(dir);
});

Deno.test("preprocess() with K=3 empties a table where no user has 3 reviews", async () => {
  const reviews = [review("u1", "A", 1e12), review("u1", "B", 1e12 + 1), review("u2", "A", 1e12 + 2)];
  const { result, dir } = await run(reviews, ["A", "B"].map((a) => meta(a)), { ...WIDE, k: 3 });
  assert.equal(result.info.counts.reviews, 0);
  assert.equal(result.info.counts.samples, 0);
  assert.equal(result.info.counts.k_core_passes, 2);
  await cleanup(dir);
});

Deno.test("preprocess() truncates histories to the last 20 items and ids are 1..N (pad 0 never used)", async () => {
  const asins = Array.from({ length: 23 }, (_, i) => `X${String(i).padStart(2, "0")}`);
  const base = Date.UTC(2023, 0, 1);
  const reviews = asins.map((a, i) => review("u1", a, base + i * 60_000, (i % 5) + 1));
  const { result, ds, dir } = await run(reviews, asins.map((a) => meta(a)), WIDE);
  const samples = allSamples(ds);
  assert.equal(samples.length, 22);
  assert.deepEqual(samples.map((s) => s.interaction_id), Array.from({ length: 22 }, (_, i) => i));
  // Target at position 20 has 20 history items (positions 0..19); position 22 has positions 2..21.
  assert.equal(samples[19].item_id, 21);
  assert.deepEqual(samples[19].history_item_id, Array.from({ length: 20 }, (_, i) => i + 1));
  assert.deepEqual(samples[21].history_item_id, Array.from({ length: 20 }, (_, i) => i + 3));
  assert.deepEqual(samples[21].item_asins, asins.slice(2, 22));
  assert.deepEqual(samples[21].history_rating, Array.from({ length: 20 }, (_, i) => ((i + 2) % 5) + 1));
  assert.deepEqual(
    samples[21].history_timestamp,
    Array.from({ length: 20 }, (_, i) => base + (i + 2) * 60_000),
  );
  assert.equal(samples[21].item_title, "Item X22");
  assert.deepEqual(samples[0].history_item_id, [1]);
  assert.ok(samples.every((s) => s.item_id > 0 && s.history_item_id.every((id) => id > 0)));
  assert.deepEqual(ds.items.map((i) => i.item_id), Array.from({ length: 23 }, (_, i) => i + 1));
  // 22 samples: train int(17.6) = 17, valid int(19.8) - 17 = 2, test 3.
  assert.deepEqual([ds.train.length, ds.valid.length, ds.test.length], [17, 2, 3]);
  assert.equal(result.info.pad_item_id, 0);
  await cleanup(dir);
});

Deno.test("preprocess() --window 5 keeps 5 history items", async () => {
  const asins = ["A", "B", "C", "D", "E", "F", "G"];
  const reviews = asins.map((a, i) => review("u1", a, 1e12 + i));
  const { ds, dir } = await run(reviews, asins.map((a) => meta(a)), { ...WIDE, window: 5 });
  assert.deepEqual(allSamples(ds).at(-1)!.item_asins, ["B", "C", "D", "E", "F"]);
  await cleanup(dir);
});

Deno.test("preprocess() splits S samples at int(0.8·S) and int(0.9·S)", async () => {
  for (const users of [1, 9, 10, 11, 19]) {
    // Each user has 2 reviews → 1 sample each; target times increase with the user.
    const reviews = Array.from({ length: users }, (_, u) => [
      review(`u${u}`, "A", 1e12 + u * 10),
      review(`u${u}`, "B", 1e12 + u * 10 + 1),
    ]).flat();
    const { ds, dir } = await run(reviews, [meta("A"), meta("B")], WIDE);
    const train = Math.floor(0.8 * users), valid = Math.floor(0.9 * users) - train;
    assert.deepEqual([ds.train.length, ds.valid.length, ds.test.length], [
      train,
      valid,
      users - train - valid,
    ]);
    assert.deepEqual(allSamples(ds).map((s) => s.user_id), Array.from({ length: users }, (_, u) => `u${u}`));
    await cleanup(dir);
  }
});

Deno.test("preprocess() breaks timestamp ties by file order within a user and by emission order across users", async () => {
  const T = 1e12;
  const reviews = [
    review("u2", "Q", T + 50), // u2 appears first, so its samples are emitted first
    review("u1", "R", T + 50),
    review("u1", "S", T + 100),
    review("u2", "P", T + 100),
    review("u3", "X", T + 70),
    review("u3", "Y", T + 70), // same time as X: X stays first
  ];
  const { ds, dir } = await run(reviews, ["P", "Q", "R", "S", "X", "Y"].map((a) => meta(a)), WIDE);
  const samples = allSamples(ds);
  assert.deepEqual(samples.map((s) => [s.user_id, s.item_asins, s.item_asin, s.interaction_id]), [
    ["u3", ["X"], "Y", 0],
    ["u2", ["Q"], "P", 1],
    ["u1", ["R"], "S", 2],
  ]);
  await cleanup(dir);
});

Deno.test("preprocess() drops a repeated (user, item, timestamp) review and counts it with its line", async () => {
  const reviews = [
    review("u1", "A", 1e12),
    review("u1", "B", 1e12 + 5),
    review("u1", "A", 1e12, 1), // duplicate of line 1 (rating differs: still the same review event)
    review("u1", "A", 1e12 + 9), // same user and item, another time: kept
  ];
  const { result, ds, dir } = await run(reviews, [meta("A"), meta("B")], WIDE);
  assert.equal(result.info.drops["reviews.duplicate_review"].count, 1);
  assert.match(result.info.drops["reviews.duplicate_review"].first[0], /reviews\.jsonl:3$/);
  assert.equal(result.info.counts.reviews, 3);
  assert.deepEqual(allSamples(ds).map((s) => s.item_asin), ["B", "A"]);
  assert.equal(allSamples(ds)[0].history_rating[0], 5);
  assert.ok(result.info.deviations.some((d) => /Duplicate reviews/.test(d.what)));
  await cleanup(dir);
});
