/**
 * The layout of a training run directory and its crash safety:
 *
 * ```
 * <out>/config.json          resolved run config
 * <out>/log.jsonl            one JSON record per step / eval (trl key names)
 * <out>/checkpoint-<step>/   model (HF layout) or adapter (PEFT layout), optimizer.safetensors,
 *                            trainer_state.json — written under a temporary name, then renamed
 * <out>/model/               the final model, HF layout (LoRA merged)
 * ```
 *
 * A directory named exactly `checkpoint-<step>` is complete by construction; anything with a
 * `.tmp-<pid>` or `.old-<pid>` suffix is what a killed process left, and is removed.
 *
 * @example
 * ```ts
 * await removePartialWrites("runs/tiny");
 * const latest = await latestCheckpoint("runs/tiny"); // { step: 200, dir: "runs/tiny/checkpoint-200" } or null
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from "../model/safetensors.ts";
import type { OptimizerSnapshot } from "../model/trainable.ts";
import type { FlatConfig } from "./config.ts";
import { writeTextAtomic } from "../io/files.ts";

const CHECKPOINT = /^checkpoint-(\d+)$/;
const PARTIAL = /\.(tmp|old)-\d+/;

/** Path of the checkpoint after optimizer step `step`. */
export function checkpointDir(out: string, step: number): string {
  return join(out, `checkpoint-${step}`);
}

/** Removes every temporary file or directory a killed writer left directly under `out`. */
export async function removePartialWrites(out: string): Promise<string[]> {
  const removed: string[] = [];
  for (const entry of await entries(out)) {
    if (!PARTIAL.test(entry.name)) continue;
    await Deno.remove(join(out, entry.name), { recursive: true });
    removed.push(entry.name);
  }
  return removed;
}

/** Complete checkpoints under `out`, oldest first. */
export async function listCheckpoints(out: string): Promise<{ step: number; dir: string }[]> {
  const found = [];
  for (const entry of await entries(out)) {
    const match = CHECKPOINT.exec(entry.name);
    if (match && entry.isDirectory) found.push({ step: Number(match[1]), dir: join(out, entry.name) });
  }
  return found.sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint under `out`, or null. */
export async function latestCheckpoint(out: string): Promise<{ step: number; dir: string } | null> {
  return (await listCheckpoints(out)).at(-1) ?? null;
}

/** Deletes all but the newest `keep` checkpoints. */
export async function pruneCheckpoints(out: string, keep: number): Promise<void> {
  const all = await listCheckpoints(out);
  for (const { dir } of all.slice(0, Math.max(0, all.length - keep))) await removeDirectory(dir);
}

/**
 * Deletes a directory by renaming it to a `.old-<pid>` name first, so a process killed while
 * deleting leaves a name {@linkcode removePartialWrites} cleans, never a half-emptied checkpoint.
 */
export async function removeDirectory(dir: string): Promise<void> {
  const aside = `${dir}.old-${Deno.pid}`;
  try {
    await Deno.rename(dir, aside);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  await Deno.remove(aside, { recursive: true });
}

async function entries(dir: string): Promise<Deno.DirEntry[]> {
  try {
    return await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
}

/** `trainer_state.json`: where the run stands after `global_step` optimizer steps. */
export interface TrainerState {
  global_step: number;
  /** Micro-batches drawn so far; the next batch is drawn with this counter. */
  batches_drawn: number;
  tokens_seen: number;
  /** The resolved run config. */
  config: FlatConfig;
}

/** Reads `<dir>/trainer_state.json`, naming the file in every error. */
export async function readTrainerState(dir: string): Promise<TrainerState> {
  const path = join(dir, "trainer_state.json");
  let state: TrainerState;
  try {
    state = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`Cannot read ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (!Number.isInteger(state.global_step) || typeof state.config !== "object" || state.config === null) {
    throw new Error(`Invalid ${path}: global_step or config missing`);
  }
  return state;
}

/** Writes `optimizer.safetensors` (torch names `exp_avg`, `exp_avg_sq`; the step in the metadata). */
export async function writeOptimizerState(dir: string, state: OptimizerSnapshot): Promise<void> {
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, { shape, m, v }] of state.moments) {
    tensors.set(`${name}.exp_avg`, { dtype: "F32", shape: [...shape], data: m });
    tensors.set(`${name}.exp_avg_sq`, { dtype: "F32", shape: [...shape], data: v });
  }
  await writeSafetensors(join(dir, "optimizer.safetensors"), tensors, { step: String(state.step) });
}

/** Reads `optimizer.safetensors` for the tensors named in `names`. */
export async function readOptimizerState(dir: string, names: readonly string[]): Promise<OptimizerSnapshot> {
  using file = await SafetensorsFile.open(join(dir, "optimizer.safetensors"));
  const step = Number(file.metadata.step);
  if (!Number.isInteger(step) || step < 0) {
    throw new Error(`Invalid ${file.path}: metadata "step" is missing`);
  }
  const moments: OptimizerSnapshot["moments"] = new Map();
  for (const name of names) {
    moments.set(name, {
      shape: file.shape(`${name}.exp_avg`),
      m: file.read(`${name}.exp_avg`),
      v: file.read(`${name}.exp_avg_sq`),
    });
  }
  return { step, moments };
}

/**
 * Keeps only the log records of steps ≤ `step` (a resumed run rewrites what came after) and
 * returns them.
 */
export async function truncateLog(path: string, step: number): Promise<Record<string, number>[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const kept: Record<string, number>[] = [];
  for (const line of text.split("\n")) {
    try {
      const record = JSON.parse(line);
      if (record.step <= step) kept.push(record);
    } catch {
      // A torn last line or a blank one.
    }
  }
  await writeTextAtomic(path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  return kept;
}
