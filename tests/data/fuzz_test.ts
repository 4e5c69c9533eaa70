/** Random, truncated and mixed lines: preprocessing never crashes and keeps every valid line. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { detectFormat, metaParser, reviewParser } from "../../src/data/amazon_formats.ts";
import { preprocess } from "../../src/data/preprocess.ts";
import { SeededRng } from "../../src/data/rng.ts";
import { allSamples, cleanup, meta, review, run, tempDir, WIDE } from "./helpers.ts";

const CHARS = 'ab{}[]":,\\ 0123456789.-eE\t\u00e9\u2028\ud83d\ude00nulltrue';

function garbage(rng: SeededRng): string {
  return Array.from({ length: 1 + rng.int(60) }, () => rng.pick([...CHARS])).join("");
}

type Kind =
  | "valid"
  | "unknown_item"
  | "truncated"
  | "garbage"
  | "wrong_type"
  | "meta"
  | "not_object"
  | "blank";

interface Fuzzed {
  lines: string[];
  kinds: Kind[];
  valid: { user: string; asin: string; time: number }[];
}

function fuzzLines(seed: number, count: number): Fuzzed {
  const rng = new SeededRng(seed);
  const fuzzed: Fuzzed = { lines: [], kinds: [], valid: [] };
  const kinds: [Kind, number][] = [
    ["valid", 40],
    ["unknown_item", 5],
    ["truncated", 15],
    ["garbage", 15],
    ["wrong_type", 10],
    ["meta", 5],
    ["not_object", 5],
    ["blank", 5],
  ];
  for (let i = 0; i < count; i++) {
    // Line 2 is a valid review, so the format is known before any meta-looking line.
    const kind: Kind = i === 1
      ? "valid"
      : i === 0
      ? "garbage"
      : kinds[rng.weightedIndex(kinds.map(([, w]) => w))][0];
    const user = `U${rng.int(60)}`;
    const time = Date.UTC(2020, 0, 1) + i * 1000 + rng.int(1000); // unique: no duplicate reviews
    const asin = `M${rng.int(20)}`;
    const line = review(user, asin, time, 1 + rng.int(5));
    let text: string;
    switch (kind) {
      case "valid":
        fuzzed.valid.push({ user, asin, time });
        text = line;
        break;
      case "unknown_item":
        text = review(user, "NOPE", time);
        break;
      case "truncated":
        text = line.slice(0, 1 + rng.int(line.length - 1));
        break;
      case "garbage":
        text = garbage(rng);
        break;
      case "wrong_type": {
        const o = JSON.parse(line);
        const wrong: Record<string, unknown[]> = {
          user_id: [null, 7, [], {}, true],
          parent_asin: [null, 7, ["M1"], {}],
          rating: [null, "5", [], true],
          timestamp: [null, "7", 1.5, [], true],
        };
        const field = rng.pick(Object.keys(wrong));
        o[field] = rng.pick(wrong[field]);
        text = JSON.stringify(o);
        break;
      }
      case "meta":
        text = meta(asin);
        break;
      case "not_object":
        text = rng.pick(["[1,2]", "42", "null", '"text"', "true"]);
        break;
      case "blank":
        text = rng.pick(["", "   ", "\t"]);
        break;
    }
    fuzzed.lines.push(text);
    fuzzed.kinds.push(kind);
  }
  return fuzzed;
}

const METAS = Array.from({ length: 20 }, (_, i) => meta(`M${i}`));

Deno.test("parsers never throw on random, truncated and mixed lines", () => {
  const { lines } = fuzzLines(1, 3000);
  const parsers = [
    reviewParser("amazon2023-reviews"),
    reviewParser("amazon2018-reviews"),
    metaParser("amazon2023-meta"),
  ];
  for (const line of lines) {
    detectFormat(line);
    for (const parse of parsers) parse(line);
  }
});

for (const seed of [2, 3, 4]) {
  Deno.test(`preprocess() keeps every valid line among random, truncated and mixed lines (seed ${seed})`, async () => {
    const fuzzed = fuzzLines(seed, 2000);
    const { result, ds, dir } = await run(fuzzed.lines, METAS, WIDE);
    const info = result.info;
    const count = (kind: Kind) => fuzzed.kinds.filter((k) => k === kind).length;
    assert.equal(info.counts.reviews, fuzzed.valid.length);
    assert.equal(info.sources.reviews.records, count("valid") + count("unknown_item"));
    assert.equal(info.drops["reviews.item_not_in_meta"]?.count ?? 0, count("unknown_item"));
    const badLines = Object.entries(info.drops)
      .filter(([reason]) => reason.startsWith("reviews.") && reason !== "reviews.item_not_in_meta")
      .reduce((sum, [, d]) => sum + d.count, 0);
    const nonBlankInvalid = fuzzed.lines.filter((l, i) =>
      l.trim() !== "" && fuzzed.kinds[i] !== "valid" && fuzzed.kinds[i] !== "unknown_item"
    ).length;
    assert.equal(badLines, nonBlankInvalid);
    // Every valid review of a user with two or more of them shows up in the samples.
    const perUser = new Map<string, number>();
    for (const v of fuzzed.valid) {
      perUser.set(v.user, (perUser.get(v.user) ?? 0) + 1);
    }
    const expected = new Set(
      fuzzed.valid.filter((v) =>
        perUser.get(v.user)! >= 2
      ).map((v) => `${v.user}|${v.asin}|${v.time}`),
    );
    const seen = new Set<string>();
    for (const s of allSamples(ds)) {
      seen.add(`${s.user_id}|${s.item_asin}|${s.timestamp}`);
      s.item_asins.forEach((a, j) => seen.add(`${s.user_id}|${a}|${s.history_timestamp[j]}`));
    }
    assert.deepEqual([...seen].sort(), [...expected].sort());
    await cleanup(dir);
  });
}

Deno.test("preprocess() reports a truncated gzip file in one line instead of crashing", async () => {
  const dir = await tempDir();
  const text = fuzzLines(5, 2000).lines.join("\n");
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  const gz = new Uint8Array(await new Response(stream).arrayBuffer());
  await Deno.writeFile(join(dir, "r.jsonl.gz"), gz.subarray(0, gz.length >> 1));
  await Deno.writeTextFile(join(dir, "m.jsonl"), METAS.join("\n"));
  await assert.rejects(
    () =>
      preprocess({
        reviews: join(dir, "r.jsonl.gz"),
        meta: join(dir, "m.jsonl"),
        category: "T",
        out: join(dir, "o"),
        ...WIDE,
      }),
    (e: Error) =>
      /r\.jsonl\.gz: cannot decompress gzip after line \d+/.test(e.message) && !e.message.includes("\n"),
  );
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
    "m.jsonl",
    "r.jsonl.gz",
  ]);
  await cleanup(dir);
});
