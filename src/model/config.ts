/**
 * `config.json` and `generation_config.json` of a Hugging Face causal-LM folder, parsed into typed,
 * validated objects for the three supported architectures, and written back for saved checkpoints.
 *
 * Missing optional fields take the defaults of the matching `transformers` config class, so a
 * folder means the same thing here as in Python.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../io/files.ts";

/** The architectures r2ec can load. */
export const SUPPORTED_ARCHITECTURES = ["Qwen2ForCausalLM", "Gemma2ForCausalLM", "LlamaForCausalLM"] as const;

/** One of {@linkcode SUPPORTED_ARCHITECTURES}. */
export type Architecture = typeof SUPPORTED_ARCHITECTURES[number];

/** MLP activation: SwiGLU uses `silu`, Gemma's GeGLU uses the tanh approximation of GELU. */
export type Activation = "silu" | "gelu_pytorch_tanh";

/** RoPE frequency scaling from `rope_scaling` (null in config.json means none). */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
    type: "llama3";
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  };

/** A validated model configuration; HF key names are given where they differ. */
export interface ModelConfig {
  architecture: Architecture;
  /** `model_type`: qwen2 | gemma2 | llama. */
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  /** `num_hidden_layers`. */
  numLayers: number;
  /** `num_attention_heads`. */
  numHeads: number;
  /** `num_key_value_heads` (GQA); equals numHeads when absent. */
  numKvHeads: number;
  /** `head_dim`, explicit or hidden_size / num_attention_heads (Gemma-2 default 256). */
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  /** `hidden_act` (Qwen2, Llama) or `hidden_activation` (Gemma-2). */
  activation: Activation;
  /** q, k and v projections carry a bias (always for Qwen2; `attention_bias` for Llama and Gemma-2). */
  qkvBias: boolean;
  /** o_proj carries a bias (`attention_bias` for Llama and Gemma-2; never for Qwen2). */
  outputBias: boolean;
  /** RMSNorm multiplies by `(normWeightOffset + w)`: 1 for Gemma's `(1+w)`, else 0. */
  normWeightOffset: 0 | 1;
  /** Gemma-2 has extra norms before and after the MLP and after attention (four per layer). */
  sandwichNorms: boolean;
  /** Token embeddings are multiplied by this: √hidden_size (rounded to f32) for Gemma-2, else 1. */
  embeddingScale: number;
  /** Attention scores are multiplied by this: `query_pre_attn_scalar ** -0.5` (Gemma-2) or `head_dim ** -0.5`. */
  attentionScale: number;
  /** `attn_logit_softcapping`: scores become `cap·tanh(s/cap)`; null for none. */
  attnLogitSoftcap: number | null;
  /** `final_logit_softcapping`, applied to the LM-head logits; null for none. */
  finalLogitSoftcap: number | null;
  /**
   * Attention window per layer: null means full causal attention; a number W lets a query at
   * position q see keys k with `q - W < k <= q` (Gemma-2: even layers 0, 2, … slide).
   */
  layerWindows: (number | null)[];
  bosTokenId: number | null;
  /** `eos_token_id`, always as a list. */
  eosTokenIds: number[];
  padTokenId: number | null;
  /** Keys of config.json not interpreted above, kept so a saved checkpoint writes them back. */
  extra: Record<string, unknown>;
}

/** Sampling defaults from `generation_config.json`; absent fields are left out. */
export interface GenerationConfig {
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  doSample?: boolean;
  maxNewTokens?: number;
  bosTokenId?: number;
  eosTokenIds?: number[];
  padTokenId?: number;
}

/** A config.json or generation_config.json that cannot be used; one line naming file and field. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Json = Record<string, unknown>;

/** Reads typed fields out of one JSON object, failing with the file and field name. */
class FieldReader {
  readonly used = new Set<string>();
  constructor(readonly path: string, readonly json: Json) {}

  #fail(key: string, want: string): never {
    throw new ConfigError(
      `Invalid ${this.path}: "${key}" must be ${want}, got ${JSON.stringify(this.json[key])}`,
    );
  }

  has(key: string): boolean {
    this.used.add(key);
    return this.json[key] !== undefined && this.json[key] !== null;
  }

  int(key: string, fallback?: number): number {
    if (!this.has(key)) {
      if (fallback === undefined) throw new ConfigError(`Invalid ${this.path}: missing "${key}"`);
      return fallback;
    }
    const value = this.json[key];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
      this.#fail(key, "a positive integer");
    }
    return value;
  }

  number(key: string, fallback: number): number;
  number(key: string, fallback: number | null): number | null;
  number(key: string, fallback: number | null): number | null {
    if (!this.has(key)) return fallback;
    const value = this.json[key];
    if (typeof value !== "number" || !Number.isFinite(value)) this.#fail(key, "a finite number");
    return value;
  }

  positive(key: string, fallback: number): number;
  positive(key: string, fallback: number | null): number | null;
  positive(key: string, fallback: number | null): number | null {
    const value = this.number(key, fallback);
    if (value !== null && value <= 0) this.#fail(key, "a positive number");
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const value = this.json[key];
    if (typeof value !== "boolean") this.#fail(key, "true or false");
    return value;
  }

  string(key: string): string | undefined {
    if (!this.has(key)) return undefined;
    const value = this.json[key];
    if (typeof value !== "string") this.#fail(key, "a string");
    return value;
  }

  tokenId(key: string): number | null {
    if (!this.has(key)) return null;
    const value = this.json[key];
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) this.#fail(key, "a token id");
    return value;
  }

  tokenIds(key: string): number[] {
    if (!this.has(key)) return [];
    const value = this.json[key];
    const ids = Array.isArray(value) ? value : [value];
    if (!ids.every((id) => typeof id === "number" && Number.isSafeInteger(id) && id >= 0)) {
      this.#fail(key, "a token id or a list of token ids");
    }
    return ids as number[];
  }

  rest(): Json {
    return Object.fromEntries(Object.entries(this.json).filter(([key]) => !this.used.has(key)));
  }
}

async function readJsonObject(path: string): Promise<Json> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError(`Cannot read ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`Invalid ${path}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`Invalid ${path}: expected a JSON object`);
  }
  return json as Json;
}

const MODEL_TYPES: Record<string, Architecture> = {
  qwen2: "Qwen2ForCausalLM",
  gemma2: "Gemma2ForCausalLM",
  llama: "LlamaForCausalLM",
};

function architectureOf(fields: FieldReader): Architecture {
  const { path, json } = fields;
  fields.used.add("architectures");
  const listed = json.architectures;
  const supported = `supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`;
  if (Array.isArray(listed) && listed.length > 0) {
    const known = listed.find((a): a is Architecture => SUPPORTED_ARCHITECTURES.includes(a));
    if (!known) {
      throw new ConfigError(`Unsupported architecture ${listed.join(", ")} in ${path} (${supported})`);
    }
    return known;
  }
  const modelType = fields.string("model_type");
  if (modelType !== undefined && Object.hasOwn(MODEL_TYPES, modelType)) return MODEL_TYPES[modelType];
  throw new ConfigError(
    `Unsupported architecture (model_type ${JSON.stringify(modelType)}) in ${path} (${supported})`,
  );
}

/**
 * RoPE base and scaling from `rope_theta` + `rope_scaling` (transformers 4), or from the
 * `rope_parameters` object that transformers 5 writes instead.
 */
function ropeOf(fields: FieldReader): { ropeTheta: number; ropeScaling: RopeScaling | null } {
  const key = fields.has("rope_parameters") ? "rope_parameters" : "rope_scaling";
  const raw = fields.has(key) ? fields.json[key] : {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`Invalid ${fields.path}: "${key}" must be an object or null`);
  }
  const scaling = new FieldReader(`${fields.path} ${key}`, raw as Json);
  const ropeTheta = key === "rope_parameters"
    ? scaling.positive("rope_theta", 10000)
    : fields.positive("rope_theta", 10000);
  const type = scaling.string("rope_type") ?? scaling.string("type") ?? "default";
  switch (type) {
    case "default":
      return { ropeTheta, ropeScaling: null };
    case "linear":
      return { ropeTheta, ropeScaling: { type, factor: scaling.positive("factor", 1) } };
    case "llama3":
      return {
        ropeTheta,
        ropeScaling: {
          type,
          factor: scaling.positive("factor", 8),
          lowFreqFactor: scaling.positive("low_freq_factor", 1),
          highFreqFactor: scaling.positive("high_freq_factor", 4),
          originalMaxPositionEmbeddings: scaling.int("original_max_position_embeddings", 8192),
        },
      };
    default:
      throw new ConfigError(
        `Unsupported ${key} type "${type}" in ${fields.path} (supported: default, linear, llama3)`,
      );
  }
}

function activationOf(fields: FieldReader, architecture: Architecture): Activation {
  const key = architecture === "Gemma2ForCausalLM" ? "hidden_activation" : "hidden_act";
  const fallback = architecture === "Gemma2ForCausalLM" ? "gelu_pytorch_tanh" : "silu";
  const value = fields.string(key) ?? fallback;
  if (value !== "silu" && value !== "gelu_pytorch_tanh") {
    throw new ConfigError(
      `Unsupported ${key} "${value}" in ${fields.path} (supported: silu, gelu_pytorch_tanh)`,
    );
  }
  return value;
}

function layerWindowsOf(
  fields: FieldReader,
  architecture: Architecture,
  numLayers: number,
): (number | null)[] {
  if (architecture === "Qwen2ForCausalLM") {
    if (fields.bool("use_sliding_window", false)) {
      throw new ConfigError(
        `Unsupported use_sliding_window true in ${fields.path} (Qwen2 sliding window is not implemented)`,
      );
    }
    return new Array(numLayers).fill(null);
  }
  if (architecture === "LlamaForCausalLM") return new Array(numLayers).fill(null);
  const window = fields.int("sliding_window", 4096);
  const layerTypes = fields.json.layer_types;
  if (Array.isArray(layerTypes)) {
    if (layerTypes.length !== numLayers) {
      throw new ConfigError(
        `Invalid ${fields.path}: "layer_types" has ${layerTypes.length} entries for ${numLayers} layers`,
      );
    }
    return layerTypes.map((type) => type === "sliding_attention" ? window : null);
  }
  // transformers' Gemma2DecoderLayer: `is_sliding = not bool(layer_idx % 2)`.
  return Array.from({ length: numLayers }, (_, layer) => layer % 2 === 0 ? window : null);
}

/**
 * Validates an already-parsed config.json object; `path` names it in errors.
 *
 * @example
 * ```ts
 * const config = parseModelConfig(JSON.parse(text), "model/config.json");
 * config.headDim; // hidden_size / num_attention_heads unless head_dim is given
 * ```
 */
export function parseModelConfig(json: Json, path: string): ModelConfig {
  const fields = new FieldReader(path, json);
  const architecture = architectureOf(fields);
  const isGemma = architecture === "Gemma2ForCausalLM";
  const hiddenSize = fields.int("hidden_size");
  const numHeads = fields.int("num_attention_heads");
  const numKvHeads = fields.int("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError(
      `Invalid ${path}: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  const headDim = fields.int("head_dim", isGemma ? 256 : Math.floor(hiddenSize / numHeads));
  if (headDim % 2 !== 0) throw new ConfigError(`Invalid ${path}: head_dim ${headDim} must be even for RoPE`);
  const numLayers = fields.int("num_hidden_layers");
  const attentionBias = fields.bool("attention_bias", false);
  if (fields.bool("mlp_bias", false)) throw new ConfigError(`Unsupported mlp_bias true in ${path}`);
  const defaults = {
    Qwen2ForCausalLM: { eps: 1e-6, tie: false, maxPositions: 32768 },
    LlamaForCausalLM: { eps: 1e-6, tie: false, maxPositions: 2048 },
    Gemma2ForCausalLM: { eps: 1e-6, tie: true, maxPositions: 8192 },
  }[architecture];
  const eosTokenIds = fields.tokenIds("eos_token_id");
  return {
    architecture,
    modelType: fields.string("model_type") ??
      Object.keys(MODEL_TYPES).find((t) => MODEL_TYPES[t] === architecture)!,
    vocabSize: fields.int("vocab_size"),
    hiddenSize,
    intermediateSize: fields.int("intermediate_size"),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: fields.positive("rms_norm_eps", defaults.eps),
    ...ropeOf(fields),
    tieWordEmbeddings: fields.bool("tie_word_embeddings", defaults.tie),
    maxPositionEmbeddings: fields.int("max_position_embeddings", defaults.maxPositions),
    activation: activationOf(fields, architecture),
    qkvBias: architecture === "Qwen2ForCausalLM" || attentionBias,
    outputBias: architecture !== "Qwen2ForCausalLM" && attentionBias,
    normWeightOffset: isGemma ? 1 : 0,
    sandwichNorms: isGemma,
    embeddingScale: isGemma ? Math.fround(Math.sqrt(hiddenSize)) : 1,
    attentionScale: 1 / Math.sqrt(isGemma ? fields.positive("query_pre_attn_scalar", 256) : headDim),
    attnLogitSoftcap: isGemma
      ? fields.positive("attn_logit_softcapping", defaultCap(json, "attn_logit_softcapping", 50))
      : null,
    finalLogitSoftcap: isGemma
      ? fields.positive("final_logit_softcapping", defaultCap(json, "final_logit_softcapping", 30))
      : null,
    layerWindows: layerWindowsOf(fields, architecture, numLayers),
    bosTokenId: fields.tokenId("bos_token_id") ?? (isGemma && !("bos_token_id" in json) ? 2 : null),
    eosTokenIds: eosTokenIds.length > 0 || "eos_token_id" in json ? eosTokenIds : isGemma ? [1] : [],
    padTokenId: fields.tokenId("pad_token_id") ?? (isGemma && !("pad_token_id" in json) ? 0 : null),
    extra: fields.rest(),
  };
}

/** Gemma2Config defaults a missing cap to 50/30, but an explicit null switches it off. */
function defaultCap(json: Json, key: string, fallback: number): number | null {
  return key in json ? null : fallback;
}

/**
 * Reads and validates `<dir>/config.json`.
 *
 * @example
 * ```ts
 * const config = await readModelConfig("../shared/fixtures/qwen2-tiny");
 * config.architecture; // "Qwen2ForCausalLM"
 * ```
 */
export async function readModelConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, "config.json");
  return parseModelConfig(await readJsonObject(path), path);
}

/**
 * Reads `<dir>/generation_config.json`, or returns null when the folder has none.
 *
 * @example
 * ```ts
 * const generation = await readGenerationConfig("../shared/fixtures/stories260k");
 * generation?.eosTokenIds; // [2]
 * ```
 */
export async function readGenerationConfig(dir: string): Promise<GenerationConfig | null> {
  const path = join(dir, "generation_config.json");
  try {
    await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const fields = new FieldReader(path, await readJsonObject(path));
  const result: GenerationConfig = {};
  const temperature = fields.number("temperature", null);
  if (temperature !== null) {
    if (temperature < 0) {
      throw new ConfigError(`Invalid ${path}: "temperature" must be at least 0, got ${temperature}`);
    }
    result.temperature = temperature;
  }
  if (fields.has("top_k")) {
    const topK = fields.number("top_k", 0);
    if (!Number.isSafeInteger(topK) || topK < 0) {
      throw new ConfigError(`Invalid ${path}: "top_k" must be a non-negative integer, got ${topK}`);
    }
    result.topK = topK;
  }
  const topP = fields.positive("top_p", null);
  if (topP !== null) {
    if (topP > 1) throw new ConfigError(`Invalid ${path}: "top_p" must be in (0, 1], got ${topP}`);
    result.topP = topP;
  }
  const penalty = fields.positive("repetition_penalty", null);
  if (penalty !== null) result.repetitionPenalty = penalty;
  if (fields.has("do_sample")) result.doSample = fields.bool("do_sample", false);
  if (fields.has("max_new_tokens")) result.maxNewTokens = fields.int("max_new_tokens");
  const bos = fields.tokenId("bos_token_id");
  if (bos !== null) result.bosTokenId = bos;
  if (fields.has("eos_token_id")) result.eosTokenIds = fields.tokenIds("eos_token_id");
  const pad = fields.tokenId("pad_token_id");
  if (pad !== null) result.padTokenId = pad;
  return result;
}

/**
 * The config.json object for `config`, as `transformers` writes it: interpreted fields under their
 * HF names, over the uninterpreted `extra` keys of the source.
 *
 * @example
 * ```ts
 * toHfConfigJson(tinyQwen2Config()).architectures; // ["Qwen2ForCausalLM"]
 * ```
 */
export function toHfConfigJson(config: ModelConfig): Json {
  const isGemma = config.architecture === "Gemma2ForCausalLM";
  const json: Json = {
    ...config.extra,
    architectures: [config.architecture],
    model_type: config.modelType,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    head_dim: config.headDim,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: config.ropeScaling && ropeScalingJson(config.ropeScaling),
    tie_word_embeddings: config.tieWordEmbeddings,
    max_position_embeddings: config.maxPositionEmbeddings,
    [isGemma ? "hidden_activation" : "hidden_act"]: config.activation,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    pad_token_id: config.padTokenId,
  };
  if (config.architecture === "Qwen2ForCausalLM") json.use_sliding_window = false;
  else json.attention_bias = config.qkvBias;
  if (isGemma) {
    json.query_pre_attn_scalar = Math.round(config.attentionScale ** -2 * 1e6) / 1e6;
    json.attn_logit_softcapping = config.attnLogitSoftcap;
    json.final_logit_softcapping = config.finalLogitSoftcap;
    json.sliding_window = config.layerWindows.find((w) => w !== null) ?? null;
  }
  return json;
}

function ropeScalingJson(scaling: RopeScaling): Json {
  if (scaling.type === "linear") return { rope_type: "linear", factor: scaling.factor };
  return {
    rope_type: "llama3",
    factor: scaling.factor,
    low_freq_factor: scaling.lowFreqFactor,
    high_freq_factor: scaling.highFreqFactor,
    original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
  };
}

/**
 * Writes `config` as `<dir>/config.json` (temp file + rename). `torchDtype` records the dtype the
 * weights were saved in ("float32" or "bfloat16").
 *
 * @example
 * ```ts
 * await writeModelConfig("/tmp/model", tinyQwen2Config(), "float32");
 * ```
 */
export async function writeModelConfig(dir: string, config: ModelConfig, torchDtype: string): Promise<void> {
  const json = toHfConfigJson(config);
  // transformers 5 renamed torch_dtype to dtype; keep a source's spelling current.
  if ("dtype" in json) json.dtype = torchDtype;
  await writeJsonAtomic(join(dir, "config.json"), { ...json, torch_dtype: torchDtype });
}

/** Sizes of a fresh model; every field is optional in {@linkcode tinyQwen2Config}. */
export interface TinyModelSizes {
  vocabSize?: number;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  maxPositionEmbeddings?: number;
  tieWordEmbeddings?: boolean;
  bosTokenId?: number | null;
  eosTokenIds?: number[];
  padTokenId?: number | null;
}

/**
 * A fresh Qwen2-style config for a model r2ec builds itself. The defaults are DESIGN §9's reference
 * decoder: 4 layers, hidden 256, 4 heads, 4 KV heads, FF 768, vocab 8192, untied LM head.
 *
 * @example
 * ```ts
 * const config = tinyQwen2Config({ vocabSize: 512, numLayers: 2 });
 * ```
 */
export function tinyQwen2Config(sizes: TinyModelSizes = {}): ModelConfig {
  const json: Json = {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: sizes.vocabSize ?? 8192,
    hidden_size: sizes.hiddenSize ?? 256,
    intermediate_size: sizes.intermediateSize ?? 768,
    num_hidden_layers: sizes.numLayers ?? 4,
    num_attention_heads: sizes.numHeads ?? 4,
    num_key_value_heads: sizes.numKvHeads ?? sizes.numHeads ?? 4,
    max_position_embeddings: sizes.maxPositionEmbeddings ?? 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: "silu",
    tie_word_embeddings: sizes.tieWordEmbeddings ?? false,
    bos_token_id: sizes.bosTokenId ?? null,
    eos_token_id: sizes.eosTokenIds ?? [],
    pad_token_id: sizes.padTokenId ?? null,
    attention_dropout: 0,
    initializer_range: 0.02,
  };
  return parseModelConfig(json, "tiny Qwen2 config");
}
