/**
 * Linear layers `y = x·Wᵀ + b` with an optional LoRA update `+ s·(x·Aᵀ)·Bᵀ`, forward and explicit
 * backward (HF weight layout `W[out × in]`, so the forward is an NT matmul, `dX += dY·W` is NN and
 * `dW += dYᵀ·X` is TN). Backward accumulates into every gradient, as every op does.
 *
 * @module
 */
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor, TensorPool } from "../gpu/tensor.ts";
import { matmul, matmulBiasBackward } from "../ops/matmul.ts";
import { ensureGrad, type Param, whole } from "./params.ts";

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

/** The LoRA path runs when an unmerged adapter is attached. */
function activeLora(lin: Linear): LoraPair | null {
  return lin.lora && !lin.lora.merged ? lin.lora : null;
}

/**
 * Records `y = x·Wᵀ + b (+ s·(x·Aᵀ)·Bᵀ)` for `rows` rows. Returns the LoRA intermediate `x·Aᵀ`
 * (`[rows × rank]`, owned by the caller: keep it for backward, else release it), or null.
 */
export function linearForward(
  rec: Recorder,
  pool: TensorPool,
  lin: Linear,
  x: Tensor,
  y: Tensor,
  rows: number,
): Tensor | null {
  const { inFeatures: k, outFeatures: n } = lin;
  matmul(rec, x, whole(lin.weight.value), y, {
    m: rows,
    n,
    k,
    transB: true,
    bias: lin.bias ? whole(lin.bias.value) : undefined,
  });
  const lora = activeLora(lin);
  if (!lora) return null;
  const u = pool.tensor([rows, lora.rank], "f32", `${lin.weight.name}.lora_u`);
  matmul(rec, x, whole(lora.a.value), u, { m: rows, n: lora.rank, k, transB: true });
  matmul(rec, u, whole(lora.b.value), y, {
    m: rows,
    n,
    k: lora.rank,
    transB: true,
    accumulate: true,
    alpha: lora.scale,
  });
  return u;
}

/**
 * Records the backward of {@linkcode linearForward}: `dx += dy·W (+ s·dy·B·A)` and, for trainable
 * parameters, `dW += dyᵀ·x`, `db += Σ dy`, `dB += s·dyᵀ·u`, `dA += (s·dy·B)ᵀ·x`.
 */
export function linearBackward(
  rec: Recorder,
  pool: TensorPool,
  lin: Linear,
  dy: Tensor,
  x: Tensor,
  loraU: Tensor | null,
  dx: Tensor,
  rows: number,
): void {
  const { inFeatures: k, outFeatures: n } = lin;
  matmul(rec, dy, whole(lin.weight.value), dx, { m: rows, n: k, k: n, accumulate: true });
  if (lin.weight.trainable) {
    matmul(rec, dy, x, whole(ensureGrad(pool, lin.weight)), {
      m: n,
      n: k,
      k: rows,
      transA: true,
      accumulate: true,
    });
  }
  if (lin.bias?.trainable) {
    matmulBiasBackward(rec, dy, whole(ensureGrad(pool, lin.bias)), { rows, cols: n });
  }
  const lora = activeLora(lin);
  if (!lora) return;
  if (!loraU) throw new Error(`Backward of ${lin.weight.name} needs the LoRA activation saved in forward`);
  const r = lora.rank;
  if (lora.b.trainable) {
    matmul(rec, dy, loraU, whole(ensureGrad(pool, lora.b)), {
      m: n,
      n: r,
      k: rows,
      transA: true,
      accumulate: true,
      alpha: lora.scale,
    });
  }
  const du = pool.tensor([rows, r], "f32", `${lin.weight.name}.lora_du`);
  matmul(rec, dy, whole(lora.b.value), du, { m: rows, n: r, k: n, alpha: lora.scale });
  if (lora.a.trainable) {
    matmul(rec, du, x, whole(ensureGrad(pool, lora.a)), {
      m: r,
      n: k,
      k: rows,
      transA: true,
      accumulate: true,
    });
  }
  matmul(rec, du, whole(lora.a.value), dx, { m: rows, n: k, k: r, accumulate: true });
  pool.release(du);
}
