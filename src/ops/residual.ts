/**
 * Residual add with scale, `y = a + s·b`, forward and backward (CPU reference + GPU launcher).
 *
 * @module
 */
import type { Engine } from "../gpu/engine.ts";
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";

const WG = 64;

/** CPU reference: `y = a + s·b`. */
export function residualForwardCpu(a: ArrayLike<number>, b: ArrayLike<number>, scale = 1): Float64Array {
  const y = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] + scale * b[i];
  return y;
}

/** CPU reference backward: returns `{ da: dy, db: s·dy }`. */
export function residualBackwardCpu(
  dy: ArrayLike<number>,
  scale = 1,
): { da: Float64Array; db: Float64Array } {
  const da = Float64Array.from(dy);
  const db = new Float64Array(dy.length);
  for (let i = 0; i < dy.length; i++) db[i] = scale * dy[i];
  return { da, db };
}

/** Records `y = a + s·b` into `y` (all the same size). */
export function residualForward(rec: Recorder, a: Tensor, b: Tensor, y: Tensor, scale = 1): void {
  const { groups, rowStride } = elementGrid(a.size, WG);
  rec.dispatch(
    rec.kernel("residual", "residual_forward", { WG }),
    [a, b, y],
    groups,
    params([["u32", a.size], ["f32", scale], ["u32", rowStride], ["u32", 0]]),
  );
}

/** Records `da += dy; db += s·dy`. */
export function residualBackward(rec: Recorder, dy: Tensor, da: Tensor, db: Tensor, scale = 1): void {
  const { groups, rowStride } = elementGrid(dy.size, WG);
  rec.dispatch(
    rec.kernel("residual", "residual_backward", { WG }),
    [dy, da, db],
    groups,
    params([["u32", dy.size], ["f32", scale], ["u32", rowStride], ["u32", 0]]),
  );
}

/** Allocates the output and records the forward (convenience for tests and tools). */
export function residual(engine: Engine, rec: Recorder, a: Tensor, b: Tensor, scale = 1): Tensor {
  const y = engine.pool.tensor(a.shape, "f32", "residual");
  residualForward(rec, a, b, y, scale);
  return y;
}
