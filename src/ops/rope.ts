/**
 * Rotate-half rotary position embedding (HF Llama/Qwen convention), forward (out of place or in
 * place) and backward (CPU reference + GPU launchers). `x` is laid out `[tokens × heads × headDim]`;
 * dims `i` and `i + headDim/2` rotate by `positions[t]·invFreq[i]`.
 *
 * @example
 * ```ts
 * ropeForward(rec, q, q, positions, { tokens, heads, headDim: 64, theta: 1e6 }); // in place
 * ropeBackward(rec, dq, dRaw, positions, { tokens, heads, headDim: 64, theta: 1e6 });
 * ```
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";

const WG = 64;
/** The uniform block holds 64 vec4 inverse frequencies. */
const MAX_HALF = 256;

/** Shape of one RoPE call. */
export interface RopeShape {
  tokens: number;
  heads: number;
  headDim: number;
  /** Base of the default frequencies `theta^(−2i/headDim)`. */
  theta: number;
  /** Overrides the default frequencies (rope scaling); `headDim / 2` values. */
  invFreq?: Float32Array;
}

/** The `headDim / 2` inverse frequencies in f32, as HF's default RoPE initialisation rounds them. */
export function ropeFrequencies({ headDim, theta, invFreq }: RopeShape): Float32Array {
  if (headDim % 2 !== 0 || headDim / 2 > MAX_HALF) {
    throw new RangeError(`RoPE head dim ${headDim} must be even and at most ${2 * MAX_HALF}`);
  }
  if (invFreq && invFreq.length !== headDim / 2) {
    throw new RangeError(`RoPE invFreq has ${invFreq.length} values, expected ${headDim / 2}`);
  }
  return invFreq ?? Float32Array.from({ length: headDim / 2 }, (_, i) => 1 / theta ** ((2 * i) / headDim));
}

/** Rotates `v` (forward, `sign` 1) or applies the transposed rotation (backward, `sign` −1). */
function rotateCpu(v: ArrayLike<number>, positions: ArrayLike<number>, shape: RopeShape, sign: 1 | -1) {
  const freq = ropeFrequencies(shape);
  const half = shape.headDim / 2;
  const out = new Float64Array(shape.tokens * shape.heads * shape.headDim);
  for (let t = 0; t < shape.tokens; t++) {
    for (let j = 0; j < half; j++) {
      const angle = Math.fround(positions[t] * freq[j]);
      const cos = Math.cos(angle), sin = sign * Math.sin(angle);
      for (let h = 0; h < shape.heads; h++) {
        const lo = (t * shape.heads + h) * shape.headDim + j, hi = lo + half;
        out[lo] = v[lo] * cos - v[hi] * sin;
        out[hi] = v[hi] * cos + v[lo] * sin;
      }
    }
  }
  return out;
}

/** CPU reference: the rotated `x` (angles rounded to f32 like HF, trigonometry in f64). */
export function ropeForwardCpu(
  x: ArrayLike<number>,
  positions: ArrayLike<number>,
  shape: RopeShape,
): Float64Array {
  return rotateCpu(x, positions, shape, 1);
}

/** CPU reference backward: `dx` (not accumulated). */
export function ropeBackwardCpu(
  dy: ArrayLike<number>,
  positions: ArrayLike<number>,
  shape: RopeShape,
): Float64Array {
  return rotateCpu(dy, positions, shape, -1);
}

function dispatchRope(rec: Recorder, entry: string, bindings: Tensor[], shape: RopeShape): void {
  const freq = ropeFrequencies(shape);
  const half = shape.headDim / 2;
  // One invocation per (token, i < D/2), or per (token, 4 consecutive i) when D/2 divides by 4.
  const vec4 = half % 4 === 0;
  const n = shape.tokens * (vec4 ? half / 4 : half);
  const { groups, rowStride } = elementGrid(n, WG);
  const block: [kind: "u32" | "f32", value: number][] = [["u32", n], ["u32", shape.heads], ["u32", half], [
    "u32",
    rowStride,
  ]];
  for (let i = 0; i < MAX_HALF; i++) block.push(["f32", freq[i] ?? 0]);
  rec.dispatch(rec.kernel("rope", vec4 ? `${entry}_vec4` : entry, { WG }), bindings, groups, params(block));
}

/** Records `y = rope(x)`; pass the same tensor as `x` and `y` to rotate in place. */
export function ropeForward(rec: Recorder, x: Tensor, y: Tensor, positions: Tensor, shape: RopeShape): void {
  if (x.buffer === y.buffer) dispatchRope(rec, "rope_forward_inplace", [positions, y], shape);
  else dispatchRope(rec, "rope_forward", [positions, x, y], shape);
}

/** Records `dx += ropeᵀ(dy)`. */
export function ropeBackward(
  rec: Recorder,
  dy: Tensor,
  dx: Tensor,
  positions: Tensor,
  shape: RopeShape,
): void {
  dispatchRope(rec, "rope_backward", [positions, dy, dx], shape);
}
