/**
 * The weights of a model folder: `model.safetensors`, or `model.safetensors.index.json` with its
 * shards, checked against the tensor names and shapes the config implies (HF naming), and read
 * lazily one tensor at a time.
 *
 * @module
 */
import { basename, join } from "node:path";
import { type ModelConfig, readModelConfig } from "./config.ts";
import { SafetensorsFile } from "./safetensors.ts";
import { pathExists } from "../io/files.ts";

/** The linear layers of a decoder block, with the submodule that holds each (HF names). */
export const LINEAR_MODULES = {
  q_proj: "self_attn",
  k_proj: "self_attn",
  v_proj: "self_attn",
  o_proj: "self_attn",
  gate_proj: "mlp",
  up_proj: "mlp",
  down_proj: "mlp",
} as const;

/** A linear layer name usable as a LoRA target: q_proj … down_proj. */
export type LinearModule = keyof typeof LINEAR_MODULES;

/** Whether `name` is one of {@linkcode LINEAR_MODULES}. */
export function isLinearModule(name: string): name is LinearModule {
  return Object.hasOwn(LINEAR_MODULES, name);
}

/**
 * HF module path of linear layer `module` in decoder layer `layer`, e.g.
 * `model.layers.3.self_attn.q_proj`; its tensors are `<path>.weight` and `<path>.bias`.
 */
export function linearModulePath(layer: number, module: LinearModule): string {
  return `model.layers.${layer}.${LINEAR_MODULES[module]}.${module}`;
}

/** `[out_features, in_features]` of a linear layer, the layout of its stored `.weight`. */
export function linearShape(config: ModelConfig, module: LinearModule): [number, number] {
  const { hiddenSize, intermediateSize, numHeads, numKvHeads, headDim } = config;
  switch (module) {
    case "q_proj":
      return [numHeads * headDim, hiddenSize];
    case "k_proj":
    case "v_proj":
      return [numKvHeads * headDim, hiddenSize];
    case "o_proj":
      return [hiddenSize, numHeads * headDim];
    case "gate_proj":
    case "up_proj":
      return [intermediateSize, hiddenSize];
    case "down_proj":
      return [hiddenSize, intermediateSize];
  }
}

/**
 * Every parameter tensor the config implies, HF name → shape, in model order (embedding, layers,
 * final norm, then `lm_head.weight` unless tied). These are the tensors a checkpoint must hold and
 * the keys of `CausalLM.lossAndGrads` gradients.
 *
 * @example
 * ```ts
 * expectedTensorShapes(config).get("model.layers.0.self_attn.q_proj.bias"); // [heads·head_dim] for Qwen2
 * ```
 */
export function expectedTensorShapes(config: ModelConfig): Map<string, number[]> {
  const { hiddenSize, vocabSize } = config;
  const shapes = new Map<string, number[]>([["model.embed_tokens.weight", [vocabSize, hiddenSize]]]);
  const norms = config.sandwichNorms
    ? [
      "input_layernorm",
      "post_attention_layernorm",
      "pre_feedforward_layernorm",
      "post_feedforward_layernorm",
    ]
    : ["input_layernorm", "post_attention_layernorm"];
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const norm of norms) shapes.set(`model.layers.${layer}.${norm}.weight`, [hiddenSize]);
    for (const module of Object.keys(LINEAR_MODULES) as LinearModule[]) {
      const path = linearModulePath(layer, module);
      const [out, inFeatures] = linearShape(config, module);
      shapes.set(`${path}.weight`, [out, inFeatures]);
      const isQkv = module === "q_proj" || module === "k_proj" || module === "v_proj";
      if ((isQkv && config.qkvBias) || (module === "o_proj" && config.outputBias)) {
        shapes.set(`${path}.bias`, [out]);
      }
    }
  }
  shapes.set("model.norm.weight", [hiddenSize]);
  if (!config.tieWordEmbeddings) shapes.set("lm_head.weight", [vocabSize, hiddenSize]);
  return shapes;
}

/** A model folder's weights could not be used; the message is one line naming the file. */
export class WeightsError extends Error {
  override name = "WeightsError";
}

const SINGLE_FILE = "model.safetensors";
const INDEX_FILE = "model.safetensors.index.json";

/** Reads the index's weight_map, refusing shard names that would leave the folder. */
async function readWeightMap(indexPath: string): Promise<Map<string, string>> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (e) {
    throw new WeightsError(`Invalid ${indexPath}: ${(e as Error).message.split("\n")[0]}`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new WeightsError(`Invalid ${indexPath}: "weight_map" must map tensor names to shard files`);
  }
  const map = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || shard !== basename(shard) || shard === "." || shard === "..") {
      throw new WeightsError(
        `Invalid ${indexPath}: tensor "${tensor}" maps to ${JSON.stringify(shard)}, not a file name`,
      );
    }
    map.set(tensor, shard);
  }
  return map;
}

/**
 * A model's weights, validated against its config; {@linkcode get} reads one tensor from disk as
 * f32 each time it is called, so the caller decides what stays in memory.
 */
export class ModelWeights implements Disposable {
  readonly #fileOf: Map<string, SafetensorsFile>;
  readonly #files: SafetensorsFile[];

  constructor(
    /** The model folder. */
    readonly dir: string,
    /** The config the weights were checked against. */
    readonly config: ModelConfig,
    fileOf: Map<string, SafetensorsFile>,
  ) {
    this.#fileOf = fileOf;
    this.#files = [...new Set(fileOf.values())];
    this.shapes = expectedTensorShapes(config);
  }

  /** The parameter tensors of the model (name → shape), all present with these shapes. */
  readonly shapes: ReadonlyMap<string, number[]>;

  /** Names of every stored tensor, including ones the model does not use. */
  storedNames(): string[] {
    return [...this.#fileOf.keys()];
  }

  /** Reads tensor `name` as a fresh row-major Float32Array. */
  get(name: string): Float32Array {
    const file = this.#fileOf.get(name);
    if (!file) throw new WeightsError(`No tensor "${name}" in ${this.dir}`);
    return file.read(name);
  }

  /** Closes every weight file. */
  close(): void {
    for (const file of this.#files) file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

async function openAll(dir: string): Promise<Map<string, SafetensorsFile>> {
  const fileOf = new Map<string, SafetensorsFile>();
  if (await pathExists(join(dir, SINGLE_FILE))) {
    const file = await SafetensorsFile.open(join(dir, SINGLE_FILE));
    for (const name of file.tensors.keys()) fileOf.set(name, file);
    return fileOf;
  }
  const indexPath = join(dir, INDEX_FILE);
  if (!(await pathExists(indexPath))) throw new WeightsError(`No ${SINGLE_FILE} or ${INDEX_FILE} in ${dir}`);
  const weightMap = await readWeightMap(indexPath);
  const shards = new Map<string, SafetensorsFile>();
  try {
    for (const shard of new Set(weightMap.values())) {
      const shardPath = join(dir, shard);
      if (!(await pathExists(shardPath))) {
        throw new WeightsError(`Missing shard ${shard} listed in ${indexPath}`);
      }
      shards.set(shard, await SafetensorsFile.open(shardPath));
    }
    for (const [name, shard] of weightMap) {
      const file = shards.get(shard)!;
      if (!file.tensors.has(name)) {
        throw new WeightsError(`Tensor "${name}" listed in ${indexPath} is not in ${shard}`);
      }
      fileOf.set(name, file);
    }
  } catch (e) {
    for (const file of shards.values()) file.close();
    throw e;
  }
  return fileOf;
}

/**
 * Opens the weights of model folder `dir` and checks that every tensor `config` implies is
 * stored with the expected shape (config defaults to `<dir>/config.json`).
 *
 * @example
 * ```ts
 * using weights = await openWeights("../shared/fixtures/qwen2-tiny");
 * const embedding = weights.get("model.embed_tokens.weight"); // 300 × 64 floats
 * ```
 */
export async function openWeights(dir: string, config?: ModelConfig): Promise<ModelWeights> {
  const modelConfig = config ?? await readModelConfig(dir);
  const fileOf = await openAll(dir);
  const weights = new ModelWeights(dir, modelConfig, fileOf);
  try {
    for (const [name, shape] of weights.shapes) {
      const file = fileOf.get(name);
      if (!file) {
        throw new WeightsError(`Missing tensor "${name}" in ${dir} (needed by ${modelConfig.architecture})`);
      }
      const stored = file.shape(name);
      if (stored.join() !== shape.join()) {
        throw new WeightsError(
          `Tensor "${name}" in ${file.path} has shape [${stored.join(", ")}], expected [${
            shape.join(", ")
          }] from the config`,
        );
      }
    }
  } catch (e) {
    weights.close();
    throw e;
  }
  return weights;
}
