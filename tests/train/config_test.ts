import assert from "node:assert/strict";
import { resolveConfig } from "../../src/train/config.ts";
import { learningRate } from "../../src/train/schedule.ts";
import { evalWindows, readTextDocuments, sampleBatch, tokenizeDocuments } from "../../src/train/text_data.ts";

const DEFAULTS = { lr: 1e-3, schedule: "cosine", batch: 4, resume: false };

Deno.test("resolveConfig() applies the config file, then flags over it", () => {
  const c = resolveConfig(DEFAULTS, { lr: 3e-4, batch: 8 }, { batch: "2", resume: "true" }, "pretrain");
  assert.deepEqual(c, { lr: 3e-4, schedule: "cosine", batch: 2, resume: true });
});

Deno.test("resolveConfig() rejects an unknown key and names its source", () => {
  assert.throws(
    () => resolveConfig(DEFAULTS, { lrr: 1 }, {}, "pretrain"),
    /Unknown config key "lrr" in pretrain config file/,
  );
});

Deno.test("resolveConfig() rejects a wrongly typed value", () => {
  assert.throws(
    () => resolveConfig(DEFAULTS, undefined, { batch: "four" }, "x"),
    /"batch" in command-line flags must be a number/,
  );
});

Deno.test("learningRate() warms up linearly, then decays by cosine to the floor", () => {
  const c = { lr: 1, schedule: "cosine" as const, warmupSteps: 4, maxSteps: 104, minLrRatio: 0.1 };
  assert.equal(learningRate(c, 0), 0.25);
  assert.equal(learningRate(c, 3), 1);
  assert.ok(Math.abs(learningRate(c, 4) - 1) < 1e-12);
  assert.ok(Math.abs(learningRate(c, 54) - 0.55) < 1e-12);
  assert.ok(Math.abs(learningRate(c, 104) - 0.1) < 1e-12);
  assert.equal(learningRate({ ...c, schedule: "constant" }, 80), 1);
});

Deno.test("sampleBatch() draws the same windows for the same seed and step", () => {
  const stream = Int32Array.from({ length: 1000 }, (_, i) => i);
  const a = sampleBatch(stream, 3, 16, 7, 5), b = sampleBatch(stream, 3, 16, 7, 5);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, sampleBatch(stream, 3, 16, 7, 6));
  for (let r = 0; r < 3; r++) assert.equal(a[r * 16 + 15] - a[r * 16], 15);
  assert.equal(evalWindows(stream, 300, 10).length, 3);
});

Deno.test("tokenizeDocuments() separates documents with the end-of-text id", () => {
  const out = tokenizeDocuments(["ab", "c"], (t) => [...t].map((ch) => ch.charCodeAt(0)), 0);
  assert.deepEqual([...out], [97, 98, 0, 99, 0]);
});

Deno.test("readTextDocuments() names the line of a JSONL row without text", async () => {
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(path, '{"text":"a"}\n{"txt":"b"}\n');
  await assert.rejects(() => readTextDocuments(path), new RegExp(`${path}:2: field "text"`));
  await Deno.remove(path);
});
