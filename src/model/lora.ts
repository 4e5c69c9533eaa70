/**
 * LoRA on a {@linkcode CausalLM}: attach adapters (PEFT initialisation: A Kaiming-uniform with
 * a = √5, i.e. U(−1/√in, 1/√in); B zero, so the model is unchanged at step 0), merge and unmerge
 * them into the base weights, and convert to and from PEFT adapter folders
 * (`src/model/checkpoint.ts`). Dropout is 0 and scaling is alpha / rank, as R²ec uses (r 4, α 128).
 *
 * @module
 */
import { SeededRng } from "../data/rng.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { matmul } from "../ops/matmul.ts";
import type { LoraAdapter, LoraAdapterToSave, LoraFactors } from "./checkpoint.ts";
import type { CausalLM } from "./decoder.ts";
import type { Linear } from "./linear.ts";
import { markWritten, type Param, readChunks, uploadParam, whole } from "./params.ts";
import type { LinearModule } from "./weights.ts";

/** LoRA settings (PEFT names in comments). */
export interface LoraConfig {
  /** `r`. */
  rank: number;
  /** `lora_alpha`; the update is scaled by alpha / rank. */
  alpha: number;
  /** `target_modules`, e.g. q_proj … down_proj. */
  targetModules: LinearModule[];
  /** Seed of the A initialisation. */
  seed?: number;
}

function moduleName(path: string): LinearModule {
  return path.slice(path.lastIndexOf(".") + 1) as LinearModule;
}

/**
 * Attaches LoRA adapters to the targeted linear layers of `model` and freezes every base
 * parameter. With `factors` (from a saved adapter) they start from those values, else from PEFT's
 * initialisation.
 *
 * @example
 * ```ts
 * attachLora(model, { rank: 4, alpha: 128, targetModules: ["q_proj", "v_proj"] });
 * ```
 */
export function attachLora(
  model: CausalLM,
  config: LoraConfig,
  factors?: ReadonlyMap<string, LoraFactors>,
): void {
  const { rank, alpha } = config;
  if (!(Number.isInteger(rank) && rank >= 1)) {
    throw new RangeError(`LoRA rank must be a positive integer, got ${rank}`);
  }
  const rng = new SeededRng(config.seed ?? 0);
  const pool = model.engine.pool;
  for (const p of model.params.values()) p.trainable = false;
  for (const { path, linear } of model.linears()) {
    if (!config.targetModules.includes(moduleName(path))) continue;
    if (linear.lora) throw new Error(`Layer ${path} already has a LoRA adapter`);
    const { inFeatures, outFeatures } = linear;
    const given = factors?.get(path);
    if (factors && !given) throw new Error(`LoRA adapter has no factors for ${path}`);
    const bound = 1 / Math.sqrt(inFeatures);
    const a = given?.a ?? Float32Array.from({ length: rank * inFeatures }, () => rng.uniform(-bound, bound));
    const b = given?.b ?? new Float32Array(outFeatures * rank);
    linear.lora = {
      a: uploadParam(pool, `${path}.lora_A.weight`, [rank, inFeatures], a),
      b: uploadParam(pool, `${path}.lora_B.weight`, [outFeatures, rank], b),
      rank,
      scale: alpha / rank,
      merged: false,
    };
  }
}

/**
 * Attaches a loaded PEFT adapter (see `readLoraAdapter`), keeping its scale.
 *
 * @example
 * ```ts
 * attachLoraAdapter(model, await readLoraAdapter("out/adapter", model.config));
 * ```
 */
export function attachLoraAdapter(model: CausalLM, adapter: LoraAdapter): void {
  attachLora(model, {
    rank: adapter.rank,
    alpha: adapter.scale * adapter.rank,
    targetModules: adapter.targetModules,
  }, adapter.factors);
}

/** The adapted linear layers of `model` with their module paths. */
export function adaptedLinears(model: CausalLM): { path: string; linear: Linear }[] {
  return model.linears().filter(({ linear }) => linear.lora !== null);
}

/** Every LoRA factor parameter of `model`, A and B of each adapted layer in order. */
export function loraParams(model: CausalLM): Param[] {
  return adaptedLinears(model).flatMap(({ linear }) => [linear.lora!.a, linear.lora!.b]);
}

/** Records `target += sign·scale·B·A` for one adapted layer (target: its weight or a copy). */
function foldInto(rec: Recorder, linear: Linear, sign: 1 | -1, target = whole(linear.weight.value)): void {
  const lora = linear.lora!;
  if (target === whole(linear.weight.value)) markWritten(linear.weight);
  matmul(rec, whole(lora.b.value), whole(lora.a.value), target, {
    m: linear.outFeatures,
    n: linear.inFeatures,
    k: lora.rank,
    accumulate: true,
    alpha: sign * lora.scale,
  });
}

/**
 * Folds every adapter into its base weight (`W += s·B·A`); forwards then skip the adapter path.
 * {@linkcode unmergeLora} subtracts it again (f32 rounding leaves W within an ulp or so).
 */
export async function mergeLora(model: CausalLM): Promise<void> {
  const rec = model.engine.recorder();
  for (const { linear } of adaptedLinears(model)) {
    if (linear.lora!.merged) continue;
    foldInto(rec, linear, 1);
    linear.lora!.merged = true;
  }
  await rec.submit();
}

/** Undoes {@linkcode mergeLora}. */
export async function unmergeLora(model: CausalLM): Promise<void> {
  const rec = model.engine.recorder();
  for (const { linear } of adaptedLinears(model)) {
    if (!linear.lora!.merged) continue;
    foldInto(rec, linear, -1);
    linear.lora!.merged = false;
  }
  await rec.submit();
}

/**
 * Reads every base parameter (HF names) back in one submit, with the adapters folded in when
 * `merged` and left out otherwise, whatever the model's current merge state; the model's own
 * weights are not modified (the fold is computed in copies).
 *
 * @example
 * ```ts
 * await saveHfCheckpoint("out/merged", model.config, await readBaseWeights(model, true));
 * ```
 */
export async function readBaseWeights(model: CausalLM, merged: boolean): Promise<Map<string, Float32Array>> {
  const pool = model.engine.pool;
  const rec = model.engine.recorder();
  const adapted = new Map(adaptedLinears(model).map(({ linear }) => [linear.weight, linear] as const));
  const copies: Tensor[] = [];
  const reads = [...model.params.values()].map((p) => {
    const linear = adapted.get(p);
    if (!linear || linear.lora!.merged === merged) return [p.name, readChunks(rec, p.value)] as const;
    const copy = pool.tensor(p.shape, "f32", `${p.name}.folded`);
    rec.copy(whole(p.value), copy);
    foldInto(rec, linear, merged ? 1 : -1, copy);
    copies.push(copy);
    return [p.name, rec.read(copy)] as const;
  });
  for (const copy of copies) pool.release(copy);
  await rec.submit();
  return new Map(await Promise.all(reads.map(async ([name, values]) => [name, await values] as const)));
}

/**
 * Reads the adapter factors back (one submit) in the form `saveLoraAdapter` writes.
 *
 * @example
 * ```ts
 * await saveLoraAdapter("out/adapter", model.config, await loraAdapterOf(model, "Qwen/Qwen2.5-3B-Instruct"));
 * ```
 */
export async function loraAdapterOf(model: CausalLM, baseModel = model.dir): Promise<LoraAdapterToSave> {
  const adapted = adaptedLinears(model);
  if (adapted.length === 0) throw new Error("The model has no LoRA adapters to save");
  const rec = model.engine.recorder();
  const reads = adapted.map(({ path, linear }) => ({
    path,
    a: readChunks(rec, linear.lora!.a.value),
    b: readChunks(rec, linear.lora!.b.value),
  }));
  await rec.submit();
  const factors = new Map<string, LoraFactors>();
  for (const r of reads) factors.set(r.path, { a: await r.a, b: await r.b });
  const first = adapted[0].linear.lora!;
  const targetModules = [...new Set(adapted.map(({ path }) => moduleName(path)))];
  return { rank: first.rank, alpha: first.scale * first.rank, targetModules, baseModel, factors };
}
