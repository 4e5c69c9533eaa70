/**
 * LoRA rank-r products of a linear layer (`y += s·(x·Aᵀ)·Bᵀ`, A `[r × in]`, B `[out × r]`), forward
 * and backward, in f32: CPU references (f64) and GPU launchers (kernels/lora.wgsl). The rank is
 * tiny, so each product is a memory pass rather than a matmul: the forward and the input gradient
 * are one pass over the rows each (x and y, dy and dx), each factor gradient one pass over the
 * tokens.
 *
 * With bf16 packed operands the up-projections can ride on the base product instead: the `…Texels`
 * launchers write the rank values (u or du, rounded to bf16) into spare texels of the input's pack
 * and the factor (s·B or A) into the same texels of the weight's pack, so that the base product
 * over k plus {@linkcode loraTexels} texels adds `u·(s·B)ᵀ` (or `du·A`) by itself.
 *
 * @module
 */
import { type Binding, params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { scratchBuffer } from "./scratch.ts";

/** The row kernels' rows per workgroup (16 lanes × 4 rows) and the weight kernel's lanes (8 features each). */
const ROWS_PER_GROUP = 64;
const LANES = 16;

/** Sizes of one adapted layer's products over `rows` tokens. */
export interface LoraShape {
  rows: number;
  inFeatures: number;
  outFeatures: number;
  rank: number;
  /** alpha / rank. */
  scale: number;
}

/** Vec4s per row of the saved rank values (u, du): the rank rounded up to whole quads. */
function rankQuads(rank: number): number {
  return Math.ceil(rank / 4);
}

/**
 * Spare texels along k that a bf16 pack needs for the rank values of a rank-`rank` adapter: one
 * per quad of ranks (ranks 4g … 4g+3 in texel g, then four zeros).
 *
 * @example
 * ```ts
 * const xP = packBf16(rec, matrixView(x, rows, 256), loraTexels(4)); // one spare texel
 * ```
 */
export function loraTexels(rank: number): number {
  return rankQuads(rank);
}

/**
 * Values of the tensor that {@linkcode loraForward} saves for the backward (`u = x·Aᵀ`, rows of
 * whole vec4s of ranks).
 *
 * @example
 * ```ts
 * const u = pool.tensor([loraSavedSize(shape)], "f32", "q_proj.lora_u");
 * ```
 */
export function loraSavedSize(shape: Pick<LoraShape, "rows" | "rank">): number {
  return shape.rows * rankQuads(shape.rank) * 4;
}

/** CPU reference forward: `u = x·Aᵀ` `[rows × r]` and the update `s·u·Bᵀ` `[rows × out]`. */
export function loraForwardCpu(
  shape: LoraShape,
  x: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): { u: Float64Array; update: Float64Array } {
  const { rows, inFeatures: k, outFeatures: n, rank: r, scale } = shape;
  const u = new Float64Array(rows * r);
  const update = new Float64Array(rows * n);
  for (let i = 0; i < rows; i++) {
    for (let q = 0; q < r; q++) {
      let sum = 0;
      for (let f = 0; f < k; f++) sum += x[i * k + f] * a[q * k + f];
      u[i * r + q] = sum;
    }
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let q = 0; q < r; q++) sum += u[i * r + q] * b[j * r + q];
      update[i * n + j] = scale * sum;
    }
  }
  return { u, update };
}

/**
 * CPU reference backward of {@linkcode loraForwardCpu}'s update for an upstream gradient `dy`:
 * `du = s·dy·B`, `dx = du·A`, `dA = duᵀ·x`, `dB = s·dyᵀ·u`.
 */
export function loraBackwardCpu(
  shape: LoraShape,
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): { du: Float64Array; dx: Float64Array; da: Float64Array; db: Float64Array } {
  const { rows, inFeatures: k, outFeatures: n, rank: r, scale } = shape;
  const { u } = loraForwardCpu(shape, x, a, b);
  const du = new Float64Array(rows * r);
  const dx = new Float64Array(rows * k);
  const da = new Float64Array(r * k);
  const db = new Float64Array(n * r);
  for (let i = 0; i < rows; i++) {
    for (let q = 0; q < r; q++) {
      let sum = 0;
      for (let j = 0; j < n; j++) sum += dy[i * n + j] * b[j * r + q];
      du[i * r + q] = scale * sum;
    }
    for (let q = 0; q < r; q++) {
      const g = du[i * r + q];
      for (let f = 0; f < k; f++) {
        dx[i * k + f] += g * a[q * k + f];
        da[q * k + f] += g * x[i * k + f];
      }
      for (let j = 0; j < n; j++) db[j * r + q] += scale * dy[i * n + j] * u[i * r + q];
    }
  }
  return { du, dx, da, db };
}

function checkShape(shape: LoraShape): void {
  const { inFeatures, outFeatures, rank } = shape;
  if (inFeatures % 4 !== 0 || outFeatures % 4 !== 0) {
    throw new RangeError(
      `LoRA kernels need features in multiples of 4, got in ${inFeatures}, out ${outFeatures}`,
    );
  }
  if (!(Number.isInteger(rank) && rank >= 1)) {
    throw new RangeError(`LoRA rank must be a positive integer, got ${rank}`);
  }
}

/** One row pass per quad of ranks (kernels/lora.wgsl `row_pass`, or `texel_pass` into `texel`). */
function rowPasses(
  rec: Recorder,
  entry: "lora_forward" | "lora_backward_input" | "lora_forward_texels" | "lora_backward_input_texels",
  shape: LoraShape,
  bindings: { input: Tensor; a: Tensor; b: Tensor; output: Binding; saved: Binding },
  scales: { down: number; up: number },
  texel = 0,
): void {
  const { rows, rank } = shape;
  const [down, up] = entry.startsWith("lora_forward")
    ? [shape.inFeatures, shape.outFeatures]
    : [shape.outFeatures, shape.inFeatures];
  const { input, a, b, output, saved } = bindings;
  for (let g = 0; g < rankQuads(rank); g++) {
    rec.dispatch(
      rec.kernel("lora", entry),
      [input, a, b, output, saved],
      [Math.ceil(rows / ROWS_PER_GROUP)],
      params([
        ["u32", rows],
        ["u32", down / 4],
        ["u32", up / 4],
        ["u32", rank],
        ["u32", g],
        ["u32", rankQuads(rank)],
        ["f32", scales.down],
        ["f32", scales.up],
        ["u32", texel],
      ]),
    );
  }
}

/**
 * Records `u = x·Aᵀ` into `u` (see {@linkcode loraSavedSize}) and `y += s·u·Bᵀ`, for x
 * `[rows × in]` and y `[rows × out]` (features in multiples of 4).
 *
 * @example
 * ```ts
 * loraForward(rec, { rows, inFeatures: 256, outFeatures: 768, rank: 4, scale: 32 }, { x, a, b, y, u });
 * ```
 */
export function loraForward(
  rec: Recorder,
  shape: LoraShape,
  t: { x: Tensor; a: Tensor; b: Tensor; y: Tensor; u: Tensor },
): void {
  checkShape(shape);
  if (shape.rows === 0) return;
  const rows = { input: t.x, a: t.a, b: t.b, output: t.y, saved: t.u };
  rowPasses(rec, "lora_forward", shape, rows, { down: 1, up: shape.scale });
}

/**
 * Records `u = x·Aᵀ` into `u` (as {@linkcode loraForward}) and bf16(u) into texel columns
 * `texel … texel + loraTexels(rank) − 1` of `pack` (x's bf16 pack, rows = x's rows), the half of
 * the forward that the base product over the spare texels completes (see
 * {@linkcode loraFactorTexels}). `b` is bound (the row passes share their bindings), not read.
 *
 * @example
 * ```ts
 * loraForwardTexels(rec, shape, { x, a, b, u, pack: xP.texture, texel: 256 / 8 });
 * ```
 */
export function loraForwardTexels(
  rec: Recorder,
  shape: LoraShape,
  t: { x: Tensor; a: Tensor; b: Tensor; u: Tensor; pack: GPUTexture; texel: number },
): void {
  checkShape(shape);
  if (shape.rows === 0) return;
  const rows = { input: t.x, a: t.a, b: t.b, output: t.pack.createView(), saved: t.u };
  rowPasses(rec, "lora_forward_texels", shape, rows, { down: 1, up: 1 }, t.texel);
}

/**
 * Records a factor's bf16 texels into columns `texel …` of a weight's pack, to meet the rank
 * values of {@linkcode loraForwardTexels} (`"forward"`: row n of W's pack gets s·B[n, ·]) or of
 * {@linkcode loraBackwardTexels} (`"backward"`: row f of Wᵀ's pack gets A[·, f]).
 *
 * @example
 * ```ts
 * loraFactorTexels(rec, shape, "forward", { factor: b, pack: wP.texture, texel: 256 / 8 });
 * ```
 */
export function loraFactorTexels(
  rec: Recorder,
  shape: LoraShape,
  direction: "forward" | "backward",
  t: { factor: Tensor; pack: GPUTexture; texel: number },
): void {
  checkShape(shape);
  const { inFeatures: k, outFeatures: n, rank: r, scale } = shape;
  const [rows, rowStride, rankStride, factorScale] = direction === "forward"
    ? [n, r, 1, scale]
    : [k, 1, k, 1];
  rec.dispatch(
    rec.kernel("lora", "lora_factor_texels"),
    [t.factor, t.pack.createView()],
    [Math.ceil(rows / LANES)],
    params([
      ["u32", rows],
      ["u32", r],
      ["u32", rowStride],
      ["u32", rankStride],
      ["u32", rankQuads(r)],
      ["u32", t.texel],
      ["f32", factorScale],
    ]),
  );
}

/**
 * Records `grad(q, f) += scale·Σ_i saved[i, q]·tokens[i, f]` (element (q, f) of grad at
 * `q·rankStride + f·featureStride`).
 */
function weightPasses(
  rec: Recorder,
  shape: LoraShape,
  saved: Binding,
  tokens: Tensor | GPUTexture,
  features: number,
  grad: Tensor,
  layout: { rankStride: number; featureStride: number; scale: number },
): void {
  const { rows, rank } = shape;
  const packed = tokens instanceof GPUTexture;
  for (let g = 0; g < rankQuads(rank); g++) {
    rec.dispatch(
      rec.kernel("lora", packed ? "lora_backward_weight_packed" : "lora_backward_weight"),
      [saved, packed ? tokens.createView() : tokens, grad],
      [Math.ceil(features / 8 / LANES)],
      params([
        ["u32", rows],
        ["u32", features / 4],
        ["u32", rank],
        ["u32", g],
        ["u32", rankQuads(rank)],
        ["u32", layout.rankStride],
        ["u32", layout.featureStride],
        ["f32", layout.scale],
      ]),
    );
  }
}

/**
 * Records the backward of {@linkcode loraForward} for the upstream gradient `dy [rows × out]`:
 * `dx += du·A` with `du = s·dy·B`, and, for the factors given a gradient, `dB += s·dyᵀ·u` and
 * `dA += duᵀ·x`. `u` is the tensor the forward saved.
 *
 * @example
 * ```ts
 * loraBackward(rec, shape, { dy, x, u, a, b, dx, da: gradA, db: gradB });
 * ```
 */
export function loraBackward(
  rec: Recorder,
  shape: LoraShape,
  t: { dy: Tensor; x: Tensor; u: Tensor; a: Tensor; b: Tensor; dx: Tensor; da?: Tensor; db?: Tensor },
): void {
  backwardPasses(rec, shape, t, "lora_backward_input", t.dx, 0);
}

/** dB, the input pass (`dx += du·A`, or du into a pack's texels), dA. */
function backwardPasses(
  rec: Recorder,
  shape: LoraShape,
  t: { dy: Tensor; x: Tensor; u: Tensor; a: Tensor; b: Tensor; da?: Tensor; db?: Tensor },
  entry: "lora_backward_input" | "lora_backward_input_texels",
  output: Binding,
  texel: number,
  tokens: { dy: Tensor | GPUTexture; x: Tensor | GPUTexture } = t,
): void {
  checkShape(shape);
  if (shape.rows === 0) return;
  const { inFeatures: k, outFeatures: n, rank: r, scale } = shape;
  if (t.db) weightPasses(rec, shape, t.u, tokens.dy, n, t.db, { rankStride: 1, featureStride: r, scale });
  const bytes = loraSavedSize(shape) * 4;
  const du = { buffer: scratchBuffer(rec, "lora.du", bytes), size: bytes };
  rowPasses(
    rec,
    entry,
    shape,
    { input: t.dy, a: t.a, b: t.b, output, saved: du },
    { down: scale, up: 1 },
    texel,
  );
  if (t.da) weightPasses(rec, shape, du, tokens.x, k, t.da, { rankStride: k, featureStride: 1, scale: 1 });
}

/**
 * Records the backward of {@linkcode loraForwardTexels} but `dx += du·A`: du = s·dy·B rounded to
 * bf16 into texel columns `texel …` of `pack` (dy's bf16 row pack), for the base product over the
 * spare texels (see {@linkcode loraFactorTexels}), and the factor gradients `dB += s·dyᵀ·u` and
 * `dA += duᵀ·x` with dy and x read from their bf16 row packs (`pack`, `xPack`: one texel fetch
 * per 8 values, against two vec4 loads of the f32 rows), u and du in f32.
 *
 * @example
 * ```ts
 * const packs = { pack: dyP.texture, xPack: xP.texture, texel: 768 / 8 };
 * loraBackwardTexels(rec, shape, { dy, x, u, a, b, ...packs, da, db });
 * ```
 */
export function loraBackwardTexels(
  rec: Recorder,
  shape: LoraShape,
  t: {
    dy: Tensor;
    x: Tensor;
    u: Tensor;
    a: Tensor;
    b: Tensor;
    pack: GPUTexture;
    xPack: GPUTexture;
    texel: number;
    da?: Tensor;
    db?: Tensor;
  },
): void {
  backwardPasses(rec, shape, t, "lora_backward_input_texels", t.pack.createView(), t.texel, {
    dy: t.pack,
    x: t.xPack,
  });
}
