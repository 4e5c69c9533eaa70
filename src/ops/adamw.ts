/**
 * AdamW with global gradient-norm clipping, entirely on the GPU (no sync): per-tensor partial sums
 * of squares → one reduction to the global norm and clip coefficient → the AdamW update of every
 * tensor. Semantics are PyTorch's `clip_grad_norm_` followed by `torch.optim.AdamW` (decoupled
 * weight decay, bias correction). Gradients are read, not modified: clear them before the next step.
 *
 * @example
 * ```ts
 * adamwStep(rec, params.map((p) => ({ param: p.value, grad: p.grad, m: p.m, v: p.v })), {
 *   lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step, maxGradNorm: 1,
 * }, gradNorm);
 * const norm = rec.read(gradNorm); // resolved by the step's single submit
 * ```
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";
import type { PackedBf16 } from "./matmul.ts";
import { scratchBuffer } from "./scratch.ts";

const WG = 64;
/** Lanes of a sum-of-squares workgroup (`SUM_WG` in adamw.wgsl); each writes one partial. */
const SUM_WG = 8;
/**
 * Loads (f32 or vec4) per sum-of-squares workgroup, 256 per lane: ~7 k partials for the reference
 * decoder's 7.6 M parameters, few enough to reduce in one workgroup.
 */
const SUM_BLOCK = SUM_WG * 256;
/** `maxComputeWorkgroupsPerDimension`: a tensor of more than 65535 blocks takes longer blocks. */
const MAX_GROUPS = 65535;

/** One parameter tensor with its gradient and Adam moments (all the same size). */
export interface AdamwGroup<T = Tensor> {
  param: T;
  grad: T;
  m: T;
  v: T;
  /**
   * GPU only: a bf16 row pack of the parameter (`packBf16` of it as `[rows × cols]`, cols a
   * multiple of 8) that the update rewrites with the new values, so the next products read the
   * updated weight without a packing pass. Over the reference decoder's weights here: update
   * alone 21.9 ms, with the packs 22.9 ms, update then separate packs 43.0 ms (interleaved medians).
   */
  rowPack?: PackedBf16;
}

/** Hyper-parameters of one step; `step` counts from 1, `maxGradNorm` 0 disables clipping. */
export interface AdamwOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
  maxGradNorm: number;
}

/** The clip coefficient of `clip_grad_norm_`: `min(1, maxNorm / (norm + 1e-6))`, 1 when off. */
export function clipCoefficient(norm: number, maxGradNorm: number): number {
  return maxGradNorm > 0 ? Math.min(1, maxGradNorm / (norm + 1e-6)) : 1;
}

/**
 * CPU reference: clips and updates `groups` in place (f64), returning the global gradient norm
 * before clipping.
 */
export function adamwStepCpu(groups: AdamwGroup<Float64Array>[], opts: AdamwOptions): number {
  let squares = 0;
  for (const { grad } of groups) for (const g of grad) squares += g * g;
  const norm = Math.sqrt(squares);
  const coef = clipCoefficient(norm, opts.maxGradNorm);
  const stepSize = opts.lr / (1 - opts.beta1 ** opts.step);
  const bias2Sqrt = Math.sqrt(1 - opts.beta2 ** opts.step);
  for (const { param, grad, m, v } of groups) {
    for (let i = 0; i < param.length; i++) {
      const g = grad[i] * coef;
      param[i] *= 1 - opts.lr * opts.weightDecay;
      m[i] += (1 - opts.beta1) * (g - m[i]);
      v[i] = v[i] * opts.beta2 + (1 - opts.beta2) * g * g;
      param[i] -= stepSize * (m[i] / (Math.sqrt(v[i]) / bias2Sqrt + opts.eps));
    }
  }
  return norm;
}

/**
 * Records one clipped AdamW step over `groups`; writes the pre-clip global gradient norm to
 * `gradNorm [1]`.
 */
export function adamwStep(rec: Recorder, groups: AdamwGroup[], opts: AdamwOptions, gradNorm: Tensor): void {
  if (!(opts.step >= 1)) throw new RangeError(`AdamW step ${opts.step} must count from 1`);
  const vec4 = groups.map(({ grad }) => grad.size % 4 === 0);
  const units = groups.map(({ grad }, i) => (vec4[i] ? grad.size / 4 : grad.size));
  const blockSizes = units.map((n) => Math.max(SUM_BLOCK, Math.ceil(n / MAX_GROUPS)));
  const blocks = units.map((n, i) => Math.max(1, Math.ceil(n / blockSizes[i])));
  const count = SUM_WG * blocks.reduce((a, b) => a + b, 0);
  const partials = { buffer: scratchBuffer(rec, "adamw.partials", 4 * (count + 1)) };
  let first = 0;
  groups.forEach(({ grad }, i) => {
    rec.dispatch(
      rec.kernel("adamw", vec4[i] ? "adamw_sumsq_vec4" : "adamw_sumsq"),
      [grad, partials],
      [blocks[i]],
      params([["u32", units[i]], ["u32", first], ["u32", blockSizes[i]]]),
    );
    first += SUM_WG * blocks[i];
  });
  rec.dispatch(
    rec.kernel("adamw", "adamw_norm"),
    [partials, gradNorm],
    [1],
    params([["u32", count], [
      "f32",
      opts.maxGradNorm,
    ]]),
  );
  for (const { param, grad, m, v, rowPack } of groups) {
    if (rowPack && (rowPack.cols % 8 !== 0 || rowPack.rows * rowPack.cols !== param.size)) {
      throw new RangeError(
        `AdamW row pack of ${param.name} is ${rowPack.rows}×${rowPack.cols}: needs ${param.size} values in rows of whole texels`,
      );
    }
    // Values per lane: a texel with a row pack, else a vec4 when the size allows.
    const [width, entry] = rowPack
      ? [8, "adamw_update_packed"]
      : param.size % 4 === 0
      ? [4, "adamw_update_vec4"]
      : [1, "adamw_update"];
    const lanes = param.size / width;
    const { groups: grid, rowStride } = elementGrid(lanes, WG);
    rec.dispatch(
      rec.kernel("adamw", entry),
      rowPack ? [param, grad, m, v, partials, rowPack.texture.createView()] : [param, grad, m, v, partials],
      grid,
      params([
        ["u32", lanes],
        ["u32", rowStride],
        ["u32", count],
        ["u32", rowPack ? rowPack.cols / 8 : 0],
        ["f32", 1 - opts.lr * opts.weightDecay],
        ["f32", opts.beta1],
        ["f32", 1 - opts.beta1],
        ["f32", opts.beta2],
        ["f32", 1 - opts.beta2],
        ["f32", opts.eps],
        ["f32", opts.lr / (1 - opts.beta1 ** opts.step)],
        ["f32", Math.sqrt(1 - opts.beta2 ** opts.step)],
      ]),
    );
  }
}
