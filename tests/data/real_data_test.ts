/**
 * Preprocessing the real Amazon files in ../shared/data. Expected counts and sample digests come from an
 * independent plain-Python implementation of rrec-spec §A (tests/data/oracle/preprocess_oracle.py, with
 * r2ec's duplicate-review drop) run on the same files; the invariants are checked on the output itself.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Dataset, type DatasetInfo, readDataset } from "../../src/data/dataset.ts";
import { preprocess, type PreprocessOptions } from "../../src/data/preprocess.ts";
import { allSamples, cleanup, tempDir } from "./helpers.ts";

const SHARED = "../shared/data";
const GIFT_CARDS = join(SHARED, "amazon2018-gift-cards");
const UCSD_2023 = join(SHARED, "amazon2023-ucsd");

/** Counts, the window start, and the first 16 hex digits of sha256 over "user|time|history ids|item id\n" per sample. */
type Oracle = Omit<DatasetInfo["counts"], "k_core_passes"> & { start: string; digest: string };

async function sampleDigest(ds: Dataset): Promise<string> {
  const text = allSamples(ds).map((s) =>
    `${s.user_id}|${s.timestamp}|${s.history_item_id.join(",")}|${s.item_id}\n`
  )
    .join("");
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(hash.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256File(path: string): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", await Deno.readFile(path)));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Properties every dataset must have, whatever the input. */
function checkInvariants(ds: Dataset, window: number): void {
  const { info, items } = ds;
  assert.deepEqual(items.map((i) => i.item_id), Array.from({ length: items.length }, (_, r) => r + 1));
  assert.equal(info.counts.items, items.length);
  const samples = allSamples(ds);
  const S = samples.length;
  assert.equal(info.counts.samples, S);
  assert.deepEqual([ds.train.length, ds.valid.length, ds.test.length], [
    Math.floor(0.8 * S),
    Math.floor(0.9 * S) - Math.floor(0.8 * S),
    S - Math.floor(0.9 * S),
  ]);
  const users = new Set<string>();
  samples.forEach((s, k) => {
    assert.equal(s.interaction_id, k);
    if (k > 0) assert.ok(samples[k - 1].timestamp <= s.timestamp, "samples are in target-time order");
    assert.ok(s.history_item_id.length >= 1 && s.history_item_id.length <= window);
    const h = s.history_item_id.length;
    for (const column of [s.item_asins, s.history_item_title, s.history_rating, s.history_timestamp]) {
      assert.equal(column.length, h);
    }
    s.history_timestamp.forEach((t, j) => {
      assert.ok(t <= s.timestamp, "history is not after the target");
      if (j > 0) assert.ok(s.history_timestamp[j - 1] <= t, "history is oldest first");
    });
    for (
      const [id, asin, title] of [
        ...s.history_item_id.map((id, j) => [id, s.item_asins[j], s.history_item_title[j]] as const),
        [s.item_id, s.item_asin, s.item_title] as const,
      ]
    ) {
      assert.ok(id >= 1 && id <= items.length, `id ${id} in 1..N (0 is the pad)`);
      assert.equal(items[id - 1].parent_asin, asin);
      assert.equal(items[id - 1].title, title);
    }
    users.add(s.user_id);
  });
  assert.ok(users.size <= info.counts.users);
}

async function runReal(options: Omit<PreprocessOptions, "out" | "category">, oracle: Oracle): Promise<void> {
  const dir = await tempDir();
  const out = join(dir, "ds");
  const result = await preprocess({ ...options, category: "Real", out });
  const ds = await readDataset(out);
  checkInvariants(ds, 20);
  const { start, digest, ...counts } = oracle;
  assert.deepEqual({ ...result.info.counts, k_core_passes: undefined }, {
    ...counts,
    k_core_passes: undefined,
  });
  assert.equal(result.info.window_used.start, start);
  assert.equal(await sampleDigest(ds), digest);
  assert.equal(result.info.sources.reviews.sha256, await sha256File(options.reviews));
  assert.equal(result.info.sources.meta.sha256, await sha256File(options.meta));
  await cleanup(dir);
}

const skipGift = !existsSync(GIFT_CARDS);
const skip2023 = !existsSync(UCSD_2023);
if (skipGift || skip2023) console.warn(`skipping real-data tests: ${SHARED} is absent`);

Deno.test({
  name: "preprocess() on real Amazon 2018 Gift Cards matches the independent implementation",
  ignore: skipGift,
  fn: () =>
    runReal({
      reviews: join(GIFT_CARDS, "Gift_Cards_5.json"),
      meta: join(GIFT_CARDS, "meta_Gift_Cards.json"),
      start: "2000-01",
      minItems: 1,
    }, {
      users: 445,
      items: 107,
      reviews: 2516,
      samples: 2071,
      train: 1656,
      valid: 207,
      test: 208,
      start: "2000-01-01",
      digest: "cbc436ea78388487",
    }),
});

Deno.test({
  name: "preprocess() on real Gift Cards widens the window and runs K=2 like the independent implementation",
  ignore: skipGift,
  fn: () =>
    runReal({
      reviews: join(GIFT_CARDS, "Gift_Cards_5.json"),
      meta: join(GIFT_CARDS, "meta_Gift_Cards.json"),
      start: "2018-01",
      end: "2019-01",
      k: 2,
      minItems: 100,
    }, {
      users: 249,
      items: 100,
      reviews: 1173,
      samples: 924,
      train: 739,
      valid: 92,
      test: 93,
      start: "2017-01-01",
      digest: "713bbf9b57793e88",
    }),
});

const ORACLE_2023: Record<string, Oracle> = {
  Video_Games: {
    users: 27,
    items: 64,
    reviews: 67,
    samples: 40,
    train: 32,
    valid: 4,
    test: 4,
    start: "1996-01-01",
    digest: "28be5415321eb666",
  },
  CDs_and_Vinyl: {
    users: 30,
    items: 138,
    reviews: 138,
    samples: 108,
    train: 86,
    valid: 11,
    test: 11,
    start: "1996-01-01",
    digest: "69840f63918ccf9b",
  },
  Musical_Instruments: {
    users: 27,
    items: 71,
    reviews: 72,
    samples: 45,
    train: 36,
    valid: 4,
    test: 5,
    start: "1996-01-01",
    digest: "8494ddb90ea9dd7e",
  },
  Software: {
    users: 29,
    items: 115,
    reviews: 125,
    samples: 96,
    train: 76,
    valid: 10,
    test: 10,
    start: "1996-01-01",
    digest: "c28c96976ae382db",
  },
  Kindle_Store: {
    users: 30,
    items: 130,
    reviews: 132,
    samples: 102,
    train: 81,
    valid: 10,
    test: 11,
    start: "1996-01-01",
    digest: "de83bce480024bdb",
  },
};

for (const [category, oracle] of Object.entries(ORACLE_2023)) {
  Deno.test({
    name: `preprocess() on real Amazon 2023 ${category} matches the independent implementation`,
    ignore: skip2023,
    fn: () =>
      runReal({
        reviews: join(UCSD_2023, `${category}.jsonl`),
        meta: join(UCSD_2023, `meta_${category}.jsonl`),
        start: "1996-01",
        minItems: 1,
      }, oracle),
  });
}

Deno.test({
  name: "preprocess() runs on every real Amazon 2023 category with valid output",
  ignore: skip2023,
  fn: async () => {
    const dir = await tempDir();
    for (const entry of [...Deno.readDirSync(UCSD_2023)].filter((e) => !e.name.startsWith("meta_"))) {
      const category = entry.name.replace(/\.jsonl$/, "");
      const out = join(dir, category);
      const result = await preprocess({
        reviews: join(UCSD_2023, entry.name),
        meta: join(UCSD_2023, `meta_${category}.jsonl`),
        category,
        out,
        start: "1996-01",
        minItems: 1,
      });
      checkInvariants(await readDataset(out), 20);
      assert.equal(result.info.sources.meta.format, "amazon2023-meta");
      assert.equal(
        Object.keys(result.info.drops).filter((r) =>
          !/item_dropped|item_not_in_meta|price_not_numeric|title_|item_without|outside_window/.test(r)
        ).length,
        0,
      );
    }
    await cleanup(dir);
  },
});

const ORACLE_2023_DEFAULTS: Record<string, Oracle> = {
  Video_Games: {
    users: 27,
    items: 62,
    reviews: 65,
    samples: 38,
    train: 30,
    valid: 4,
    test: 4,
    start: "2012-10-01",
    digest: "14bfccc09e07c35f",
  },
  Musical_Instruments: {
    users: 27,
    items: 67,
    reviews: 68,
    samples: 41,
    train: 32,
    valid: 4,
    test: 5,
    start: "2015-10-01",
    digest: "bf33976ad5420529",
  },
};

for (const [category, oracle] of Object.entries(ORACLE_2023_DEFAULTS)) {
  Deno.test({
    name:
      `preprocess() on real Amazon 2023 ${category} with the reference defaults widens like the independent implementation`,
    ignore: skip2023,
    fn: () =>
      runReal({
        reviews: join(UCSD_2023, `${category}.jsonl`),
        meta: join(UCSD_2023, `meta_${category}.jsonl`),
      }, oracle),
  });
}
