/** The preprocessing benchmark on a small generated file. */
import assert from "node:assert/strict";
import {
  formatBenchReport,
  generateBenchInputs,
  runPreprocessBench,
} from "../../src/data/bench_preprocess.ts";
import { cleanup, tempDir } from "./helpers.ts";

Deno.test("runPreprocessBench() generates the requested lines deterministically and reports speed and memory", async () => {
  const dir = await tempDir();
  const result = await runPreprocessBench({ lines: 20_000, dir });
  const { reviews } = await generateBenchInputs(dir, 20_000);
  const text = await Deno.readTextFile(reviews);
  assert.equal(text.split("\n").length - 1, 20_000);
  assert.equal(result.review_lines, 20_000);
  assert.ok(result.lines_per_s > 0 && result.peak_rss_bytes > 0 && result.samples > 0);
  assert.match(formatBenchReport(result), /20000 review lines .* lines\/s .* peak RSS \d+ MiB/);
  const again = await tempDir();
  await generateBenchInputs(again, 20_000);
  assert.equal(await Deno.readTextFile(reviews.replace(dir, again)), text);
  await cleanup(dir);
  await cleanup(again);
});
