import assert from "node:assert/strict";
import { FIXTURES, noFixtures } from "./fixtures.ts";
import { readModelConfig, tinyQwen2Config } from "../../src/model/config.ts";
import { writeSafetensors } from "../../src/model/safetensors.ts";
import { expectedTensorShapes, openWeights } from "../../src/model/weights.ts";

/** Tensor names and shapes read straight from a file's JSON header, independent of the reader. */
async function headerShapes(path: string): Promise<Map<string, number[]>> {
  const bytes = await Deno.readFile(path);
  const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  delete header.__metadata__;
  return new Map(Object.entries(header).map(([name, info]) => [name, (info as { shape: number[] }).shape]));
}

for (const fixture of ["qwen2-tiny", "gemma2-tiny", "stories260k"]) {
  Deno.test({
    name: `openWeights() loads ${fixture} with every tensor of the expected shape`,
    ignore: noFixtures,
    async fn() {
      const dir = `${FIXTURES}/${fixture}`;
      using weights = await openWeights(dir);
      // The tied fixtures store exactly the tensors the table expects, so the two must coincide.
      assert.deepEqual(weights.shapes, await headerShapes(`${dir}/model.safetensors`));
      for (const [name, shape] of weights.shapes) {
        assert.equal(weights.get(name).length, shape.reduce((a, b) => a * b, 1), name);
      }
    },
  });
}

Deno.test({
  name: "expectedTensorShapes() has Gemma's four norms and Qwen's QKV biases",
  ignore: noFixtures,
  async fn() {
    const gemma = expectedTensorShapes(await readModelConfig(`${FIXTURES}/gemma2-tiny`));
    for (const norm of ["input", "post_attention", "pre_feedforward", "post_feedforward"]) {
      assert.deepEqual(gemma.get(`model.layers.1.${norm}_layernorm.weight`), [64]);
    }
    assert.deepEqual(gemma.get("model.layers.0.self_attn.q_proj.weight"), [96, 64]);
    assert.equal(gemma.has("model.layers.0.self_attn.q_proj.bias"), false);
    const qwen = expectedTensorShapes(await readModelConfig(`${FIXTURES}/qwen2-tiny`));
    assert.deepEqual(qwen.get("model.layers.0.self_attn.k_proj.bias"), [32]);
    assert.equal(qwen.has("model.layers.0.self_attn.o_proj.bias"), false);
    assert.equal(qwen.has("lm_head.weight"), false);
  },
});

/** A tiny untied Qwen2 model folder, optionally split into two shards with an index. */
async function writeTinyModel(options: { sharded: boolean; skip?: string; wrongShape?: string }) {
  const dir = await Deno.makeTempDir();
  const config = tinyQwen2Config({
    vocabSize: 16,
    hiddenSize: 8,
    intermediateSize: 12,
    numLayers: 2,
    numHeads: 2,
  });
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      architectures: ["Qwen2ForCausalLM"],
      vocab_size: 16,
      hidden_size: 8,
      intermediate_size: 12,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      tie_word_embeddings: false,
    }),
  );
  const tensors = [...expectedTensorShapes(config)]
    .filter(([name]) => name !== options.skip)
    .map(([name, shape]) => {
      const stored = name === options.wrongShape ? [shape[0] + 1, ...shape.slice(1)] : shape;
      const data = new Float32Array(stored.reduce((a, b) => a * b, 1)).map((_, i) => i);
      return [name, { dtype: "F32" as const, shape: stored, data }] as const;
    });
  if (!options.sharded) {
    await writeSafetensors(`${dir}/model.safetensors`, new Map(tensors));
    return dir;
  }
  const half = Math.ceil(tensors.length / 2);
  const shards = [tensors.slice(0, half), tensors.slice(half)];
  const weightMap: Record<string, string> = {};
  for (const [i, shard] of shards.entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    await writeSafetensors(`${dir}/${file}`, new Map(shard));
    for (const [name] of shard) weightMap[name] = file;
  }
  await Deno.writeTextFile(
    `${dir}/model.safetensors.index.json`,
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  );
  return dir;
}

Deno.test("openWeights() reads a sharded checkpoint through its index", async () => {
  const dir = await writeTinyModel({ sharded: true });
  using weights = await openWeights(dir);
  assert.ok(weights.shapes.has("lm_head.weight"));
  assert.deepEqual([...weights.get("lm_head.weight").subarray(0, 3)], [0, 1, 2]);
  assert.deepEqual([...weights.get("model.embed_tokens.weight").subarray(0, 3)], [0, 1, 2]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openWeights() names a shard that the index lists but the folder lacks", async () => {
  const dir = await writeTinyModel({ sharded: true });
  await Deno.remove(`${dir}/model-00002-of-00002.safetensors`);
  await assert.rejects(openWeights(dir), {
    message: `Missing shard model-00002-of-00002.safetensors listed in ${dir}/model.safetensors.index.json`,
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openWeights() refuses an index whose shard name leaves the folder", async () => {
  const dir = await writeTinyModel({ sharded: true });
  const indexPath = `${dir}/model.safetensors.index.json`;
  const index = JSON.parse(await Deno.readTextFile(indexPath));
  index.weight_map["model.norm.weight"] = "../elsewhere.safetensors";
  await Deno.writeTextFile(indexPath, JSON.stringify(index));
  await assert.rejects(
    openWeights(dir),
    /tensor "model\.norm\.weight" maps to "\.\.\/elsewhere\.safetensors", not a file name$/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("openWeights() names a missing tensor and a tensor of the wrong shape", async () => {
  const missing = await writeTinyModel({ sharded: false, skip: "model.layers.1.self_attn.v_proj.bias" });
  await assert.rejects(openWeights(missing), {
    message:
      `Missing tensor "model.layers.1.self_attn.v_proj.bias" in ${missing} (needed by Qwen2ForCausalLM)`,
  });
  const wrong = await writeTinyModel({ sharded: false, wrongShape: "model.layers.0.mlp.up_proj.weight" });
  await assert.rejects(openWeights(wrong), {
    message:
      `Tensor "model.layers.0.mlp.up_proj.weight" in ${wrong}/model.safetensors has shape [13, 8], expected [12, 8] from the config`,
  });
  for (const dir of [missing, wrong]) await Deno.remove(dir, { recursive: true });
});

Deno.test("openWeights() says when a folder has no weights file", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(openWeights(dir, tinyQwen2Config()), {
    message: `No model.safetensors or model.safetensors.index.json in ${dir}`,
  });
  await Deno.remove(dir, { recursive: true });
});
