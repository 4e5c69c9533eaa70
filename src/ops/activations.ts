/**
 * Gated MLP activations — SwiGLU `silu(gate)·up` and GeGLU `gelu_tanh(gate)·up` (HF
 * `gelu_pytorch_tanh`) — and scaling `y = s·x`, forward and backward (CPU reference + GPU launchers).
 *
 * @example
 * ```ts
 * swigluForward(rec, gate, up, act, { n: rows * ff });
 * swigluBackward(rec, dAct, gate, up, dGate, dUp, { n: rows * ff });
 * const packs = swigluBackwardPacked(rec, dAct, gate, up, dGate, dUp, { rows, cols: ff }); // = and bf16 packs
 * scaleForward(rec, x, y, { n: x.size, scale: Math.sqrt(hidden) });
 * ```
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";
import { allocatePacked, type PackedBf16 } from "./matmul_tex.ts";

const WG = 64;
/** Lanes of the packing entries (along the row packs' texels, as the matmul packs). */
const PACK_WG = 16;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/** `silu(g)` and its derivative. */
export function siluCpu(g: number): [value: number, slope: number] {
  const s = 1 / (1 + Math.exp(-g));
  return [g * s, s * (1 + g * (1 - s))];
}

/** Tanh-approximated GELU (`gelu_pytorch_tanh`) and its derivative. */
export function geluTanhCpu(g: number): [value: number, slope: number] {
  const t = Math.tanh(SQRT_2_OVER_PI * (g + GELU_CUBIC * g ** 3));
  const du = SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * g * g);
  return [0.5 * g * (1 + t), 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * du];
}

type Activation = (g: number) => [value: number, slope: number];

function gluForwardCpu(act: Activation, gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: gate.length }, (_, i) => act(gate[i])[0] * up[i]);
}

function gluBackwardCpu(
  act: Activation,
  dout: ArrayLike<number>,
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
) {
  const dgate = new Float64Array(gate.length), dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const [value, slope] = act(gate[i]);
    dgate[i] = dout[i] * up[i] * slope;
    dup[i] = dout[i] * value;
  }
  return { dgate, dup };
}

/** CPU reference: `silu(gate)·up`. */
export const swigluForwardCpu = (gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array =>
  gluForwardCpu(siluCpu, gate, up);
/** CPU reference backward of SwiGLU: `{ dgate, dup }`. */
export const swigluBackwardCpu = (
  dout: ArrayLike<number>,
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
): { dgate: Float64Array; dup: Float64Array } => gluBackwardCpu(siluCpu, dout, gate, up);
/** CPU reference: `gelu_tanh(gate)·up`. */
export const gegluForwardCpu = (gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array =>
  gluForwardCpu(geluTanhCpu, gate, up);
/** CPU reference backward of GeGLU: `{ dgate, dup }`. */
export const gegluBackwardCpu = (
  dout: ArrayLike<number>,
  gate: ArrayLike<number>,
  up: ArrayLike<number>,
): { dgate: Float64Array; dup: Float64Array } => gluBackwardCpu(geluTanhCpu, dout, gate, up);

/** CPU reference: `s·x` (its backward is `s·dy`, the same function). */
export function scaleForwardCpu(x: ArrayLike<number>, scale: number): Float64Array {
  return Float64Array.from({ length: x.length }, (_, i) => scale * x[i]);
}

function dispatchElementwise(
  rec: Recorder,
  entry: string,
  gelu: boolean,
  bindings: Tensor[],
  n: number,
  scale = 1,
): void {
  const { groups, rowStride } = elementGrid(n, WG);
  rec.dispatch(
    rec.kernel("activations", entry, { WG, GELU: gelu ? 1 : 0 }),
    bindings,
    groups,
    params([["u32", n], ["f32", scale], ["u32", rowStride], ["u32", 0]]),
  );
}

/** Sizes divisible by 4 (every MLP) take the vec4 kernels, which count vec4s. */
function dispatchGlu(rec: Recorder, entry: string, gelu: boolean, bindings: Tensor[], n: number): void {
  if (n % 4 === 0) dispatchElementwise(rec, `${entry}_vec4`, gelu, bindings, n / 4);
  else dispatchElementwise(rec, entry, gelu, bindings, n);
}

/** Records `out = act(gate)·up`. */
export type GluForward = (rec: Recorder, gate: Tensor, up: Tensor, out: Tensor, shape: { n: number }) => void;
/** The arguments of a GLU backward launcher. */
type GluBackwardLauncher<Shape, Result> = (
  rec: Recorder,
  dout: Tensor,
  gate: Tensor,
  up: Tensor,
  dgate: Tensor,
  dup: Tensor,
  shape: Shape,
) => Result;
/** Records `dgate += dout·up·act'(gate)`, `dup += dout·act(gate)`. */
export type GluBackward = GluBackwardLauncher<{ n: number }, void>;

/**
 * `[rows × cols]` matrices whose bf16 row packs a kernel writes, with `spareTexels` texels past
 * the columns for a LoRA layer's rank values (see `allocatePacked`).
 */
export interface PackedShape {
  rows: number;
  cols: number;
  spareTexels?: number;
}

/**
 * Records `dgate = dout·up·act'(gate)`, `dup = dout·act(gate)` for `[rows × cols]` matrices (cols
 * a multiple of 4; overwritten, not accumulated) and returns their bf16 packs along the rows, as
 * `packBf16` makes them, for the backward products of gate/up layers with frozen weights
 * (dX = dY·W): the kernel writes the packs from the values it holds instead of packs reading them
 * again. Release them with `releasePacked`.
 */
export type GluBackwardPacked = GluBackwardLauncher<
  PackedShape,
  { dgate: PackedBf16; dup: PackedBf16 }
>;

/**
 * Records a GLU entry that also writes the bf16 row packs of its `outputs` ([rows × cols], cols a
 * multiple of 4; bound after `inputs`, the packs after them) and returns the packs.
 */
function dispatchWithRowPacks(
  rec: Recorder,
  entry: string,
  gelu: boolean,
  inputs: Tensor[],
  outputs: Tensor[],
  { rows, cols, spareTexels = 0 }: PackedShape,
): PackedBf16[] {
  if (cols % 4 !== 0) throw new RangeError(`${entry}: ${cols} columns, not a multiple of 4`);
  const packs = outputs.map((t) => allocatePacked(rec, rows, cols, t.name, spareTexels));
  const width = Math.ceil(cols / 8);
  rec.dispatch(
    rec.kernel("activations", entry, { GELU: gelu ? 1 : 0 }),
    [...inputs, ...outputs, ...packs.map((p) => p.texture.createView())],
    [Math.ceil(width / PACK_WG), rows],
    params([["u32", rows], ["u32", cols / 4], ["u32", width], ["u32", 0]]),
  );
  return packs;
}

/**
 * Records `out = act(gate)·up` for `[rows × cols]` matrices (cols a multiple of 4) and returns
 * the bf16 pack of `out` along its rows, as `packBf16` makes it (for a down layer with a frozen
 * weight, which reads its input only that way), written by the kernel from the values it holds.
 * Release it with `releasePacked`.
 */
export type GluForwardPacked = (
  rec: Recorder,
  gate: Tensor,
  up: Tensor,
  out: Tensor,
  shape: PackedShape,
) => PackedBf16;

function gluLaunchers(
  gelu: boolean,
): {
  forward: GluForward;
  backward: GluBackward;
  forwardPacked: GluForwardPacked;
  backwardPacked: GluBackwardPacked;
} {
  return {
    forward: (rec, gate, up, out, { n }) => dispatchGlu(rec, "glu_forward", gelu, [gate, up, out], n),
    backward: (rec, dout, gate, up, dgate, dup, { n }) =>
      dispatchGlu(rec, "glu_backward", gelu, [dout, gate, up, dgate, dup], n),
    forwardPacked: (rec, gate, up, out, shape) =>
      dispatchWithRowPacks(rec, "glu_forward_pack_rows", gelu, [gate, up], [out], shape)[0],
    backwardPacked: (rec, dout, gate, up, dgate, dup, shape) => {
      const [packedDgate, packedDup] = dispatchWithRowPacks(
        rec,
        "glu_backward_pack_rows",
        gelu,
        [dout, gate, up],
        [dgate, dup],
        shape,
      );
      return { dgate: packedDgate, dup: packedDup };
    },
  };
}

const swiglu = gluLaunchers(false);
const geglu = gluLaunchers(true);
/** Records `out = silu(gate)·up`. */
export const swigluForward: GluForward = swiglu.forward;
/** Records `dgate += dout·up·silu'(gate)`, `dup += dout·silu(gate)`. */
export const swigluBackward: GluBackward = swiglu.backward;
/** {@linkcode GluForwardPacked} for SwiGLU. */
export const swigluForwardPacked: GluForwardPacked = swiglu.forwardPacked;
/** {@linkcode GluForwardPacked} for GeGLU. */
export const gegluForwardPacked: GluForwardPacked = geglu.forwardPacked;
/** {@linkcode GluBackwardPacked} for SwiGLU. */
export const swigluBackwardPacked: GluBackwardPacked = swiglu.backwardPacked;
/** {@linkcode GluBackwardPacked} for GeGLU. */
export const gegluBackwardPacked: GluBackwardPacked = geglu.backwardPacked;
/** Records `out = gelu_tanh(gate)·up`. */
export const gegluForward: GluForward = geglu.forward;
/** Records `dgate += dout·up·gelu_tanh'(gate)`, `dup += dout·gelu_tanh(gate)`. */
export const gegluBackward: GluBackward = geglu.backward;

/** Records `y = s·x`. */
export function scaleForward(
  rec: Recorder,
  x: Tensor,
  y: Tensor,
  { n, scale }: { n: number; scale: number },
): void {
  dispatchElementwise(rec, "scale_forward", false, [x, y], n, scale);
}

/** Records `dx += s·dy`. */
export function scaleBackward(
  rec: Recorder,
  dy: Tensor,
  dx: Tensor,
  { n, scale }: { n: number; scale: number },
): void {
  dispatchElementwise(rec, "scale_backward", false, [dy, dx], n, scale);
}
