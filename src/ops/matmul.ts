/**
 * Matrix multiply `C (= or +=) alpha·op(A)·op(B) (+ bias)` in the NN, NT and TN layouts, and the
 * bias gradient. CPU references (f64 accumulation) are the spec; the GPU launcher records into a
 * `Recorder` and never syncs.
 *
 * A linear layer with a Hugging Face weight W[out×in]: `y = x·Wᵀ` is NT, `dX += dY·W` is NN and
 * `dW += dYᵀ·X` is TN.
 *
 * @example
 * ```ts
 * const engine = await getEngine();
 * const rec = engine.recorder();
 * // y[T×out] = x[T×in] · W[out×in]ᵀ + b
 * matmul(rec, x, w, y, { m: T, n: out, k: inDim, transB: true, bias: b });
 * await rec.submit();
 * ```
 *
 * @module
 */
import type { Engine } from "../gpu/engine.ts";
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  matmulPacked,
  matmulTex,
  type Operand,
  packBf16WithTranspose,
  type PackedBf16,
  releasePacked,
  TEX_TILE_M,
  TEX_TILE_N,
  texFits,
  wholeVec4s,
} from "./matmul_tex.ts";

export {
  allocatePacked,
  packBf16,
  packBf16WithTranspose,
  type PackedBf16,
  packedFits,
  packedTranspose,
  releasePacked,
  withSpareTexels,
} from "./matmul_tex.ts";

/** Shape and mode of one matmul. */
export interface MatmulOptions {
  m: number;
  n: number;
  k: number;
  /** A is stored [k×m] instead of [m×k]. */
  transA?: boolean;
  /** B is stored [n×k] instead of [k×n]. */
  transB?: boolean;
  /** Added to every row of C (length n). */
  bias?: Tensor;
  /** Add into C instead of overwriting it. */
  accumulate?: boolean;
  alpha?: number;
  /**
   * Operand precision of the texture kernel. `"f32"` (default): exact f32 products. `"bf16"`
   * (opt-in, faster): A and B rounded to bf16 with f32 accumulation, so each product carries a
   * relative error up to ≈2⁻⁷ (see `MATMUL_BF16_RTOL`). The general kernel always computes in f32.
   */
  precision?: "f32" | "bf16";
}

/**
 * Relative error bound of one product in the bf16 mode: both operands are rounded to 8
 * significant bits (unit roundoff 2⁻⁸ each), so |a'b' − ab| ≤ (2⁻⁷ + 2⁻¹⁶)·|ab|. An output
 * element is then within MATMUL_BF16_RTOL·|alpha|·Σ|a||b| (plus f32 summation error) of exact.
 */
export const MATMUL_BF16_RTOL = 2 ** -7 + 2 ** -16;

/** Which kernel computes a matmul: `auto` picks by shape, the others force one (tests, bench). */
export type MatmulPath = "auto" | "general" | "texture";

/**
 * The texture path pays a few packing dispatches (~2 ms at 64³, where both paths tie) and pads m
 * to 32 and n to 256; it is ~2× faster than the general kernel from 128³ up and ~10× at
 * transformer sizes, so it is taken unless the problem is tiny or mostly padding (m = 1 rows).
 */
const TEX_MIN_FLOPS = 2 ** 21;
const TEX_MIN_FILL = 1 / 16;

/** The general kernel's tile: rows per workgroup and columns per workgroup (16 lanes × 4). */
const GENERAL_ROWS = 8;
const GENERAL_COLS = 64;
const BIAS_WG = 16;
/** Columns of one `matmul_bias_backward_vec4` workgroup: 8 lanes × 4 vec4. */
const BIAS_VEC4_COLS = 128;

const roundWord = new Float32Array(1);
const roundBits = new Uint32Array(roundWord.buffer);

/** Rounds to the nearest bf16 value (ties to even), as the bf16 mode does to operands. */
export function bf16Round(x: number): number {
  roundWord[0] = x;
  const bits = roundBits[0];
  roundBits[0] = ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) << 16;
  return roundWord[0];
}

/** CPU reference: returns `alpha·op(A)·op(B) + bias (+ c0 when accumulating)` as f64. */
export function matmulForwardCpu(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  opts: MatmulOptions & { biasData?: ArrayLike<number>; c0?: ArrayLike<number> },
): Float64Array {
  const { m, n, k, transA = false, transB = false, alpha = 1 } = opts;
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        s += a[transA ? p * m + i : i * k + p] * b[transB ? j * k + p : p * n + j];
      }
      let v = alpha * s + (opts.biasData ? opts.biasData[j] : 0);
      if (opts.accumulate && opts.c0) v += opts.c0[i * n + j];
      c[i * n + j] = v;
    }
  }
  return c;
}

/**
 * CPU reference backward of `C = alpha·op(A)·op(B) + bias` for an upstream gradient `dc[m×n]`:
 * `dA` and `dB` in the stored layouts of A and B, and `dbias` (column sums of dc).
 */
export function matmulBackwardCpu(
  dc: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  opts: MatmulOptions,
): { da: Float64Array; db: Float64Array; dbias: Float64Array } {
  const { m, n, k, transA = false, transB = false, alpha = 1 } = opts;
  const da = new Float64Array(m * k);
  const db = new Float64Array(k * n);
  const dbias = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const g = dc[i * n + j];
      dbias[j] += g;
      for (let p = 0; p < k; p++) {
        const ai = transA ? p * m + i : i * k + p;
        const bi = transB ? j * k + p : p * n + j;
        da[ai] += alpha * g * b[bi];
        db[bi] += alpha * g * a[ai];
      }
    }
  }
  return { da, db, dbias };
}

/**
 * Records `C[m×n] (= or +=) alpha·op(A)·op(B) (+ bias[n] broadcast over rows)`.
 * NN: A[m×k], B[k×n]. NT: A[m×k], B[n×k]. TN: A[k×m], B[k×n]. C must not alias A, B or bias.
 */
export function matmul(rec: Recorder, a: Tensor, b: Tensor, c: Tensor, opts: MatmulOptions): void {
  matmulVia("auto", rec, a, b, c, opts);
}

/** {@linkcode matmul} through a chosen kernel path (tests and benchmarks cover each path). */
export function matmulVia(
  path: MatmulPath,
  rec: Recorder,
  a: Tensor,
  b: Tensor,
  c: Tensor,
  opts: MatmulOptions,
): void {
  const { m, n, k, transA = false, transB = false, bias, accumulate = false, alpha = 1 } = opts;
  checkShapes(a, b, c, opts);
  if (m === 0 || n === 0) return;
  const useTexture = path === "texture" || (path === "auto" && preferTexture(m, n, k));
  if (!useTexture || !texFits(rec, m, n, k, bias, opts.precision === "bf16")) {
    matmulGeneral(rec, a, b, c, opts);
    return;
  }
  // Both operands are viewed with rows along k; alpha goes into A.
  matmulTex(rec, {
    m,
    n,
    k,
    a: transA
      ? { tensor: a, offset: 0, rows: m, cols: k, row: 1, col: m, scale: alpha }
      : { tensor: a, offset: 0, rows: m, cols: k, row: k, col: 1, scale: alpha },
    b: transB
      ? { tensor: b, offset: 0, rows: n, cols: k, row: k, col: 1, scale: 1 }
      : { tensor: b, offset: 0, rows: n, cols: k, row: 1, col: n, scale: 1 },
    c,
    bias,
    accumulate,
    bf16: opts.precision === "bf16",
  }, placeholder(rec));
}

function preferTexture(m: number, n: number, k: number): boolean {
  const padded = Math.ceil(m / TEX_TILE_M) * TEX_TILE_M * Math.ceil(n / TEX_TILE_N) * TEX_TILE_N;
  return 2 * m * n * k >= TEX_MIN_FLOPS && (m * n) / padded >= TEX_MIN_FILL;
}

/** The storage-buffer kernels: any shape, any layout; a vec4 dot-product kernel for m = 1 NT. */
function matmulGeneral(rec: Recorder, a: Tensor, b: Tensor, c: Tensor, opts: MatmulOptions): void {
  const { m, n, k, transA = false, transB = false, bias, accumulate = false, alpha = 1 } = opts;
  const gemv = m === 1 && transB && !transA && k % 4 === 0 && k > 0;
  rec.dispatch(
    rec.kernel("matmul", gemv ? "matmul_gemv_nt" : "matmul_forward"),
    [gemv ? wholeVec4s(rec, a) : a, gemv ? wholeVec4s(rec, b) : b, bias ?? placeholder(rec), c],
    [Math.ceil(n / GENERAL_COLS), Math.ceil(m / GENERAL_ROWS)],
    params([
      ["u32", m],
      ["u32", n],
      ["u32", k],
      ["u32", transA ? 1 : k],
      ["u32", transA ? m : 1],
      ["u32", transB ? 1 : n],
      ["u32", transB ? k : 1],
      ["f32", alpha],
      ["u32", epilogueFlags(bias, accumulate)],
    ]),
  );
}

/**
 * The `[rows × cols]` matrix stored row-major in `t` (`transposed`: the transpose of the
 * `[cols × rows]` matrix stored there), as an operand for {@linkcode packBf16}.
 */
export function matrixView(t: Tensor, rows: number, cols: number, transposed = false): Operand {
  if (t.size < rows * cols) {
    throw new RangeError(`matrixView: ${t.name} has ${t.size} values, needs ${rows}×${cols}`);
  }
  return transposed
    ? { tensor: t, offset: 0, rows, cols, row: 1, col: rows, scale: 1 }
    : { tensor: t, offset: 0, rows, cols, row: cols, col: 1, scale: 1 };
}

/**
 * Records `C[m×n] (= or +=) A·Bᵀ (+ bias)` with bf16 operands A [m × k] and B [n × k] packed once
 * by {@linkcode packBf16} (see `MatmulOptions.precision` for the error bound), so a packed
 * activation or gradient serves every product that reads it. A weight gradient `dYᵀ·X` reads the
 * transposing packs of dY and X. n must be a multiple of 4.
 *
 * @example
 * ```ts
 * // dX = dY·W and dW += dYᵀ·X (x packed as xP in the forward pass).
 * const dyP = packBf16(rec, matrixView(dy, T, out));
 * const wT = packBf16(rec, matrixView(w, inDim, out, true));
 * matmulPackedBf16(rec, dyP, wT, dx);
 * const dyT = packBf16(rec, matrixView(dy, out, T, true));
 * const xT = packedTranspose(rec, xP, matrixView(x, inDim, T, true));
 * matmulPackedBf16(rec, dyT, xT, dw, { accumulate: true });
 * ```
 */
export function matmulPackedBf16(
  rec: Recorder,
  a: PackedBf16,
  b: PackedBf16,
  c: Tensor,
  opts: { bias?: Tensor; accumulate?: boolean } = {},
): void {
  if (c.buffer === opts.bias?.buffer) {
    throw new RangeError(`matmulPackedBf16: output ${c.name} aliases the bias`);
  }
  matmulPacked(rec, a, b, c, opts, placeholder(rec));
}

/** Records `dbias[cols] += column sums of dy[rows×cols]`. */
export function matmulBiasBackward(
  rec: Recorder,
  dy: Tensor,
  dbias: Tensor,
  opts: { rows: number; cols: number },
): void {
  const { rows, cols } = opts;
  if (dy.size < rows * cols) {
    throw new RangeError(`matmulBiasBackward: dy ${dy.name} has ${dy.size} values, needs ${rows}×${cols}`);
  }
  if (dbias.size < cols) {
    throw new RangeError(`matmulBiasBackward: dbias ${dbias.name} has ${dbias.size} values, needs ${cols}`);
  }
  const vec4 = cols % 4 === 0;
  rec.dispatch(
    rec.kernel("matmul", vec4 ? "matmul_bias_backward_vec4" : "matmul_bias_backward"),
    [dy, dbias],
    [Math.ceil(cols / (vec4 ? BIAS_VEC4_COLS : BIAS_WG))],
    params([["u32", rows], ["u32", cols]]),
  );
}

/** Runtime switches of the general kernel (uniform branches in the epilogue, one pipeline). */
function epilogueFlags(bias: Tensor | undefined, accumulate: boolean): number {
  return (bias ? 1 : 0) | (accumulate ? 2 : 0);
}

function checkShapes(a: Tensor, b: Tensor, c: Tensor, opts: MatmulOptions): void {
  const { m, n, k } = opts;
  for (const [t, need, what] of [[a, m * k, "a"], [b, k * n, "b"], [c, m * n, "c"]] as const) {
    if (t.size < need) {
      throw new RangeError(
        `matmul: ${what} (${t.name}) has ${t.size} values, needs ${need} for m=${m} n=${n} k=${k}`,
      );
    }
  }
  if (opts.bias && opts.bias.size < n) {
    throw new RangeError(`matmul: bias (${opts.bias.name}) has ${opts.bias.size} values, needs ${n}`);
  }
  if (c.buffer === a.buffer || c.buffer === b.buffer || c.buffer === opts.bias?.buffer) {
    throw new RangeError(`matmul: output ${c.name} aliases an input`);
  }
}

const placeholders = new WeakMap<GPUDevice, Tensor>();

/** A 4-byte buffer bound where the kernel declares `bias` but the call has none. */
function placeholder(rec: Recorder): Tensor {
  const device = rec.gpu.device;
  let t = placeholders.get(device);
  if (!t) {
    const buffer = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: "matmul:no-bias" });
    t = { buffer, shape: [4], dtype: "f32", size: 4, name: "matmul:no-bias" };
    placeholders.set(device, t);
  }
  return t;
}

/**
 * Compiles every matmul pipeline (texture kernel and its packs for NN, NT and TN, with and without
 * accumulation, and in bf16 the pack of a matrix with its transpose; the general and single-row
 * kernels; the bias gradient) by running tiny products once, so the LLVM JIT (~1.5 s CPU cold for
 * the bf16 texture kernel, much less with Mesa's disk cache) happens at start-up rather than
 * inside the first product. `part: "texture"` limits it to the texture kernel and its packs: all
 * that a training step needs beyond what a warm-up step compiles, run on a second thread by
 * `TrainableModel.warmup()`. Syncs once.
 *
 * @example
 * ```ts
 * const ms = await matmulWarmup(await getEngine(), "f32");
 * ```
 */
export async function matmulWarmup(
  engine: Engine,
  precision: "f32" | "bf16" = "f32",
  part: "all" | "texture" = "all",
): Promise<number> {
  const start = performance.now();
  const { pool } = engine;
  // 33 × 260 × 68: odd enough to take the padded, vec4-row and block-transposing packs.
  const [m, n, k] = [33, 260, 68];
  const a = pool.zeros([m * k]), b = pool.zeros([k * n]), c = pool.zeros([m * n]), bias = pool.zeros([n]);
  const rec = engine.recorder();
  for (const layout of [{}, { transB: true }, { transA: true }]) {
    for (const accumulate of [false, true]) {
      matmulVia("texture", rec, a, b, c, { m, n, k, ...layout, accumulate, bias, precision });
    }
  }
  // A bf16 training step packs its layer inputs and gradients both ways at once.
  if (precision === "bf16") releasePacked(rec, packBf16WithTranspose(rec, matrixView(a, m, k)));
  if (part !== "texture") {
    matmulVia("general", rec, a, b, c, { m, n, k, bias });
    matmulVia("general", rec, a, b, c, { m: 1, n, k, transB: true });
    matmulBiasBackward(rec, c, bias, { rows: m, cols: n });
  }
  await rec.submit();
  for (const t of [a, b, c, bias]) pool.release(t);
  return performance.now() - start;
}
