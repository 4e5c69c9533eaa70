/**
 * Recommendation scores (rrec-spec §C.1): `s(u, v) = cos(u, v) / τ` (τ = 0.02 in R²ec), a softmax
 * cross-entropy over score rows with a mask (history items and the pad item 0 masked out), and
 * the backward of both, through the L2 normalisation, into users and items. In-batch
 * (M = B target items) and full-catalogue (M = N + 1 items) use the same ops.
 *
 * @example
 * ```ts
 * cosineScores(rec, u, items, scores, { b: 4, m: 4, d: 256, tau: 0.02 });
 * scoreSoftmaxCE(rec, scores, target, mask, loss, probs, { b: 4, m: 4 });
 * scoreSoftmaxCEBackward(rec, probs, target, mask, dLoss, dScores, { b: 4, m: 4 });
 * cosineScoresBackward(rec, dScores, u, items, du, dItems, { b: 4, m: 4, d: 256, tau: 0.02 });
 * ```
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";
import { matmul } from "./matmul.ts";
import { scratchBuffer } from "./scratch.ts";

const WG = 64;
/** Norms below this are clamped (as `torch.nn.functional.normalize`), so zero rows stay finite. */
export const NORMALIZE_EPS = 1e-12;

/** Sizes of a score matrix: `b` users × `m` items of dimension `d`, temperature `tau`. */
export interface CosineScoreOptions {
  b: number;
  m: number;
  d: number;
  tau: number;
  /**
   * The items are already unit rows (a cached catalogue passed once through
   * {@linkcode normalizeRows}): skip normalising them again (forward only).
   */
  itemsNormalized?: boolean;
}

/** Sizes of a score matrix for the cross-entropy: `b` rows × `m` items. */
export interface ScoreCEOptions {
  b: number;
  m: number;
}

function normalizedRowsCpu(
  x: ArrayLike<number>,
  rows: number,
  d: number,
): { xn: Float64Array; norm: Float64Array } {
  const xn = new Float64Array(rows * d), norm = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let c = 0; c < d; c++) ss += x[r * d + c] ** 2;
    norm[r] = Math.sqrt(ss);
    const inv = 1 / Math.max(norm[r], NORMALIZE_EPS);
    for (let c = 0; c < d; c++) xn[r * d + c] = x[r * d + c] * inv;
  }
  return { xn, norm };
}

/** CPU reference: `scores [b × m] = (u/‖u‖)·(items/‖items‖)ᵀ / τ` (f64). */
export function cosineScoresCpu(
  u: ArrayLike<number>,
  items: ArrayLike<number>,
  o: CosineScoreOptions,
): Float64Array {
  const un = normalizedRowsCpu(u, o.b, o.d).xn, vn = normalizedRowsCpu(items, o.m, o.d).xn;
  const scores = new Float64Array(o.b * o.m);
  for (let i = 0; i < o.b; i++) {
    for (let j = 0; j < o.m; j++) {
      let s = 0;
      for (let c = 0; c < o.d; c++) s += un[i * o.d + c] * vn[j * o.d + c];
      scores[i * o.m + j] = s / o.tau;
    }
  }
  return scores;
}

/** Backward of `x̂ = x / max(‖x‖, eps)` per row: returns dx for upstream dx̂ = `g`. */
function normalizeBackwardCpu(x: ArrayLike<number>, g: Float64Array, rows: number, d: number): Float64Array {
  const { xn, norm } = normalizedRowsCpu(x, rows, d);
  const dx = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    const inv = 1 / Math.max(norm[r], NORMALIZE_EPS);
    let dot = 0;
    for (let c = 0; c < d; c++) dot += xn[r * d + c] * g[r * d + c];
    const along = norm[r] <= NORMALIZE_EPS ? 0 : dot;
    for (let c = 0; c < d; c++) dx[r * d + c] = (g[r * d + c] - xn[r * d + c] * along) * inv;
  }
  return dx;
}

/** CPU reference backward of {@linkcode cosineScoresCpu}: `{ du, dItems }` for upstream `dScores`. */
export function cosineScoresBackwardCpu(
  dScores: ArrayLike<number>,
  u: ArrayLike<number>,
  items: ArrayLike<number>,
  o: CosineScoreOptions,
): { du: Float64Array; dItems: Float64Array } {
  const { b, m, d, tau } = o;
  const un = normalizedRowsCpu(u, b, d).xn, vn = normalizedRowsCpu(items, m, d).xn;
  const dun = new Float64Array(b * d), dvn = new Float64Array(m * d);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < m; j++) {
      const g = dScores[i * m + j] / tau;
      for (let c = 0; c < d; c++) {
        dun[i * d + c] += g * vn[j * d + c];
        dvn[j * d + c] += g * un[i * d + c];
      }
    }
  }
  return { du: normalizeBackwardCpu(u, dun, b, d), dItems: normalizeBackwardCpu(items, dvn, m, d) };
}

/** True when row `r`'s loss counts: a target in range that the mask keeps. */
function targetCounts(target: ArrayLike<number>, mask: ArrayLike<number>, r: number, m: number): boolean {
  const t = target[r];
  return t >= 0 && t < m && mask[r * m + t] !== 0;
}

/**
 * CPU reference of {@linkcode scoreSoftmaxCE}: `probs` = softmax over the entries with mask ≠ 0
 * (0 elsewhere) and `loss_r = −log probs[r, target_r]`; a row with target −1 or a masked target
 * (a repeat purchase can never be hit) has loss 0 and no gradient.
 */
export function scoreSoftmaxCECpu(
  scores: ArrayLike<number>,
  target: ArrayLike<number>,
  mask: ArrayLike<number>,
  o: ScoreCEOptions,
): { loss: Float64Array; probs: Float64Array } {
  const { b, m } = o;
  const loss = new Float64Array(b), probs = new Float64Array(b * m);
  for (let r = 0; r < b; r++) {
    let max = -Infinity;
    for (let j = 0; j < m; j++) if (mask[r * m + j] !== 0) max = Math.max(max, scores[r * m + j]);
    let sum = 0;
    for (let j = 0; j < m; j++) if (mask[r * m + j] !== 0) sum += Math.exp(scores[r * m + j] - max);
    const lse = max + Math.log(sum);
    for (let j = 0; j < m; j++) {
      probs[r * m + j] = mask[r * m + j] !== 0 ? Math.exp(scores[r * m + j] - lse) : 0;
    }
    if (targetCounts(target, mask, r, m)) loss[r] = lse - scores[r * m + target[r]];
  }
  return { loss, probs };
}

/** CPU reference backward: `dScores` of `Σ_r dLoss_r·loss_r` (not accumulated). */
export function scoreSoftmaxCEBackwardCpu(
  probs: ArrayLike<number>,
  target: ArrayLike<number>,
  mask: ArrayLike<number>,
  dLoss: ArrayLike<number>,
  o: ScoreCEOptions,
): Float64Array {
  const { b, m } = o;
  const dScores = new Float64Array(b * m);
  for (let r = 0; r < b; r++) {
    if (!targetCounts(target, mask, r, m)) continue;
    for (let j = 0; j < m; j++) {
      dScores[r * m + j] = dLoss[r] * (probs[r * m + j] - (j === target[r] ? 1 : 0));
    }
  }
  return dScores;
}

function scratchTensor(rec: Recorder, purpose: string, rows: number, cols: number): Tensor {
  const buffer = scratchBuffer(rec, purpose, Math.max(4, rows * cols * 4));
  return { buffer, shape: [rows, cols], dtype: "f32", size: rows * cols, name: purpose };
}

function rowParams(rows: number, cols: number, gridStride: number): ArrayBuffer {
  return params([["u32", rows], ["u32", cols], ["u32", gridStride], ["u32", 0], ["f32", NORMALIZE_EPS]]);
}

/** One workgroup per row (2-D grid above 65535 rows). */
function perRow(rec: Recorder, entry: string, bindings: Tensor[], rows: number, cols: number): void {
  const { groups, rowStride } = elementGrid(rows, 1);
  rec.dispatch(rec.kernel("scores", entry), bindings, groups, rowParams(rows, cols, rowStride));
}

function normalizeInto(rec: Recorder, x: Tensor, purpose: string, rows: number, d: number): Tensor {
  const xn = scratchTensor(rec, purpose, rows, d);
  normalizeRows(rec, x, xn, { rows, d });
  return xn;
}

/**
 * Records `y = x / max(‖x‖, eps)` per row of `x [rows × d]`, e.g. once per refresh of a cached
 * item catalogue, so later {@linkcode cosineScores} calls can pass `itemsNormalized`.
 */
export function normalizeRows(rec: Recorder, x: Tensor, y: Tensor, o: { rows: number; d: number }): void {
  perRow(rec, "l2_normalize_forward", [x, y], o.rows, o.d);
}

/** Records `scores [b × m] = cos(u_i, items_j) / τ` from `u [b × d]` and `items [m × d]`. */
export function cosineScores(
  rec: Recorder,
  u: Tensor,
  items: Tensor,
  scores: Tensor,
  o: CosineScoreOptions,
): void {
  const un = normalizeInto(rec, u, "scores.u", o.b, o.d);
  const vn = o.itemsNormalized ? items : normalizeInto(rec, items, "scores.items", o.m, o.d);
  matmul(rec, un, vn, scores, { m: o.b, n: o.m, k: o.d, transB: true, alpha: 1 / o.tau });
}

/**
 * Records the backward of {@linkcode cosineScores}: `du += ∂/∂u` and, unless `dItems` is null
 * (a cached, detached item table), `dItems += ∂/∂items`.
 */
export function cosineScoresBackward(
  rec: Recorder,
  dScores: Tensor,
  u: Tensor,
  items: Tensor,
  du: Tensor,
  dItems: Tensor | null,
  o: CosineScoreOptions,
): void {
  const { b, m, d, tau } = o;
  const un = normalizeInto(rec, u, "scores.u", b, d);
  const vn = normalizeInto(rec, items, "scores.items", m, d);
  const dun = scratchTensor(rec, "scores.du", b, d);
  matmul(rec, dScores, vn, dun, { m: b, n: d, k: m, alpha: 1 / tau });
  perRow(rec, "l2_normalize_backward", [u, dun, du], b, d);
  if (!dItems) return;
  const dvn = scratchTensor(rec, "scores.ditems", m, d);
  matmul(rec, dScores, un, dvn, { m, n: d, k: b, transA: true, alpha: 1 / tau });
  perRow(rec, "l2_normalize_backward", [items, dvn, dItems], m, d);
}

/**
 * Records the masked softmax cross-entropy of score rows: `probs [b × m]` (softmax over entries
 * whose `mask` (f32 [b × m]) is non-zero, 0 elsewhere) and `loss [b] = −log probs[target]`.
 * Mask history items and the pad item 0 with 0. Target −1 or a masked target gives loss 0.
 */
export function scoreSoftmaxCE(
  rec: Recorder,
  scores: Tensor,
  target: Tensor,
  mask: Tensor,
  loss: Tensor,
  probs: Tensor,
  o: ScoreCEOptions,
): void {
  perRow(rec, "score_softmax_ce", [scores, target, mask, loss, probs], o.b, o.m);
}

/** Records `dScores += dLoss_r·(probs − onehot(target_r))` for the rows whose loss counts. */
export function scoreSoftmaxCEBackward(
  rec: Recorder,
  probs: Tensor,
  target: Tensor,
  mask: Tensor,
  dLoss: Tensor,
  dScores: Tensor,
  o: ScoreCEOptions,
): void {
  const { groups, rowStride } = elementGrid(o.b * o.m, WG);
  rec.dispatch(
    rec.kernel("scores", "score_softmax_ce_backward", { WG }),
    [probs, target, mask, dLoss, dScores],
    groups,
    rowParams(o.b, o.m, rowStride),
  );
}
