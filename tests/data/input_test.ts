/** Reading inputs: formats detected from content, gzip from magic bytes, bad lines counted or fatal. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { detectFormat, reviewParser } from "../../src/data/amazon_formats.ts";
import { DropLog } from "../../src/data/drop_log.ts";
import { LineSource } from "../../src/data/lines.ts";
import { preprocess } from "../../src/data/preprocess.ts";
import { readRecords } from "../../src/data/record_reader.ts";
import { allSamples, cleanup, meta, review, run, tempDir, WIDE, writeLines } from "./helpers.ts";

async function gzipBytes(text: string): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("detectFormat() tells the five formats apart from fields and the CSV header", () => {
  assert.equal(detectFormat(review("u", "A", 1)), "amazon2023-reviews");
  assert.equal(detectFormat(meta("A")), "amazon2023-meta");
  assert.equal(
    detectFormat('{"reviewerID":"R","asin":"A","overall":5.0,"unixReviewTime":1}'),
    "amazon2018-reviews",
  );
  assert.equal(detectFormat('{"asin":"A","title":"T","price":"$1"}'), "amazon2018-meta");
  assert.equal(detectFormat("user_id,parent_asin,rating,timestamp"), "amazon2023-benchmark-csv");
  assert.equal(detectFormat("timestamp,rating,parent_asin,user_id,history"), "amazon2023-benchmark-csv");
  assert.equal(detectFormat('{"foo":1}'), undefined);
  assert.equal(detectFormat('{"user_id":'), undefined);
  assert.equal(detectFormat("a,b,c"), undefined);
});

Deno.test("reviewParser() names the missing or wrongly typed field", () => {
  const parse = reviewParser("amazon2023-reviews");
  assert.deepEqual(parse('{"parent_asin":"A","rating":5,"timestamp":1}'), {
    problem: "missing_field",
    detail: 'missing field "user_id"',
  });
  assert.equal(
    (parse('{"user_id":"u","parent_asin":"A","rating":"5","timestamp":1}') as { problem: string }).problem,
    "wrong_type",
  );
  assert.equal(
    (parse('{"user_id":"u","parent_asin":"A","rating":5,"timestamp":1.5}') as { problem: string }).problem,
    "wrong_type",
  );
  assert.equal((parse("[1]") as { problem: string }).problem, "not_an_object");
});

Deno.test("LineSource detects gzip from the bytes, not the name, and hashes the stored bytes", async () => {
  const dir = await tempDir();
  const text = "a\r\nb\n\nlast";
  const gz = await gzipBytes(text);
  await Deno.writeFile(join(dir, "plain.gz"), new TextEncoder().encode(text));
  await Deno.writeFile(join(dir, "packed.jsonl"), gz);
  for (
    const [name, gzip, bytes] of [["plain.gz", false, new TextEncoder().encode(text)], [
      "packed.jsonl",
      true,
      gz,
    ]] as const
  ) {
    const source = new LineSource(join(dir, name));
    const lines: string[] = [];
    for await (const batch of source.batches()) lines.push(...batch);
    assert.deepEqual(lines, ["a", "b", "", "last"]);
    assert.equal(source.gzip, gzip);
    assert.equal(source.lines, 4);
    assert.equal(source.sha256, await sha256Hex(bytes));
  }
  await cleanup(dir);
});

Deno.test("preprocess() gives the same dataset from gzip inputs named like plain files", async () => {
  const reviews = [
    review("u1", "A", 1e12),
    review("u1", "B", 1e12 + 1),
    review("u2", "A", 1e12 + 2),
    review("u2", "B", 1e12 + 3),
  ];
  const metas = [meta("B"), meta("A")];
  const plain = await run(reviews, metas, WIDE);
  const dir = await tempDir();
  await Deno.writeFile(join(dir, "reviews.jsonl"), await gzipBytes(reviews.join("\n")));
  await Deno.writeFile(join(dir, "meta.json"), await gzipBytes(metas.join("\n")));
  const gz = await preprocess({
    reviews: join(dir, "reviews.jsonl"),
    meta: join(dir, "meta.json"),
    category: "T",
    out: join(dir, "out"),
    ...WIDE,
  });
  assert.equal(gz.info.sources.reviews.gzip, true);
  assert.equal(gz.info.sources.meta.gzip, true);
  assert.deepEqual(gz.info.counts, plain.result.info.counts);
  assert.equal(
    await Deno.readTextFile(join(dir, "out", "test.jsonl")),
    await Deno.readTextFile(join(plain.dir, "out", "test.jsonl")),
  );
  await cleanup(dir);
  await cleanup(plain.dir);
});

Deno.test("preprocess() reads the benchmark CSV with its header and quoted cells", async () => {
  const dir = await tempDir();
  const csv = await writeLines(dir, "r.csv", [
    "user_id,parent_asin,rating,timestamp",
    "u1,A,5.0,1000000000000",
    '"u1",B,4.0,1000000000001',
    "u1,A,oops,1000000000002",
    "u1,A,3.0",
  ]);
  const m = await writeLines(dir, "m.jsonl", [meta("A"), meta("B")]);
  const r = await preprocess({ reviews: csv, meta: m, category: "T", out: join(dir, "out"), ...WIDE });
  assert.equal(r.info.sources.reviews.format, "amazon2023-benchmark-csv");
  assert.equal(r.info.counts.reviews, 2);
  assert.deepEqual(r.info.drops["reviews.wrong_type"].first.map((p) => p.split(":").at(-1)), ["4"]);
  assert.equal(r.info.drops["reviews.bad_csv_row"].count, 1);
  await cleanup(dir);
});

Deno.test("preprocess() reads Amazon 2018 files: asin ids, seconds times, $ prices", async () => {
  const dir = await tempDir();
  const r2018 = (user: string, asin: string, seconds: number) =>
    JSON.stringify({ overall: 4.0, reviewerID: user, asin, unixReviewTime: seconds, reviewText: "ok" });
  const reviews = await writeLines(dir, "Cards_5.json", [
    r2018("R1", "A", 1_600_000_000),
    r2018("R1", "B", 1_600_000_100),
  ]);
  const metas = await writeLines(dir, "meta_Cards.json", [
    JSON.stringify({ asin: "A", title: "Card A", price: "$1,000.00", description: ["d"] }),
    JSON.stringify({ asin: "B", title: "Card B", price: "$25.00", imageURL: ["x"] }),
  ]);
  const r = await preprocess({ reviews, meta: metas, category: "Cards", out: join(dir, "out"), ...WIDE });
  assert.equal(r.info.sources.reviews.format, "amazon2018-reviews");
  assert.equal(r.info.sources.meta.format, "amazon2018-meta");
  const out = (await Deno.readTextFile(join(dir, "out", "train.jsonl"))) +
    (await Deno.readTextFile(join(dir, "out", "test.jsonl")));
  const sample = JSON.parse(out.trim().split("\n")[0]);
  assert.deepEqual(sample.history_timestamp, [1_600_000_000_000]);
  assert.equal(sample.timestamp, 1_600_000_100_000);
  const items = (await Deno.readTextFile(join(dir, "out", "items.jsonl"))).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.deepEqual(items.map((i) => [i.parent_asin, i.price, "imageURL" in i]), [["A", 1000, false], [
    "B",
    25,
    false,
  ]]);
  await cleanup(dir);
});

Deno.test("preprocess() counts bad review lines by reason with their line numbers", async () => {
  const lines = [
    "garbage that is not json",
    review("u1", "A", 1e12),
    '{"user_id": "u1", "parent_asin": "B", "rating": 5,',
    '{"parent_asin": "B", "rating": 5, "timestamp": 1000000000001}',
    '{"user_id": "u1", "parent_asin": "B", "rating": "5", "timestamp": 1000000000001}',
    "",
    review("u1", "B", 1e12 + 1),
  ];
  const { result, ds, dir } = await run(lines, [meta("A"), meta("B")], WIDE);
  const lineOf = (reason: string) => result.info.drops[reason].first.map((p) => Number(p.split(":").at(-1)));
  assert.deepEqual(lineOf("reviews.unrecognized_line"), [1]);
  assert.deepEqual(lineOf("reviews.malformed_json"), [3]);
  assert.deepEqual(lineOf("reviews.missing_field"), [4]);
  assert.deepEqual(lineOf("reviews.wrong_type"), [5]);
  assert.equal(result.info.sources.reviews.lines, 7);
  assert.equal(result.info.sources.reviews.records, 2);
  assert.equal(allSamples(ds).length, 1);
  await cleanup(dir);
});

Deno.test("preprocess() --strict stops at the first bad line naming file:line and the field", async () => {
  const lines = [review("u1", "A", 1e12), '{"user_id":"u1","parent_asin":"B","rating":5}', "{bad"];
  await assert.rejects(
    () => run(lines, [meta("A"), meta("B")], { ...WIDE, strict: true }),
    /reviews\.jsonl:2: missing field "timestamp" \(reviews\.missing_field\)$/,
  );
  const duplicate = [review("u1", "A", 1e12), review("u1", "A", 1e12)];
  await assert.rejects(
    () => run(duplicate, [meta("A")], { ...WIDE, strict: true }),
    /reviews\.jsonl:2: same user_id, parent_asin and timestamp as line 1 \(reviews\.duplicate_review\)$/,
  );
});

Deno.test("readRecords() rejects an empty file, an unknown format and a file of the other kind", async () => {
  const dir = await tempDir();
  const log = new DropLog(false);
  const empty = await writeLines(dir, "empty.jsonl", ["", "  "]);
  await assert.rejects(() => readRecords(empty, "reviews", log, () => {}), /empty\.jsonl: empty file$/);
  const unknown = await writeLines(dir, "u.jsonl", ['{"a":1}', '{"b":2}']);
  await assert.rejects(() => readRecords(unknown, "meta", log, () => {}), /u\.jsonl: unknown format/);
  const metaFile = await writeLines(dir, "m.jsonl", [meta("A")]);
  await assert.rejects(
    () => readRecords(metaFile, "reviews", log, () => {}),
    /m\.jsonl:1: this is a amazon2023-meta file, expected reviews$/,
  );
  await cleanup(dir);
});

Deno.test("preprocess() refuses an existing output unless forced, then replaces it whole", async () => {
  const reviews = [review("u1", "A", 1e12), review("u1", "B", 1e12 + 1)];
  const { dir } = await run(reviews, [meta("A"), meta("B")], WIDE);
  const options = {
    reviews: join(dir, "reviews.jsonl"),
    meta: join(dir, "meta.jsonl"),
    category: "T",
    out: join(dir, "out"),
    ...WIDE,
  };
  await Deno.writeTextFile(join(dir, "out", "stale.txt"), "old");
  await assert.rejects(() => preprocess(options), /already exists \(use --force to replace it\)$/);
  await preprocess({ ...options, force: true });
  assert.deepEqual((await Array.fromAsync(Deno.readDir(join(dir, "out")))).map((e) => e.name).sort(), [
    "dataset.json",
    "items.jsonl",
    "test.jsonl",
    "train.jsonl",
    "valid.jsonl",
  ]);
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
    "meta.jsonl",
    "out",
    "reviews.jsonl",
  ]);
  await cleanup(dir);
});

Deno.test("preprocess() leaves no output and no temp directory when the input is bad", async () => {
  const dir = await tempDir();
  const reviews = await writeLines(dir, "r.jsonl", ['{"x":1}']);
  const metas = await writeLines(dir, "m.jsonl", [meta("A")]);
  await assert.rejects(
    () => preprocess({ reviews, meta: metas, category: "T", out: join(dir, "out") }),
    /unknown format/,
  );
  assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), [
    "m.jsonl",
    "r.jsonl",
  ]);
  await assert.rejects(
    () => preprocess({ reviews: join(dir, "nope.jsonl"), meta: metas, category: "T", out: join(dir, "out") }),
    /--reviews file not found: .*nope\.jsonl$/,
  );
  await assert.rejects(
    () => preprocess({ reviews, meta: metas, category: "T", out: join(dir, "m.jsonl", "out") }),
    /^OutputError: Cannot write output .*Not a directory/,
  );
  await cleanup(dir);
});
