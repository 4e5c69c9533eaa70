/** `r2ec preprocess`: flags, report, exit codes and one-line errors. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { defaultOutDir } from "../../src/data/preprocess.ts";
import { cleanup, meta, review, tempDir, writeLines } from "./helpers.ts";
import { runCli } from "../cli/capture.ts";

/** `r2ec preprocess` argv for the given inputs, output and extra flags. */
function preprocessArgs(files: { reviews: string; meta: string }, out: string, ...extra: string[]): string[] {
  return [
    "preprocess",
    "--reviews",
    files.reviews,
    "--meta",
    files.meta,
    "--category",
    "Music",
    "--out",
    out,
    ...extra,
  ];
}

async function inputs(dir: string) {
  const reviews = await writeLines(dir, "r.jsonl", [
    review("u1", "A", "2023-01-01T00:00:00"),
    review("u1", "B", "2023-02-01T00:00:00"),
    "{broken",
  ]);
  return { reviews, meta: await writeLines(dir, "m.jsonl", [meta("A"), meta("B")]) };
}

Deno.test("r2ec preprocess writes the dataset and prints counts and drops by reason", async () => {
  const dir = await tempDir();
  const { reviews, meta } = await inputs(dir);
  const out = join(dir, "ds");
  const r = await runCli(preprocessArgs({ reviews, meta }, out, "--min-items", "1"));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /category Music: 1 users, 2 items, 2 reviews, 1 samples/);
  assert.match(r.out, /window used: 2022-10-01 \.\. 2023-10-01 \(0 widenings\)/);
  assert.match(r.out, /reviews\.malformed_json: 1 \(first at r\.jsonl:3\)/);
  const info = JSON.parse(await Deno.readTextFile(join(out, "dataset.json")));
  assert.deepEqual(info.options, {
    k: 0,
    start: "2022-10",
    end: "2023-10",
    window: 20,
    min_items: 1,
    strict: false,
  });
  await cleanup(dir);
});

Deno.test("r2ec preprocess --strict exits 1 with one line naming file:line", async () => {
  const dir = await tempDir();
  const { reviews, meta } = await inputs(dir);
  const r = await runCli(preprocessArgs({ reviews, meta }, join(dir, "ds"), "--strict"));
  assert.equal(r.code, 1);
  const last = r.err.split("\n").at(-1)!;
  assert.match(last, /^r2ec preprocess: .*r\.jsonl:3: invalid JSON \(reviews\.malformed_json\)$/);
  await cleanup(dir);
});

Deno.test("r2ec preprocess reports a missing input and an existing output in one line with exit 1", async () => {
  const dir = await tempDir();
  const { reviews, meta } = await inputs(dir);
  const missing = await runCli([
    "preprocess",
    "--reviews",
    join(dir, "none"),
    "--meta",
    meta,
    "--category",
    "M",
    "--out",
    join(dir, "x"),
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^r2ec preprocess: --reviews file not found: .*none$/);
  const existing = await runCli(preprocessArgs({ reviews, meta }, dir));
  assert.equal(existing.code, 1);
  assert.match(existing.err, /already exists \(use --force to replace it\)$/);
  await cleanup(dir);
});

Deno.test("r2ec preprocess rejects missing and malformed flags with exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--meta", "m"], /--reviews is required/],
    [
      ["--reviews", "r", "--meta", "m", "--category", "c", "--out", "o", "--start", "2022/10"],
      /--start must be YYYY-MM/,
    ],
    [
      ["--reviews", "r", "--meta", "m", "--category", "c", "--out", "o", "--k", "1.5"],
      /--k must be an integer/,
    ],
    [
      ["--reviews", "r", "--meta", "m", "--category", "c", "--out", "o", "--start", "2024-01"],
      /--start 2024-01 is after --end 2023-10/,
    ],
  ];
  for (const [argv, message] of cases) {
    const r = await runCli(["preprocess", ...argv]);
    assert.equal(r.code, 2, argv.join(" "));
    assert.match(r.err, message);
  }
});

Deno.test("r2ec preprocess --help lists every flag with its default", async () => {
  const r = await runCli(["preprocess", "--help"]);
  assert.equal(r.code, 0);
  for (
    const flag of [
      "--k N",
      "--start YYYY-MM",
      "--end YYYY-MM",
      "--window N",
      "--min-items N",
      "--strict",
      "--force",
      "--bench",
    ]
  ) {
    assert.ok(r.out.includes(flag), flag);
  }
  for (const d of ["default 0", "default 2022-10", "default 2023-10", "default 20", "default 10000"]) {
    assert.ok(r.out.includes(d), d);
  }
});

Deno.test("defaultOutDir() names the output like the reference: requested window, unpadded months", () => {
  assert.equal(
    defaultOutDir("Musical_Instruments", 0, "2022-10", "2023-10"),
    "data/Musical_Instruments_0_2022-10-2023-10",
  );
  assert.equal(defaultOutDir("Video_Games", 5, "2022-01", "2023-09"), "data/Video_Games_5_2022-1-2023-9");
});
