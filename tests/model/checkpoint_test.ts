import assert from "node:assert/strict";
import { FIXTURES, noFixtures } from "./fixtures.ts";
import { existsSync } from "node:fs";
import {
  type LoraFactors,
  loraModulePaths,
  readLoraAdapter,
  saveHfCheckpoint,
  saveLoraAdapter,
  writeDirectoryAtomic,
} from "../../src/model/checkpoint.ts";
import { readModelConfig, tinyQwen2Config } from "../../src/model/config.ts";
import { SafetensorsFile } from "../../src/model/safetensors.ts";
import { expectedTensorShapes, openWeights } from "../../src/model/weights.ts";

const tiny = tinyQwen2Config({
  vocabSize: 16,
  hiddenSize: 8,
  intermediateSize: 12,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
});

/** Values offset + k/8 with |offset| < 32: at most 8 significant bits, so exact in bfloat16. */
function ramp(length: number, offset: number): Float32Array {
  return new Float32Array(length).map((_, i) => offset + (i % 8) / 8);
}

function listDir(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
}

Deno.test({
  name:
    "saveHfCheckpoint() saves gemma2-tiny as F32 and it reloads to the same values with the tokenizer copied",
  ignore: noFixtures,
  async fn() {
    const out = `${await Deno.makeTempDir()}/model`;
    const source = `${FIXTURES}/stories260k`;
    using original = await openWeights(`${FIXTURES}/gemma2-tiny`);
    await saveHfCheckpoint(out, original.config, (name) => original.get(name), { tokenizerDir: source });
    assert.deepEqual(listDir(out), [
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    assert.equal(
      await Deno.readTextFile(`${out}/tokenizer.json`),
      await Deno.readTextFile(`${source}/tokenizer.json`),
    );
    using saved = await openWeights(out);
    assert.deepEqual({ ...saved.config, extra: {} }, { ...original.config, extra: {} });
    for (const name of original.shapes.keys()) assert.deepEqual(saved.get(name), original.get(name), name);
    await Deno.remove(out.replace(/\/model$/, ""), { recursive: true });
  },
});

Deno.test("saveHfCheckpoint() writes BF16 and replaces an existing checkpoint atomically", async () => {
  const parent = await Deno.makeTempDir();
  const out = `${parent}/ckpt`;
  const shapes = expectedTensorShapes(tiny);
  const values = new Map(
    [...shapes].map(([name, shape], i) => [name, ramp(shape.reduce((a, b) => a * b, 1), i)]),
  );
  await saveHfCheckpoint(out, tiny, values);
  await saveHfCheckpoint(out, tiny, values, { dtype: "BF16" });
  assert.deepEqual(listDir(parent), ["ckpt"]);
  assert.equal(JSON.parse(await Deno.readTextFile(`${out}/config.json`)).torch_dtype, "bfloat16");
  using file = await SafetensorsFile.open(`${out}/model.safetensors`);
  assert.equal(file.tensors.get("lm_head.weight")?.dtype, "BF16");
  assert.deepEqual(file.read("lm_head.weight"), values.get("lm_head.weight"));
  await Deno.remove(parent, { recursive: true });
});

Deno.test("saveHfCheckpoint() leaves the previous checkpoint intact when a tensor is missing", async () => {
  const parent = await Deno.makeTempDir();
  const out = `${parent}/ckpt`;
  const shapes = expectedTensorShapes(tiny);
  const values = new Map(
    [...shapes].map(([name, shape]) => [name, ramp(shape.reduce((a, b) => a * b, 1), 0)]),
  );
  await saveHfCheckpoint(out, tiny, values);
  const before = await Deno.readFile(`${out}/model.safetensors`);
  values.delete("model.norm.weight");
  await assert.rejects(saveHfCheckpoint(out, tiny, values), /no values for tensor "model\.norm\.weight"/);
  assert.deepEqual(listDir(parent), ["ckpt"]);
  assert.deepEqual(await Deno.readFile(`${out}/model.safetensors`), before);
  await Deno.remove(parent, { recursive: true });
});

Deno.test("writeDirectoryAtomic() never shows a partly filled folder at the target path", async () => {
  const parent = await Deno.makeTempDir();
  const target = `${parent}/run`;
  await writeDirectoryAtomic(target, async (temp) => {
    await Deno.writeTextFile(`${temp}/a.txt`, "a");
    assert.equal(existsSync(target), false);
  });
  assert.deepEqual(listDir(target), ["a.txt"]);
  await Deno.remove(parent, { recursive: true });
});

function tinyFactors(rank: number, targets: Parameters<typeof loraModulePaths>[1]) {
  const factors = new Map<string, LoraFactors>();
  for (const [i, path] of loraModulePaths(tiny, targets).entries()) {
    const [out, inFeatures] = expectedTensorShapes(tiny).get(`${path}.weight`)!;
    factors.set(path, { a: ramp(rank * inFeatures, i), b: ramp(out * rank, -i) });
  }
  return factors;
}

Deno.test("saveLoraAdapter() writes PEFT names and shapes that readLoraAdapter() reads back", async () => {
  const dir = `${await Deno.makeTempDir()}/adapter`;
  const targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
  const factors = tinyFactors(4, [...targets]);
  await saveLoraAdapter(dir, tiny, {
    rank: 4,
    alpha: 128,
    targetModules: [...targets],
    baseModel: "tiny",
    factors,
  });

  assert.deepEqual(listDir(dir), ["adapter_config.json", "adapter_model.safetensors"]);
  const config = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
  assert.equal(config.peft_type, "LORA");
  assert.equal(config.r, 4);
  assert.equal(config.lora_alpha, 128);
  assert.equal(config.lora_dropout, 0);
  assert.equal(config.bias, "none");
  assert.equal(config.task_type, "CAUSAL_LM");
  assert.equal(config.base_model_name_or_path, "tiny");
  assert.deepEqual(config.target_modules, [...targets]);

  using file = await SafetensorsFile.open(`${dir}/adapter_model.safetensors`);
  assert.equal(file.tensors.size, 2 * 7 * 2);
  // q_proj: in 8, out 2 heads × 4 = 8; k_proj: out 1 kv head × 4 = 4; down_proj: in 12, out 8.
  assert.deepEqual(file.shape("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), [4, 8]);
  assert.deepEqual(file.shape("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"), [4, 4]);
  assert.deepEqual(file.shape("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight"), [4, 12]);
  assert.deepEqual(file.shape("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"), [8, 4]);

  const adapter = await readLoraAdapter(dir, tiny);
  assert.equal(adapter.scale, 32);
  assert.deepEqual(adapter.targetModules, [...targets]);
  assert.deepEqual(adapter.factors, factors);
  await Deno.remove(dir.replace(/\/adapter$/, ""), { recursive: true });
});

Deno.test("readLoraAdapter() refuses a factor whose shape does not fit the model", async () => {
  const dir = `${await Deno.makeTempDir()}/adapter`;
  await saveLoraAdapter(dir, tiny, {
    rank: 2,
    alpha: 4,
    targetModules: ["v_proj"],
    baseModel: "tiny",
    factors: tinyFactors(2, ["v_proj"]),
  });
  const bigger = tinyQwen2Config({
    vocabSize: 16,
    hiddenSize: 16,
    intermediateSize: 12,
    numLayers: 2,
    numHeads: 2,
  });
  await assert.rejects(readLoraAdapter(dir, bigger), {
    message: `Invalid adapter ${dir}/adapter_model.safetensors: tensor ` +
      `"base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight" has shape [2, 8], expected [2, 16]`,
  });
  await Deno.remove(dir.replace(/\/adapter$/, ""), { recursive: true });
});

Deno.test("readLoraAdapter() refuses a non-LoRA adapter config", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/adapter_config.json`, JSON.stringify({ peft_type: "IA3" }));
  await assert.rejects(readLoraAdapter(dir), {
    message: `Unsupported adapter ${dir}/adapter_config.json: peft_type "IA3" is not "LORA"`,
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "saveHfCheckpoint() keeps Qwen2 untied configs loadable from config.json alone",
  ignore: noFixtures,
  async fn() {
    const config = await readModelConfig(`${FIXTURES}/qwen2-tiny`);
    const untied = { ...config, tieWordEmbeddings: false };
    const out = `${await Deno.makeTempDir()}/m`;
    using original = await openWeights(`${FIXTURES}/qwen2-tiny`);
    await saveHfCheckpoint(
      out,
      untied,
      (name) => original.get(name === "lm_head.weight" ? "model.embed_tokens.weight" : name),
    );
    using saved = await openWeights(out);
    assert.equal(saved.config.tieWordEmbeddings, false);
    assert.deepEqual(saved.get("lm_head.weight"), original.get("model.embed_tokens.weight"));
    await Deno.remove(out.replace(/\/m$/, ""), { recursive: true });
  },
});
