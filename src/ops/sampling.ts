/**
 * Next-token sampling on the GPU (forward only) with Hugging Face semantics: repetition penalty →
 * temperature → top-k → top-p → multinomial draw; temperature 0 is greedy. Draws come from a
 * counter-based hash of `(seed, step, row)`, so a generation is reproducible for a seed.
 *
 * @example
 * ```ts
 * sampleTokens(rec, logits, history, next, {
 *   batch: 1, vocab: 151936, temperature: 0.7, topK: 20, topP: 0.8, repetitionPenalty: 1.05, seed: 42, step,
 * });
 * const ids = rec.readInt(next); // resolved by the decode step's single submit
 * ```
 *
 * @module
 */
import { type Binding, params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";
import { scratchBuffer } from "./scratch.ts";

/** Sampling settings; `topK` 0 and `topP` 1 disable those filters, `repetitionPenalty` 1 disables it. */
export interface SamplingOptions {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  step: number;
}

/** Batch shape plus settings of one `sampleTokens` call. */
export interface SamplingShape extends SamplingOptions {
  batch: number;
  vocab: number;
}

function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The uniform in [0, 1) the kernel draws for `(seed, step, row)` (24 bits of a PCG hash chain). */
export function samplingUniform(seed: number, step: number, row: number): number {
  return (pcg(pcg(pcg(row) + step) + seed) >>> 8) / 16777216;
}

/** Throws on settings outside HF's accepted ranges. */
export function validateSampling(opts: SamplingOptions): void {
  if (!(opts.temperature >= 0)) throw new RangeError(`Sampling temperature ${opts.temperature} must be ≥ 0`);
  if (!Number.isInteger(opts.topK) || opts.topK < 0) {
    throw new RangeError(`Sampling topK ${opts.topK} must be an integer ≥ 0`);
  }
  if (!(opts.topP > 0 && opts.topP <= 1)) {
    throw new RangeError(`Sampling topP ${opts.topP} must be in (0, 1]`);
  }
  if (!(opts.repetitionPenalty > 0)) {
    throw new RangeError(`Sampling repetitionPenalty ${opts.repetitionPenalty} must be > 0`);
  }
}

/**
 * CPU reference for one row: the probabilities the draw uses after every filter (greedy: 1 on the
 * argmax). Sort-based, independent of the kernel's threshold search; tokens tied with the last
 * top-p token are all kept.
 */
export function filteredDistributionCpu(
  logits: ArrayLike<number>,
  previous: ArrayLike<number>,
  opts: SamplingOptions,
): Float64Array {
  const vocab = logits.length;
  const scores = Float64Array.from(logits);
  for (const token of new Set(Array.from(previous))) {
    if (token < 0 || token >= vocab) continue;
    const v = logits[token];
    scores[token] = v > 0 ? v / opts.repetitionPenalty : v * opts.repetitionPenalty;
  }
  const probs = new Float64Array(vocab);
  const order = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  if (opts.temperature === 0) {
    probs[order[0]] = 1;
    return probs;
  }
  const z = scores.map((s) => s / opts.temperature);
  let kept = order;
  if (opts.topK > 0 && opts.topK < vocab) {
    const kth = z[order[opts.topK - 1]];
    kept = order.filter((i) => z[i] >= kth);
  }
  const weights = kept.map((i) => Math.exp(z[i] - z[order[0]]));
  const total = weights.reduce((a, b) => a + b, 0);
  let count = kept.length;
  if (opts.topP < 1) {
    let mass = 0;
    count = 0;
    while (count < kept.length && (mass < opts.topP || z[kept[count]] === z[kept[count - 1]])) {
      mass += weights[count++] / total;
    }
  }
  const keptMass = weights.slice(0, count).reduce((a, b) => a + b, 0);
  for (let r = 0; r < count; r++) probs[kept[r]] = weights[r] / keptMass;
  return probs;
}

/** CPU reference of `sampleTokens` for `[batch × vocab]` logits and `[batch × history]` previous tokens. */
export function sampleTokensCpu(
  logits: ArrayLike<number>,
  previous: ArrayLike<number>,
  { batch, vocab, ...opts }: SamplingShape,
): Int32Array {
  const history = batch > 0 ? previous.length / batch : 0;
  const out = new Int32Array(batch);
  for (let row = 0; row < batch; row++) {
    const probs = filteredDistributionCpu(
      Array.prototype.slice.call(logits, row * vocab, (row + 1) * vocab),
      Array.prototype.slice.call(previous, row * history, (row + 1) * history),
      opts,
    );
    const target = samplingUniform(opts.seed, opts.step, row);
    let running = 0;
    let pick = -1;
    for (let j = 0; j < vocab; j++) {
      if (probs[j] === 0) continue;
      pick = j;
      running += probs[j];
      if (running > target) break;
    }
    out[row] = pick;
  }
  return out;
}

/**
 * Records the sampling of one token per row of `logits [batch × vocab]` into `out (i32 [batch])`.
 * `prevTokens (i32 [batch × history], −1 padded)` feeds the repetition penalty.
 */
export function sampleTokens(
  rec: Recorder,
  logits: Tensor,
  prevTokens: Tensor,
  out: Tensor,
  shape: SamplingShape,
): void {
  validateSampling(shape);
  const { batch, vocab } = shape;
  const history = batch > 0 ? prevTokens.size / batch : 0;
  if (!Number.isInteger(history)) {
    throw new RangeError(
      `Sampling prevTokens has ${prevTokens.size} values, not a multiple of batch ${batch}`,
    );
  }
  let scores: Binding = logits;
  if (shape.repetitionPenalty !== 1 && prevTokens.size > 0) {
    const bytes = batch * vocab * 4;
    scores = { buffer: scratchBuffer(rec, "sampling.scores", bytes), size: bytes };
    rec.encoder().copyBufferToBuffer(logits.buffer, 0, scores.buffer, 0, bytes);
    const { groups, rowStride } = elementGrid(prevTokens.size, 64);
    rec.dispatch(
      rec.kernel("sampling", "sampling_penalty"),
      [logits, prevTokens, scores],
      groups,
      params([["u32", prevTokens.size], ["u32", history], ["u32", vocab], ["u32", rowStride], [
        "f32",
        shape.repetitionPenalty,
      ]]),
    );
  }
  rec.dispatch(
    rec.kernel("sampling", "sampling_forward"),
    [scores, out],
    [batch],
    params([
      ["u32", vocab],
      ["u32", shape.topK],
      ["u32", shape.seed >>> 0],
      ["u32", shape.step >>> 0],
      ["f32", shape.temperature],
      ["f32", shape.topP],
    ]),
  );
}
