/**
 * Linear layers `y = x·Wᵀ + b` with an optional LoRA update `+ s·(x·Aᵀ)·Bᵀ`, forward and explicit
 * backward (HF weight layout `W[out × in]`, so the forward is an NT matmul, `dX += dY·W` is NN and
 * `dW += dYᵀ·X` is TN). Backward accumulates into every gradient, as every op does. In bf16 the
 * products run as NT on packed operands, dW on the transposing packs of dY and X (one texture
 * kernel to compile for a whole training step); the rank-row LoRA products over the tokens read
 * dY and X in place (`RANK_ROWS_OVER_TOKENS`).
 *
 * @module
 */
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor, TensorPool } from "../gpu/tensor.ts";
import {
  matmul,
  matmulBiasBackward,
  type MatmulOptions,
  matmulPackedBf16,
  matmulVia,
  matrixView,
  packBf16,
  type PackedBf16,
  packedFits,
  packedTranspose,
  releasePacked,
} from "../ops/matmul.ts";
import { ensureGrad, type Param, whole } from "./params.ts";
import { weightPack } from "./weight_packs.ts";

/** A LoRA pair on one linear layer: `ΔW = scale · B·A`, A `[rank × in]`, B `[out × rank]`. */
export interface LoraPair {
  readonly a: Param;
  readonly b: Param;
  readonly rank: number;
  readonly scale: number;
  /** True while `scale·B·A` is folded into the base weight (the adapter path is then skipped). */
  merged: boolean;
  /** The `rank × rank` identity (transposes rank-wide products cheaply in backward). */
  readonly identity: Tensor;
}

/** One linear layer of a decoder block. */
export interface Linear {
  readonly weight: Param;
  readonly bias: Param | null;
  lora: LoraPair | null;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/**
 * Operand precision of every matmul of a linear layer: `"f32"` (exact products) or `"bf16"`
 * (rounded operands, f32 accumulation; the training default).
 */
export type MatmulPrecision = NonNullable<MatmulOptions["precision"]>;

/**
 * Kernel for the rank-row products that reduce over the tokens (`dBᵀ`, `dA`): the texture path
 * would transpose-pack both [tokens × features] operands and fill 4 of its 32 tile rows; the
 * general kernel reads them in place. Measured here (T 1024, r 4, in 256, out 768 / 256): 4.1 vs
 * 5.5 ms and 1.5 vs 2.6 ms (out 768), 2.1 vs 2.5 and 1.6 vs 1.8 ms (out 256). The other rank
 * products are faster on the texture path and keep `auto`.
 */
const RANK_ROWS_OVER_TOKENS = "general";

/**
 * Fewest rows for which a bf16 layer input is packed once and shared ({@linkcode packLinearInput}):
 * below it (decoding a few tokens) the general kernel's f32 products are as fast as padding the
 * texture kernels' 32-row tiles.
 */
const PACKED_MIN_ROWS = 64;

/**
 * Records the bf16 packing of a layer input `x [rows × cols]` for every base-weight product that
 * reads it: the forward of each linear layer fed by `x` and, in training, their weight gradients
 * (through its transpose, packed at the first backward that needs it). Null (the products then
 * pack for themselves or run in f32) for f32 precision, few rows, or shapes whose packs exceed the
 * texture limits. Release it with `releasePacked`.
 */
export function packLinearInput(
  rec: Recorder,
  x: Tensor,
  rows: number,
  cols: number,
  precision: MatmulPrecision,
): PackedBf16 | null {
  if (precision !== "bf16" || rows < PACKED_MIN_ROWS || cols % 4 !== 0) return null;
  if (!packedFits(rec, rows, cols) || !packedFits(rec, cols, rows)) return null;
  return packBf16(rec, matrixView(x, rows, cols));
}

/** The LoRA path runs when an unmerged adapter is attached. */
function activeLora(lin: Linear): LoraPair | null {
  return lin.lora && !lin.lora.merged ? lin.lora : null;
}

/**
 * Records `y = x·Wᵀ + b (+ s·(x·Aᵀ)·Bᵀ)` for `rows` rows, every product with operands in
 * `precision` (the LoRA products too, so bf16 training compiles no f32 texture kernel), reading
 * `packedX` (x packed by {@linkcode packLinearInput}) when given. Returns the LoRA intermediate
 * `uᵀ = A·xᵀ` (`[rank × rows]`, owned by the caller: keep it for backward, else release it), or null.
 */
export function linearForward(
  rec: Recorder,
  pool: TensorPool,
  lin: Linear,
  x: Tensor,
  y: Tensor,
  rows: number,
  precision: MatmulPrecision = "f32",
  packedX: PackedBf16 | null = null,
): Tensor | null {
  const { inFeatures: k, outFeatures: n } = lin;
  const bias = lin.bias ? whole(lin.bias.value) : undefined;
  if (packedX && n % 4 === 0) {
    matmulPackedBf16(rec, packedX, weightPack(rec, lin.weight, "rows"), y, { bias });
  } else {
    matmul(rec, x, whole(lin.weight.value), y, { m: rows, n, k, transB: true, bias, precision });
  }
  const lora = activeLora(lin);
  if (!lora) return null;
  // uᵀ = A·xᵀ and y += s·(uᵀ)ᵀ·Bᵀ: the rank stays the row or inner dimension of every product,
  // which the matmul kernels handle far faster than a rank-wide output (23 ms vs 2 ms here).
  const uT = pool.tensor([lora.rank, rows], "f32", `${lin.weight.name}.lora_uT`);
  const a = whole(lora.a.value), b = whole(lora.b.value);
  if (packedX && packedLoraFits(lin, rows)) {
    // x's pack serves uᵀ too; the rank-wide operands are packed (tiny) with s folded into u.
    const aP = packBf16(rec, matrixView(a, lora.rank, k));
    matmulPackedBf16(rec, aP, packedX, uT);
    const uS = packBf16(rec, { ...matrixView(uT, rows, lora.rank, true), scale: lora.scale });
    const bP = packBf16(rec, matrixView(b, n, lora.rank));
    matmulPackedBf16(rec, uS, bP, y, { accumulate: true });
    for (const packed of [aP, uS, bP]) releasePacked(rec, packed);
    return uT;
  }
  matmul(rec, a, x, uT, { m: lora.rank, n: rows, k, transB: true, precision });
  matmul(rec, uT, b, y, {
    m: rows,
    n,
    k: lora.rank,
    transA: true,
    transB: true,
    accumulate: true,
    alpha: lora.scale,
    precision,
  });
  return uT;
}

/** The packed kernels store whole vec4 rows: products with n = rows (uᵀ, duᵀ) and n = out need them. */
function packedLoraFits(lin: Linear, rows: number): boolean {
  return rows % 4 === 0 && lin.outFeatures % 4 === 0;
}

/**
 * Records the backward of {@linkcode linearForward}: `dx += dy·W (+ s·dy·B·A)` (`=` instead of
 * `+=` with `overwriteDx`, for the first writer of a fresh buffer) and, for trainable
 * parameters, `dW += dyᵀ·x`, `db += Σ dy`, `dB += s·dyᵀ·u`, `dA += (s·dy·B)ᵀ·x`, with operands
 * in `precision`. With `packedX` (the forward's packed input), dy is packed once for every
 * product that reads it, and dW reads dyᵀ and xᵀ (packed once per input, `packedTranspose`).
 */
export function linearBackward(
  rec: Recorder,
  pool: TensorPool,
  lin: Linear,
  dy: Tensor,
  x: Tensor,
  loraUT: Tensor | null,
  dx: Tensor,
  rows: number,
  { overwriteDx = false, precision = "f32", packedX = null }: {
    overwriteDx?: boolean;
    precision?: MatmulPrecision;
    packedX?: PackedBf16 | null;
  } = {},
): void {
  const { inFeatures: k, outFeatures: n } = lin;
  const lora = activeLora(lin);
  if (lora && !loraUT) {
    throw new Error(`Backward of ${lin.weight.name} needs the LoRA activation saved in forward`);
  }
  if (packedX) {
    const dyP = packBf16(rec, matrixView(dy, rows, n));
    matmulPackedBf16(rec, dyP, weightPack(rec, lin.weight, "transposed"), dx, { accumulate: !overwriteDx });
    if (lin.weight.trainable) {
      const dyT = packBf16(rec, matrixView(dy, n, rows, true));
      const xT = packedTranspose(rec, packedX, matrixView(x, k, rows, true));
      matmulPackedBf16(rec, dyT, xT, whole(ensureGrad(pool, lin.weight)), { accumulate: true });
      releasePacked(rec, dyT);
    }
    if (lora && packedLoraFits(lin, rows)) {
      loraBackwardPacked(rec, pool, lin, lora, dy, dyP, x, loraUT!, dx, rows);
    } else if (lora) loraBackward(rec, pool, lin, lora, dy, x, loraUT!, dx, rows, precision);
    releasePacked(rec, dyP);
  } else {
    matmul(rec, dy, whole(lin.weight.value), dx, {
      m: rows,
      n: k,
      k: n,
      accumulate: !overwriteDx,
      precision,
    });
    if (lin.weight.trainable) {
      matmul(rec, dy, x, whole(ensureGrad(pool, lin.weight)), {
        m: n,
        n: k,
        k: rows,
        transA: true,
        accumulate: true,
        precision,
      });
    }
    if (lora) loraBackward(rec, pool, lin, lora, dy, x, loraUT!, dx, rows, precision);
  }
  if (lin.bias?.trainable) {
    matmulBiasBackward(rec, dy, whole(ensureGrad(pool, lin.bias)), { rows, cols: n });
  }
}

/** `dB += s·dyᵀ·u` from `dBᵀ = s·uᵀ·dy [r × out]`: the transpose is a product with the r×r identity. */
function addTransposed(rec: Recorder, pool: TensorPool, lora: LoraPair, dBT: Tensor, out: number): void {
  matmul(rec, dBT, lora.identity, whole(ensureGrad(pool, lora.b)), {
    m: out,
    n: lora.rank,
    k: lora.rank,
    transA: true,
    accumulate: true,
  });
}

/** The LoRA part of the backward, each product packing its own operands. */
function loraBackward(
  rec: Recorder,
  pool: TensorPool,
  lin: Linear,
  lora: LoraPair,
  dy: Tensor,
  x: Tensor,
  uT: Tensor,
  dx: Tensor,
  rows: number,
  precision: MatmulPrecision,
): void {
  const { inFeatures: k, outFeatures: n } = lin;
  const r = lora.rank;
  loraGradB(rec, pool, lin, lora, dy, uT, rows);
  const duT = pool.tensor([r, rows], "f32", `${lin.weight.name}.lora_duT`);
  matmul(rec, whole(lora.b.value), dy, duT, {
    m: r,
    n: rows,
    k: n,
    transA: true,
    transB: true,
    alpha: lora.scale,
    precision,
  });
  loraGradA(rec, pool, lin, lora, duT, x, rows);
  matmul(rec, duT, whole(lora.a.value), dx, {
    m: rows,
    n: k,
    k: r,
    transA: true,
    accumulate: true,
    precision,
  });
  pool.release(duT);
}

/** `dB += s·dyᵀ·u`, through `dBᵀ = s·uᵀ·dy` ({@linkcode RANK_ROWS_OVER_TOKENS}). */
function loraGradB(
  rec: Recorder,
  pool: TensorPool,
  lin: Linear,
  lora: LoraPair,
  dy: Tensor,
  uT: Tensor,
  rows: number,
): void {
  if (!lora.b.trainable) return;
  const n = lin.outFeatures;
  const dBT = pool.tensor([lora.rank, n], "f32", `${lin.weight.name}.lora_dBT`);
  matmulVia(RANK_ROWS_OVER_TOKENS, rec, uT, dy, dBT, { m: lora.rank, n, k: rows, alpha: lora.scale });
  addTransposed(rec, pool, lora, dBT, n);
  pool.release(dBT);
}

/** `dA += duᵀ·x` from `duT [rank × rows]` ({@linkcode RANK_ROWS_OVER_TOKENS}). */
function loraGradA(
  rec: Recorder,
  pool: TensorPool,
  lin: Linear,
  lora: LoraPair,
  duT: Tensor,
  x: Tensor,
  rows: number,
): void {
  if (!lora.a.trainable) return;
  matmulVia(RANK_ROWS_OVER_TOKENS, rec, duT, x, whole(ensureGrad(pool, lora.a)), {
    m: lora.rank,
    n: lin.inFeatures,
    k: rows,
    accumulate: true,
  });
}

/**
 * The LoRA part of the backward in bf16, from the pack of dy the base products made: the rank
 * stays the row or inner dimension of every product, only rank-wide operands (u, du, A, B) are
 * packed, s folded into Bᵀ; dB and dA, which reduce over the tokens, read dy and x in place
 * ({@linkcode RANK_ROWS_OVER_TOKENS}) instead of transposing packs of them.
 */
function loraBackwardPacked(
  rec: Recorder,
  pool: TensorPool,
  lin: Linear,
  lora: LoraPair,
  dy: Tensor,
  dyP: PackedBf16,
  x: Tensor,
  uT: Tensor,
  dx: Tensor,
  rows: number,
): void {
  const { inFeatures: k, outFeatures: n } = lin;
  const r = lora.rank;
  loraGradB(rec, pool, lin, lora, dy, uT, rows);
  const duT = pool.tensor([r, rows], "f32", `${lin.weight.name}.lora_duT`);
  const bT = packBf16(rec, { ...matrixView(whole(lora.b.value), r, n, true), scale: lora.scale });
  matmulPackedBf16(rec, bT, dyP, duT);
  loraGradA(rec, pool, lin, lora, duT, x, rows);
  const du = packBf16(rec, matrixView(duT, rows, r, true));
  const aT = packBf16(rec, matrixView(whole(lora.a.value), k, r, true));
  matmulPackedBf16(rec, du, aT, dx, { accumulate: true });
  for (const packed of [bT, du, aT]) releasePacked(rec, packed);
  pool.release(duT);
}
