/**
 * Saving model folders the Python ecosystem loads unchanged: HF-layout checkpoints
 * (`config.json` + `model.safetensors` + tokenizer files) and PEFT-layout LoRA adapters
 * (`adapter_config.json` + `adapter_model.safetensors`), and reading adapters back.
 *
 * Every folder is written complete under `<dir>.tmp-<pid>` and then renamed into place, so a killed
 * process leaves either the previous folder or the new one, never a half-written one.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { writeJsonAtomic } from "../io/files.ts";
import { type ModelConfig, writeModelConfig } from "./config.ts";
import { SafetensorsFile, type TensorToWrite, type WritableDtype, writeSafetensors } from "./safetensors.ts";
import {
  expectedTensorShapes,
  isLinearModule,
  LINEAR_MODULES,
  type LinearModule,
  linearModulePath,
  linearShape,
} from "./weights.ts";

/** Files of a model folder that describe its tokenizer and generation defaults. */
export const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "tokenizer.model",
  "chat_template.jinja",
  "generation_config.json",
];

/**
 * Builds folder `dir` atomically: `fill` writes into a fresh `<dir>.tmp-<pid>`, which then replaces
 * `dir`. An existing `dir` is moved aside first and deleted after the swap, because a rename cannot
 * replace a non-empty directory.
 *
 * @example
 * ```ts
 * await writeDirectoryAtomic("runs/step-100", async (tmp) => {
 *   await Deno.writeTextFile(`${tmp}/state.json`, "{}");
 * });
 * ```
 */
export async function writeDirectoryAtomic(
  dir: string,
  fill: (tempDir: string) => Promise<void>,
): Promise<void> {
  const target = resolve(dir);
  const temp = `${target}.tmp-${Deno.pid}`;
  await Deno.remove(temp, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
  await Deno.mkdir(temp, { recursive: true });
  try {
    await fill(temp);
  } catch (e) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw e;
  }
  const aside = `${target}.old-${Deno.pid}`;
  let movedAside = false;
  try {
    await Deno.rename(target, aside);
    movedAside = true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.rename(temp, target);
  if (movedAside) await Deno.remove(aside, { recursive: true });
}

/** Where a tensor's f32 values come from: a map, or a function called once per tensor while writing. */
export type TensorSource =
  | ReadonlyMap<string, Float32Array>
  | ((name: string) => Float32Array | Promise<Float32Array>);

/** Options of {@linkcode saveHfCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Storage dtype of model.safetensors (default F32: the training master weights, exactly). */
  dtype?: WritableDtype;
  /** A folder whose tokenizer and generation files ({@linkcode TOKENIZER_FILES}) are copied along. */
  tokenizerDir?: string;
}

/**
 * Saves an HF-layout checkpoint: `config.json`, `model.safetensors` holding exactly the tensors
 * `config` implies (merge LoRA into them first for a merged checkpoint), and the tokenizer files
 * of `options.tokenizerDir` when given.
 *
 * @example
 * ```ts
 * await saveHfCheckpoint("out/model", config, (name) => weights.get(name), {
 *   dtype: "BF16",
 *   tokenizerDir: "models/qwen",
 * });
 * ```
 */
export async function saveHfCheckpoint(
  dir: string,
  config: ModelConfig,
  tensors: TensorSource,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? "F32";
  const read = typeof tensors === "function" ? tensors : (name: string) => {
    const data = tensors.get(name);
    if (!data) throw new Error(`Cannot save ${dir}: no values for tensor "${name}"`);
    return data;
  };
  const toWrite = new Map<string, TensorToWrite>();
  for (const [name, shape] of expectedTensorShapes(config)) {
    toWrite.set(name, {
      dtype,
      shape,
      data: () => read(name),
    });
  }
  await writeDirectoryAtomic(dir, async (temp) => {
    await writeModelConfig(temp, config, dtype === "F32" ? "float32" : "bfloat16");
    await writeSafetensors(join(temp, "model.safetensors"), toWrite, { format: "pt" });
    if (options.tokenizerDir) await copyPresent(options.tokenizerDir, temp, TOKENIZER_FILES);
  });
}

async function copyPresent(from: string, to: string, names: string[]): Promise<void> {
  for (const name of names) {
    try {
      await Deno.copyFile(join(from, name), join(to, name));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}

/** The factors of one LoRA update `ΔW = scale · B·A` of a linear layer. */
export interface LoraFactors {
  /** `lora_A.weight`, `[rank × in_features]` row-major. */
  a: Float32Array;
  /** `lora_B.weight`, `[out_features × rank]` row-major. */
  b: Float32Array;
}

/** A LoRA adapter: settings, plus factors keyed by HF module path (`model.layers.0.self_attn.q_proj`). */
export interface LoraAdapter {
  rank: number;
  alpha: number;
  /** Short names of the adapted linear layers (PEFT `target_modules`). */
  targetModules: LinearModule[];
  /** Base model recorded in adapter_config.json (`base_model_name_or_path`). */
  baseModel: string;
  /** Multiplier of B·A: alpha / rank, or alpha / √rank with rsLoRA. */
  scale: number;
  factors: Map<string, LoraFactors>;
}

/** Settings and factors to save with {@linkcode saveLoraAdapter}; the scale is alpha / rank. */
export type LoraAdapterToSave = Omit<LoraAdapter, "scale">;

/** PEFT's name for the A or B factor of a module in a causal LM wrapped by `get_peft_model`. */
export function peftTensorName(modulePath: string, factor: "A" | "B"): string {
  return `base_model.model.${modulePath}.lora_${factor}.weight`;
}

const PEFT_TENSOR =
  /^base_model\.model\.(model\.layers\.(\d+)\.(?:self_attn|mlp)\.([a-z_]+))\.lora_([AB])\.weight$/;

/** Every module path a LoRA with `targetModules` adapts, layer by layer. */
export function loraModulePaths(config: ModelConfig, targetModules: readonly LinearModule[]): string[] {
  const paths: string[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const module of targetModules) paths.push(linearModulePath(layer, module));
  }
  return paths;
}

function factorShapes(config: ModelConfig, modulePath: string, rank: number): { a: number[]; b: number[] } {
  const module = modulePath.slice(modulePath.lastIndexOf(".") + 1) as LinearModule;
  const [out, inFeatures] = linearShape(config, module);
  return { a: [rank, inFeatures], b: [out, rank] };
}

/**
 * Saves a PEFT-layout LoRA adapter folder: `adapter_config.json` (peft_type LORA, dropout 0, bias
 * none, task CAUSAL_LM) and `adapter_model.safetensors` with PEFT tensor names. Every targeted
 * module of every layer must have factors of the right size.
 *
 * @example
 * ```ts
 * await saveLoraAdapter("out/adapter", config, {
 *   rank: 4, alpha: 128, targetModules: ["q_proj", "v_proj"], baseModel: "Qwen/Qwen2.5-3B-Instruct", factors,
 * });
 * ```
 */
export async function saveLoraAdapter(
  dir: string,
  config: ModelConfig,
  adapter: LoraAdapterToSave,
): Promise<void> {
  const tensors = new Map<string, TensorToWrite>();
  for (const path of loraModulePaths(config, adapter.targetModules)) {
    const factors = adapter.factors.get(path);
    if (!factors) throw new Error(`Cannot save adapter ${dir}: no LoRA factors for ${path}`);
    const shapes = factorShapes(config, path, adapter.rank);
    tensors.set(peftTensorName(path, "A"), { dtype: "F32", shape: shapes.a, data: factors.a });
    tensors.set(peftTensorName(path, "B"), { dtype: "F32", shape: shapes.b, data: factors.b });
  }
  const adapterConfig = {
    base_model_name_or_path: adapter.baseModel,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: adapter.alpha,
    lora_dropout: 0.0,
    modules_to_save: null,
    peft_type: "LORA",
    r: adapter.rank,
    revision: null,
    target_modules: adapter.targetModules,
    task_type: "CAUSAL_LM",
  };
  await writeDirectoryAtomic(dir, async (temp) => {
    await writeJsonAtomic(join(temp, "adapter_config.json"), adapterConfig);
    await writeSafetensors(join(temp, "adapter_model.safetensors"), tensors, { format: "pt" });
  });
}

/** An adapter folder that cannot be used; the message is one line naming the file and field. */
export class AdapterError extends Error {
  override name = "AdapterError";
}

function adapterSettings(path: string, json: Record<string, unknown>) {
  const fail = (reason: string): never => {
    throw new AdapterError(`Unsupported adapter ${path}: ${reason}`);
  };
  if (json.peft_type !== "LORA") fail(`peft_type ${JSON.stringify(json.peft_type)} is not "LORA"`);
  const { r: rank, lora_alpha: alpha, target_modules: targets } = json;
  if (typeof rank !== "number" || !Number.isSafeInteger(rank) || rank <= 0) {
    fail(`"r" must be a positive integer`);
  }
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) fail(`"lora_alpha" must be a number`);
  if (!Array.isArray(targets) || !targets.every((t) => typeof t === "string" && isLinearModule(t))) {
    fail(`"target_modules" must be a list drawn from ${Object.keys(LINEAR_MODULES).join(", ")}`);
  }
  if ((json.bias ?? "none") !== "none") fail(`bias ${JSON.stringify(json.bias)} is not "none"`);
  if (json.use_dora === true) fail("DoRA (use_dora) is not supported");
  if (json.fan_in_fan_out === true) fail("fan_in_fan_out is not supported");
  for (const key of ["rank_pattern", "alpha_pattern"]) {
    const pattern = json[key];
    if (pattern && typeof pattern === "object" && Object.keys(pattern).length > 0) {
      fail(`${key} is not supported`);
    }
  }
  const r = rank as number;
  const scale = json.use_rslora === true ? (alpha as number) / Math.sqrt(r) : (alpha as number) / r;
  const baseModel = typeof json.base_model_name_or_path === "string" ? json.base_model_name_or_path : "";
  return { rank: r, alpha: alpha as number, targetModules: targets as LinearModule[], baseModel, scale };
}

/**
 * Reads a PEFT LoRA adapter folder. With `config`, every factor's shape is checked against the
 * model it will be applied to.
 *
 * @example
 * ```ts
 * const adapter = await readLoraAdapter("out/adapter", config);
 * adapter.factors.get("model.layers.0.self_attn.q_proj")?.a; // rank × hidden floats
 * ```
 */
export async function readLoraAdapter(dir: string, config?: ModelConfig): Promise<LoraAdapter> {
  const configPath = join(dir, "adapter_config.json");
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await Deno.readTextFile(configPath));
  } catch (e) {
    throw new AdapterError(`Cannot read ${configPath}: ${(e as Error).message.split("\n")[0]}`);
  }
  const settings = adapterSettings(configPath, json);
  const weightsPath = join(dir, "adapter_model.safetensors");
  using file = await SafetensorsFile.open(weightsPath);
  const parts = new Map<string, Partial<LoraFactors>>();
  for (const name of file.tensors.keys()) {
    const match = PEFT_TENSOR.exec(name);
    const [, path, layer, module, factor] = match ?? [];
    const known = match && isLinearModule(module) && settings.targetModules.includes(module) &&
      path === linearModulePath(Number(layer), module) && (!config || Number(layer) < config.numLayers);
    if (!known) throw new AdapterError(`Unsupported adapter ${weightsPath}: unexpected tensor "${name}"`);
    const shape = file.shape(name);
    const expected = config
      ? factorShapes(config, path, settings.rank)[factor === "A" ? "a" : "b"]
      : factor === "A"
      ? [settings.rank, shape[1]]
      : [shape[0], settings.rank];
    if (shape.join() !== expected.join()) {
      throw new AdapterError(
        `Invalid adapter ${weightsPath}: tensor "${name}" has shape [${shape.join(", ")}], expected [${
          expected.join(", ")
        }]`,
      );
    }
    const entry = parts.get(path) ?? {};
    entry[factor === "A" ? "a" : "b"] = file.read(name);
    parts.set(path, entry);
  }
  const factors = new Map<string, LoraFactors>();
  for (const [path, { a, b }] of parts) {
    if (!a || !b) {
      throw new AdapterError(
        `Invalid adapter ${weightsPath}: ${path} has lora_${a ? "A" : "B"} without lora_${a ? "B" : "A"}`,
      );
    }
    factors.set(path, { a, b });
  }
  return { ...settings, factors };
}
