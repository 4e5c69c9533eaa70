/**
 * Linear layers `y = x·Wᵀ + b` with an optional LoRA update `+ s·(x·Aᵀ)·Bᵀ`, forward and explicit
 * backward (HF weight layout `W[out × in]`, so the forward is an NT matmul, `dX += dY·W` is NN and
 * `dW += dYᵀ·X` is TN). Backward accumulates into every gradient, as every op does. In bf16 the
 * products run as NT on packed operands, dW on the transposing packs of dY and X (one texture
 * kernel to compile for a whole training step). The LoRA products, rank r wide, run in f32 as
 * memory passes of their own (`src/ops/lora.ts`), except that with packed operands the
 * up-projections ride on the base product: the input's pack (x, or dy) carries bf16(u) (or
 * bf16(du)) in spare texels along k and the weight's pack the factor (s·B, or A) in the same
 * texels, so one product computes `x·Wᵀ + u·(s·B)ᵀ` (or `dy·W + du·A`), which saves the pass
 * that read and wrote y (or dx) again; dA and dB then read x and dy from those packs too.
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
  matrixView,
  packBf16,
  packBf16WithTranspose,
  type PackedBf16,
  packedFits,
  packedTranspose,
  releasePacked,
  withSpareTexels,
} from "../ops/matmul.ts";
import {
  loraBackward as loraProductsBackward,
  loraBackwardTexels,
  loraFactorTexels,
  loraForward,
  loraForwardTexels,
  loraSavedSize,
  type LoraShape,
  loraTexels,
} from "../ops/lora.ts";
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
 * Fewest rows for which a bf16 layer input is packed once and shared ({@linkcode packLinearInput}):
 * below it (decoding a few tokens) the general kernel's f32 products are as fast as padding the
 * texture kernels' 32-row tiles.
 */
const PACKED_MIN_ROWS = 64;

/**
 * True when {@linkcode packLinearInput} packs a `[rows × cols]` layer input (a kernel that writes
 * the input may write its pack instead).
 */
export function linearInputPacks(
  rec: Recorder,
  rows: number,
  cols: number,
  precision: MatmulPrecision,
): boolean {
  return precision === "bf16" && rows >= PACKED_MIN_ROWS && cols % 4 === 0 && packedFits(rec, rows, cols) &&
    packedFits(rec, cols, rows);
}

/**
 * Spare texels the bf16 packs of an input (or upstream gradient) of `layers` need for the rank
 * values of their LoRA adapters (the widest adapter's; 0 without an active one).
 */
export function loraPackTexels(...layers: Linear[]): number {
  return Math.max(0, ...layers.map((l) => activeLora(l)?.rank ?? 0).map((r) => r > 0 ? loraTexels(r) : 0));
}

/**
 * Records the bf16 packing of a layer input `x [rows × cols]` for every base-weight product that
 * reads it: the forward of each linear layer fed by `x` and, in training, their weight gradients
 * through its transpose, packed here from the same read of `x` when `transposeToo` (about the
 * cost of one pack instead of two), else at the first backward that needs it. Null (the products
 * then pack for themselves or run in f32) for f32 precision, few rows, or shapes whose packs exceed
 * the texture limits. `spareTexels`: see {@linkcode loraPackTexels}. Release it with
 * `releasePacked`.
 */
export function packLinearInput(
  rec: Recorder,
  x: Tensor,
  rows: number,
  cols: number,
  precision: MatmulPrecision,
  transposeToo = false,
  spareTexels = 0,
): PackedBf16 | null {
  if (!linearInputPacks(rec, rows, cols, precision)) return null;
  const view = matrixView(x, rows, cols);
  return transposeToo ? packBf16WithTranspose(rec, view, spareTexels) : packBf16(rec, view, spareTexels);
}

/**
 * A weight held in one chunk: the packed products read chunk 0 only, so a weight split into row
 * chunks (above the storage binding limit) takes the general path, whose `whole()` names it.
 */
function unsplit(w: Param): boolean {
  return w.value.chunks.length === 1;
}

/** The LoRA path runs when an unmerged adapter is attached. */
function activeLora(lin: Linear): LoraPair | null {
  return lin.lora && !lin.lora.merged ? lin.lora : null;
}

/**
 * Records `y = x·Wᵀ + b (+ s·(x·Aᵀ)·Bᵀ)` (`y +=` with `accumulate`: a residual add rides on the
 * product's epilogue) for `rows` rows, the base product with operands in `precision` (the LoRA
 * down-projection in f32; the up-projection in the base product when `packedX` has spare texels,
 * see the module doc), reading `packedX` (x packed by {@linkcode packLinearInput}) when given.
 * Returns the LoRA intermediate `u = x·Aᵀ` (owned by the caller: keep it for backward, else
 * release it), or null.
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
  accumulate = false,
): Tensor | null {
  const { inFeatures: k, outFeatures: n } = lin;
  const bias = lin.bias ? whole(lin.bias.value) : undefined;
  const lora = activeLora(lin);
  const u = lora
    ? pool.tensor([loraSavedSize({ rows, rank: lora.rank })], "f32", `${lin.weight.name}.lora_u`)
    : null;
  if (packedX && n % 4 === 0 && unsplit(lin.weight)) {
    const spare = loraPackTexels(lin);
    const w = weightPack(rec, lin.weight, "rows", 0, spare);
    const wide = lora && withSpareTexels(packedX, spare);
    if (lora && wide) {
      const shape = loraShape(lin, lora, rows), texel = Math.ceil(k / 8);
      const [a, b] = [whole(lora.a.value), whole(lora.b.value)];
      loraForwardTexels(rec, shape, { x, a, b, u: u!, pack: packedX.texture, texel });
      loraFactorTexels(rec, shape, "forward", { factor: b, pack: w.texture, texel });
      matmulPackedBf16(rec, wide, withSpareTexels(w, spare)!, y, { bias, accumulate });
      return u;
    }
    matmulPackedBf16(rec, packedX, w, y, { bias, accumulate });
  } else {
    matmul(rec, x, whole(lin.weight.value), y, { m: rows, n, k, transB: true, bias, accumulate, precision });
  }
  if (lora) {
    loraForward(rec, loraShape(lin, lora, rows), {
      x,
      a: whole(lora.a.value),
      b: whole(lora.b.value),
      y,
      u: u!,
    });
  }
  return u;
}

/**
 * Records the backward of {@linkcode linearForward}: `dx += dy·W (+ s·dy·B·A)` (`=` instead of
 * `+=` with `overwriteDx`, for the first writer of a fresh buffer) and, for trainable
 * parameters, `dW += dyᵀ·x`, `db += Σ dy`, `dB += s·dyᵀ·u`, `dA += (s·dy·B)ᵀ·x`, with the base
 * operands in `precision` (the LoRA ones in f32, except that with spare texels in dy's pack du·A
 * rides on the base product and dA, dB read the bf16 packs of x and dy). With `packedX` (the
 * forward's packed input), dy is packed once for every product that reads it, and dW reads dyᵀ
 * (packed with dy, from one read of it) and xᵀ (packed once per input: with x in a training forward, else
 * `packedTranspose`); with `packedDy` too (dy's row pack, made by the kernel that wrote dy; the
 * caller releases it), dy is not packed here (dyᵀ only if a trainable weight needs it and it lacks
 * one). With `dx` null (nothing upstream needs ∂L/∂x: a first layer under a frozen embedding), only
 * the parameter gradients are recorded.
 */
export function linearBackward(
  rec: Recorder,
  pool: TensorPool,
  lin: Linear,
  dy: Tensor,
  x: Tensor,
  loraU: Tensor | null,
  dx: Tensor | null,
  rows: number,
  { overwriteDx = false, precision = "f32", packedX = null, packedDy = null }: {
    overwriteDx?: boolean;
    precision?: MatmulPrecision;
    packedX?: PackedBf16 | null;
    packedDy?: PackedBf16 | null;
  } = {},
): void {
  const { inFeatures: k, outFeatures: n } = lin;
  const lora = activeLora(lin);
  if (lora && !loraU) {
    throw new Error(`Backward of ${lin.weight.name} needs the LoRA activation saved in forward`);
  }
  let loraDone = false;
  // A frozen layer without an adapter whose dx nobody reads needs nothing of dy (but its bias).
  const readsDy = dx !== null || lora !== null || lin.weight.trainable;
  if (packedX && unsplit(lin.weight) && readsDy) {
    const spare = loraPackTexels(lin);
    // dW reads dyᵀ: both packs from one read of dy.
    const dyP = packedDy ??
      (lin.weight.trainable
        ? packBf16WithTranspose(rec, matrixView(dy, rows, n), spare)
        : packBf16(rec, matrixView(dy, rows, n), spare));
    const wide = lora && withSpareTexels(dyP, spare);
    if (lora && wide) {
      const texel = Math.ceil(n / 8);
      // du = s·dy·B (into dy's pack for dx, kept for dA) is needed even without dx.
      loraBackwardTexels(rec, loraShape(lin, lora, rows), {
        ...loraTensors(pool, lora, dy, x, loraU!),
        pack: dyP.texture,
        xPack: packedX.texture,
        texel,
      });
      if (dx) {
        const wT = weightPack(rec, lin.weight, "transposed", 0, spare);
        loraFactorTexels(rec, loraShape(lin, lora, rows), "backward", {
          factor: whole(lora.a.value),
          pack: wT.texture,
          texel,
        });
        matmulPackedBf16(rec, wide, withSpareTexels(wT, spare)!, dx, { accumulate: !overwriteDx });
      }
      loraDone = true;
    } else if (dx) {
      matmulPackedBf16(rec, dyP, weightPack(rec, lin.weight, "transposed", 0, spare), dx, {
        accumulate: !overwriteDx,
      });
    }
    if (lin.weight.trainable) {
      const dyT = packedTranspose(rec, dyP, matrixView(dy, n, rows, true));
      const xT = packedTranspose(rec, packedX, matrixView(x, k, rows, true));
      matmulPackedBf16(rec, dyT, xT, whole(ensureGrad(pool, lin.weight)), { accumulate: true });
    }
    if (!packedDy) releasePacked(rec, dyP);
  } else {
    if (dx) {
      matmul(rec, dy, whole(lin.weight.value), dx, {
        m: rows,
        n: k,
        k: n,
        accumulate: !overwriteDx,
        precision,
      });
    }
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
  }
  if (lora && !loraDone) {
    // The f32 passes compute du while adding du·A into dx: without dx, into a scratch one.
    const sink = dx ?? pool.tensor([rows, k], "f32", `${lin.weight.name}.dx_unused`);
    loraProductsBackward(rec, loraShape(lin, lora, rows), {
      ...loraTensors(pool, lora, dy, x, loraU!),
      dx: sink,
    });
    if (!dx) pool.release(sink);
  }
  if (lin.bias?.trainable) {
    matmulBiasBackward(rec, dy, whole(ensureGrad(pool, lin.bias)), { rows, cols: n });
  }
}

/** The sizes of `lin`'s adapter products over `rows` tokens. */
function loraShape(lin: Linear, lora: LoraPair, rows: number): LoraShape {
  return {
    rows,
    inFeatures: lin.inFeatures,
    outFeatures: lin.outFeatures,
    rank: lora.rank,
    scale: lora.scale,
  };
}

/** The operands of an adapter's backward passes (gradients only for trainable factors). */
function loraTensors(pool: TensorPool, lora: LoraPair, dy: Tensor, x: Tensor, u: Tensor) {
  return {
    dy,
    x,
    u,
    a: whole(lora.a.value),
    b: whole(lora.b.value),
    da: lora.a.trainable ? whole(ensureGrad(pool, lora.a)) : undefined,
    db: lora.b.trainable ? whole(ensureGrad(pool, lora.b)) : undefined,
  };
}
