/**
 * RMSNorm, `y = (w + offset)·x / sqrt(mean(x²) + eps)` per row — offset 0 for Qwen/Llama,
 * offset 1 for Gemma's `(1 + w)` — forward and backward (CPU reference + GPU launchers).
 *
 * @example
 * ```ts
 * rmsnormForward(rec, x, w, y, rstd, { rows, cols, eps: 1e-6, offset: 0 });
 * rmsnormBackward(rec, dy, x, w, rstd, dx, dw, { rows, cols, offset: 0 });
 * ```
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";

const WG = 64;
/** Columns (4 per vec4, 4 vec4 per lane, 8 lanes) of one `rmsnorm_backward_w_vec4` workgroup. */
const DW_VEC4_COLS = 128;
/**
 * Above this many `dy` elements (16 MiB of dy and x together) the operands come from memory rather
 * than the caches, where the scalar dw kernel is faster (4096×896: 7.9 vs 8.8 ms; see rmsnorm.wgsl).
 */
const DW_VEC4_MAX_ELEMENTS = 2 ** 21;

/** Rows of a width divisible by 4 (every real model) take the vec4 kernels (~2× faster here). */
function vec4Suffix(cols: number): string {
  return cols % 4 === 0 ? "_vec4" : "";
}

/** Shape and variant of one RMSNorm. */
export interface RmsnormShape {
  rows: number;
  cols: number;
  /** 0: `w·x̂` (Qwen, Llama); 1: `(1 + w)·x̂` (Gemma). */
  offset: number;
}

/** CPU reference: returns `y [rows × cols]` and `rstd [rows]`. */
export function rmsnormForwardCpu(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  { rows, cols, eps, offset }: RmsnormShape & { eps: number },
): { y: Float64Array; rstd: Float64Array } {
  const y = new Float64Array(rows * cols);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let squares = 0;
    for (let c = 0; c < cols; c++) squares += x[r * cols + c] ** 2;
    rstd[r] = 1 / Math.sqrt(squares / cols + eps);
    for (let c = 0; c < cols; c++) y[r * cols + c] = (w[c] + offset) * x[r * cols + c] * rstd[r];
  }
  return { y, rstd };
}

/** CPU reference backward: `dx` and `dw` (not accumulated). */
export function rmsnormBackwardCpu(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  rstd: ArrayLike<number>,
  { rows, cols, offset }: RmsnormShape,
): { dx: Float64Array; dw: Float64Array } {
  const dx = new Float64Array(rows * cols);
  const dw = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dy[r * cols + c] * (w[c] + offset) * x[r * cols + c] * rstd[r];
    const meanGx = dot / cols;
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      const xHat = x[i] * rstd[r];
      dx[i] = rstd[r] * (dy[i] * (w[c] + offset) - xHat * meanGx);
      dw[c] += dy[i] * xHat;
    }
  }
  return { dx, dw };
}

/** Records `y = (w + offset)·x̂` and saves `rstd [rows]` for the backward. */
export function rmsnormForward(
  rec: Recorder,
  x: Tensor,
  w: Tensor,
  y: Tensor,
  rstd: Tensor,
  { rows, cols, eps, offset }: RmsnormShape & { eps: number },
): void {
  const { groups, rowStride } = elementGrid(rows, WG);
  rec.dispatch(
    rec.kernel("rmsnorm", `rmsnorm_forward${vec4Suffix(cols)}`, { WG }),
    [x, w, y, rstd],
    groups,
    params([["u32", rows], ["u32", cols], ["f32", eps], ["f32", offset], ["u32", rowStride]]),
  );
}

/**
 * Records `dx += ∂L/∂x` and, unless `dw` is null (a frozen weight), `dw += ∂L/∂w` (rows reduced in a
 * fixed order: deterministic).
 */
export function rmsnormBackward(
  rec: Recorder,
  dy: Tensor,
  x: Tensor,
  w: Tensor,
  rstd: Tensor,
  dx: Tensor,
  dw: Tensor | null,
  { rows, cols, offset }: RmsnormShape,
): void {
  const { groups, rowStride } = elementGrid(rows, WG);
  const block = params([["u32", rows], ["u32", cols], ["f32", 0], ["f32", offset], ["u32", rowStride]]);
  rec.dispatch(
    rec.kernel("rmsnorm", `rmsnorm_backward_x${vec4Suffix(cols)}`, { WG }),
    [dy, x, w, rstd, dx],
    groups,
    block,
  );
  if (!dw) return;
  const dwVec4 = cols % 4 === 0 && rows * cols <= DW_VEC4_MAX_ELEMENTS;
  rec.dispatch(
    dwVec4
      ? rec.kernel("rmsnorm", "rmsnorm_backward_w_vec4")
      : rec.kernel("rmsnorm", "rmsnorm_backward_w", { WG }),
    [dy, x, rstd, dw],
    [Math.ceil(cols / (dwVec4 ? DW_VEC4_COLS : WG))],
    block,
  );
}
