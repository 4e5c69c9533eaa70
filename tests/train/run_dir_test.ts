/** Pieces of a pretraining run that need no GPU: tokenizer cache, initial weights, run directory, config checks. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { tinyQwen2Config } from "../../src/model/config.ts";
import { resolveConfig } from "../../src/train/config.ts";
import { initialWeights, prepareTokenizer } from "../../src/train/fresh_model.ts";
import { checkPretrainConfig, loraTargets, PRETRAIN_DEFAULTS } from "../../src/train/pretrain_config.ts";
import { latestCheckpoint, removePartialWrites, truncateLog } from "../../src/train/run_dir.ts";
import { readTextDocuments } from "../../src/train/text_data.ts";
import { withTempDir } from "../text/helpers.ts";

Deno.test("prepareTokenizer() reuses the tokenizer trained on the same text and retrains when the text changes", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "text.txt");
    const docs = ["the cat sat on the mat", "the dog sat on the log"];
    await Deno.writeTextFile(data, docs.join("\n\n"));
    const tokenizerDir = join(dir, "tokenizer");
    assert.deepEqual(await prepareTokenizer(data, docs, tokenizerDir, 300), { trained: true });
    assert.deepEqual(await prepareTokenizer(data, docs, tokenizerDir, 300), { trained: false });
    assert.deepEqual(await prepareTokenizer(data, docs, tokenizerDir, 290), { trained: true });
    await Deno.writeTextFile(data, "something else entirely", { append: true });
    assert.deepEqual(await prepareTokenizer(data, docs, tokenizerDir, 290), { trained: true });
  });
});

Deno.test("initialWeights() is seeded, has std 0.02 in matrices, ones in norms and zero biases", () => {
  const config = tinyQwen2Config({
    vocabSize: 64,
    hiddenSize: 32,
    intermediateSize: 64,
    numLayers: 1,
    numHeads: 2,
  });
  const a = initialWeights(config, 3), b = initialWeights(config, 3), c = initialWeights(config, 4);
  assert.deepEqual(a.get("lm_head.weight"), b.get("lm_head.weight"));
  assert.notDeepEqual(a.get("lm_head.weight"), c.get("lm_head.weight"));
  const embed = a.get("model.embed_tokens.weight")!;
  const std = Math.sqrt(embed.reduce((s, x) => s + x * x, 0) / embed.length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
  assert.ok(a.get("model.norm.weight")!.every((x) => x === 1));
  assert.ok(a.get("model.layers.0.self_attn.q_proj.bias")!.every((x) => x === 0));
});

Deno.test("removePartialWrites() deletes a killed writer's temp directories; latestCheckpoint() ignores them", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "checkpoint-4"));
    await Deno.mkdir(join(dir, "checkpoint-12"));
    await Deno.mkdir(join(dir, "checkpoint-16.tmp-999"));
    await Deno.mkdir(join(dir, "checkpoint-16.tmp-999.tmp-999"));
    assert.equal((await latestCheckpoint(dir))?.step, 12);
    assert.deepEqual((await removePartialWrites(dir)).sort(), [
      "checkpoint-16.tmp-999",
      "checkpoint-16.tmp-999.tmp-999",
    ]);
    const left = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(left, ["checkpoint-12", "checkpoint-4"]);
  });
});

Deno.test("truncateLog() keeps the records up to the resumed step and drops a torn last line", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "log.jsonl");
    await Deno.writeTextFile(
      path,
      '{"step":1,"loss":3}\n{"step":2,"eval_loss":2.5}\n{"step":3,"loss":2}\n{"step":4,"lo',
    );
    assert.deepEqual(await truncateLog(path, 2), [{ step: 1, loss: 3 }, { step: 2, eval_loss: 2.5 }]);
    assert.equal(await Deno.readTextFile(path), '{"step":1,"loss":3}\n{"step":2,"eval_loss":2.5}\n');
  });
});

Deno.test("readTextDocuments() splits plain text on <|endoftext|> lines when it has them", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "corpus.txt");
    await Deno.writeTextFile(path, "first doc\n\nsecond paragraph\n<|endoftext|>\nnext doc\n<|endoftext|>\n");
    assert.deepEqual(await readTextDocuments(path), ["first doc\n\nsecond paragraph", "next doc"]);
  });
});

Deno.test("checkPretrainConfig() names the key of an unusable value", () => {
  const config = (flags: Record<string, string>) =>
    resolveConfig(PRETRAIN_DEFAULTS, undefined, flags, "pretrain");
  assert.throws(
    () => checkPretrainConfig(config({ schedule: "linear" })),
    /"schedule" must be "constant" or "cosine"/,
  );
  assert.throws(
    () => checkPretrainConfig(config({ heads: "3" })),
    /"d_model" \(128\) must be a multiple of heads \(3\)/,
  );
  assert.throws(() => checkPretrainConfig(config({ lora_r: "4" })), /"lora_r" needs "model"/);
  assert.throws(
    () => checkPretrainConfig(config({ matmul_precision: "f16" })),
    /"matmul_precision" must be "f32" or "bf16"/,
  );
  checkPretrainConfig(config({ matmul_precision: "bf16" }));
  assert.throws(
    () => checkPretrainConfig(config({ batch_size: "0" })),
    /"batch_size" must be a positive integer/,
  );
  assert.deepEqual(loraTargets(config({ lora_targets: "q, v,down_proj" })), [
    "q_proj",
    "v_proj",
    "down_proj",
  ]);
  assert.throws(() => loraTargets(config({ lora_targets: "q,x" })), /unknown target "x"/);
});
