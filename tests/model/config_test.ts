import assert from "node:assert/strict";
import { FIXTURES, noFixtures } from "./fixtures.ts";
import {
  parseModelConfig,
  readGenerationConfig,
  readModelConfig,
  tinyQwen2Config,
  writeModelConfig,
} from "../../src/model/config.ts";

const QWEN = {
  architectures: ["Qwen2ForCausalLM"],
  hidden_size: 64,
  intermediate_size: 160,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 300,
};

Deno.test({
  name: "readModelConfig() reads the qwen2-tiny fixture with QKV bias and derived head_dim",
  ignore: noFixtures,
  async fn() {
    const config = await readModelConfig(`${FIXTURES}/qwen2-tiny`);
    assert.equal(config.architecture, "Qwen2ForCausalLM");
    assert.equal(config.headDim, 16);
    assert.equal(config.numKvHeads, 2);
    assert.equal(config.qkvBias, true);
    assert.equal(config.outputBias, false);
    assert.equal(config.normWeightOffset, 0);
    assert.equal(config.embeddingScale, 1);
    assert.equal(config.attentionScale, 0.25);
    assert.equal(config.tieWordEmbeddings, true);
    assert.deepEqual(config.layerWindows, [null, null]);
    assert.deepEqual(config.eosTokenIds, [2]);
  },
});

Deno.test({
  name: "readModelConfig() reads the gemma2-tiny fixture's Gemma-specific fields",
  ignore: noFixtures,
  async fn() {
    const config = await readModelConfig(`${FIXTURES}/gemma2-tiny`);
    assert.equal(config.architecture, "Gemma2ForCausalLM");
    assert.equal(config.headDim, 24);
    assert.equal(config.activation, "gelu_pytorch_tanh");
    assert.equal(config.normWeightOffset, 1);
    assert.equal(config.sandwichNorms, true);
    assert.equal(config.embeddingScale, 8);
    assert.equal(config.attentionScale, 1 / Math.sqrt(24));
    assert.equal(config.attnLogitSoftcap, 50);
    assert.equal(config.finalLogitSoftcap, 30);
    assert.deepEqual(config.layerWindows, [8, null]);
    assert.equal(config.bosTokenId, 2);
    assert.deepEqual(config.eosTokenIds, [1]);
    assert.equal(config.padTokenId, 0);
  },
});

Deno.test({
  name: "readModelConfig() and readGenerationConfig() read the stories260k Llama fixture",
  ignore: noFixtures,
  async fn() {
    const config = await readModelConfig(`${FIXTURES}/stories260k`);
    assert.equal(config.architecture, "LlamaForCausalLM");
    assert.equal(config.numLayers, 5);
    assert.equal(config.headDim, 8);
    assert.equal(config.ropeScaling, null);
    assert.equal(config.rmsNormEps, 1e-5);
    assert.equal(config.qkvBias, false);
    const generation = await readGenerationConfig(`${FIXTURES}/stories260k`);
    assert.deepEqual(generation, { doSample: false, bosTokenId: 1, eosTokenIds: [2] });
    assert.equal(await readGenerationConfig(`${FIXTURES}/qwen2-tiny`), null);
  },
});

Deno.test("parseModelConfig() lists the supported architectures for an unknown one", () => {
  assert.throws(() => parseModelConfig({ ...QWEN, architectures: ["MistralForCausalLM"] }, "m/config.json"), {
    message:
      "Unsupported architecture MistralForCausalLM in m/config.json (supported: Qwen2ForCausalLM, Gemma2ForCausalLM, LlamaForCausalLM)",
  });
});

Deno.test("parseModelConfig() rejects an unsupported rope_scaling type", () => {
  assert.throws(
    () => parseModelConfig({ ...QWEN, rope_scaling: { type: "yarn", factor: 4 } }, "m/config.json"),
    { message: 'Unsupported rope_scaling type "yarn" in m/config.json (supported: default, linear, llama3)' },
  );
});

Deno.test("parseModelConfig() names a missing or mistyped field", () => {
  const { hidden_size: _, ...noHidden } = QWEN;
  assert.throws(() => parseModelConfig(noHidden, "m/config.json"), {
    message: 'Invalid m/config.json: missing "hidden_size"',
  });
  assert.throws(() => parseModelConfig({ ...QWEN, vocab_size: "300" }, "m/config.json"), {
    message: 'Invalid m/config.json: "vocab_size" must be a positive integer, got "300"',
  });
  assert.throws(() => parseModelConfig({ ...QWEN, num_key_value_heads: 3 }, "m/config.json"), {
    message: "Invalid m/config.json: num_attention_heads 4 is not a multiple of num_key_value_heads 3",
  });
});

Deno.test("parseModelConfig() applies transformers defaults per architecture", () => {
  const qwen = parseModelConfig(QWEN, "q");
  assert.equal(qwen.tieWordEmbeddings, false);
  assert.equal(qwen.ropeTheta, 10000);
  const gemma = parseModelConfig({ ...QWEN, architectures: ["Gemma2ForCausalLM"] }, "g");
  assert.equal(gemma.tieWordEmbeddings, true);
  assert.equal(gemma.headDim, 256);
  assert.equal(gemma.attnLogitSoftcap, 50);
  const uncapped = parseModelConfig(
    { ...QWEN, architectures: ["Gemma2ForCausalLM"], attn_logit_softcapping: null },
    "g",
  );
  assert.equal(uncapped.attnLogitSoftcap, null);
  const llama = parseModelConfig({
    ...QWEN,
    architectures: undefined,
    model_type: "llama",
    attention_bias: true,
  }, "l");
  assert.equal(llama.architecture, "LlamaForCausalLM");
  assert.equal(llama.qkvBias, true);
  assert.equal(llama.outputBias, true);
});

Deno.test("parseModelConfig() reads llama3 rope scaling and a list of eos ids", () => {
  const config = parseModelConfig({
    ...QWEN,
    architectures: ["LlamaForCausalLM"],
    eos_token_id: [128001, 128009],
    rope_scaling: {
      rope_type: "llama3",
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
  }, "l");
  assert.deepEqual(config.ropeScaling, {
    type: "llama3",
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
  assert.deepEqual(config.eosTokenIds, [128001, 128009]);
});

Deno.test("parseModelConfig() reads transformers 5 rope_parameters", () => {
  const config = parseModelConfig(
    { ...QWEN, rope_parameters: { rope_type: "linear", factor: 4, rope_theta: 1e6 } },
    "m/config.json",
  );
  assert.equal(config.ropeTheta, 1e6);
  assert.deepEqual(config.ropeScaling, { type: "linear", factor: 4 });
});

Deno.test("writeModelConfig() writes a config that reads back the same, keeping unknown keys", async () => {
  const dir = await Deno.makeTempDir();
  const source = parseModelConfig({
    ...QWEN,
    architectures: ["Gemma2ForCausalLM"],
    query_pre_attn_scalar: 24,
    custom: 7,
  }, "g");
  await writeModelConfig(dir, source, "float32");
  const json = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  assert.equal(json.custom, 7);
  assert.equal(json.torch_dtype, "float32");
  assert.equal(json.query_pre_attn_scalar, 24);
  const reread = await readModelConfig(dir);
  assert.deepEqual({ ...reread, extra: {} }, { ...source, extra: {} });
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["config.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tinyQwen2Config() defaults to DESIGN's reference decoder and takes overrides", () => {
  const config = tinyQwen2Config();
  assert.deepEqual(
    [
      config.numLayers,
      config.hiddenSize,
      config.numHeads,
      config.numKvHeads,
      config.intermediateSize,
      config.vocabSize,
    ],
    [4, 256, 4, 4, 768, 8192],
  );
  assert.equal(config.tieWordEmbeddings, false);
  assert.equal(tinyQwen2Config({ vocabSize: 512, numHeads: 2 }).numKvHeads, 2);
});
