/**
 * One decoder block of Qwen2 / Llama / Gemma-2, forward and explicit backward.
 *
 * Qwen2 and Llama: `x += attn(norm₁(x))`, `x += mlp(norm₂(x))`.
 * Gemma-2 (sandwich norms, HF `Gemma2DecoderLayer`): `x += norm_post_attn(attn(norm_in(x)))`,
 * `x += norm_post_ff(mlp(norm_pre_ff(x)))`.
 *
 * The forward keeps, in a {@linkcode BlockActivations}, exactly what the backward reads (llm.c
 * style); the backward walks the block in reverse and adds into the residual-stream gradient
 * `dRes`, so the residual connections need no extra kernel in backward.
 *
 * @module
 */
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor, TensorPool } from "../gpu/tensor.ts";
import {
  gegluBackward,
  gegluBackwardPacked,
  gegluForward,
  gegluForwardPacked,
  swigluBackward,
  swigluBackwardPacked,
  swigluForward,
  swigluForwardPacked,
} from "../ops/activations.ts";
import { attentionBackward, attentionForward, kvCacheWrite } from "../ops/attention.ts";
import { residualForward } from "../ops/residual.ts";
import { rmsnormBackward, rmsnormForward } from "../ops/rmsnorm.ts";
import { ropeBackward, ropeForward } from "../ops/rope.ts";
import {
  type Linear,
  linearBackward,
  linearForward,
  linearInputPacks,
  loraPackTexels,
  type MatmulPrecision,
  packLinearInput,
} from "./linear.ts";
import { type PackedBf16, packedFits, releasePacked } from "../ops/matmul.ts";
import { ensureGrad, type Param, whole } from "./params.ts";

/** Shapes that every block of a model shares. */
export interface BlockDims {
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ff: number;
  eps: number;
  /** 1 for Gemma's `(1+w)` RMSNorm, else 0. */
  normOffset: 0 | 1;
  ropeTheta: number;
  /** RoPE inverse frequencies, rope scaling included (`headDim / 2` values). */
  invFreq: Float32Array;
  attentionScale: number;
  /** Attention-logit softcap, 0 for none. */
  softcap: number;
  gelu: boolean;
  /** Operand precision of the linear layers' matmuls: `"f32"` (default) or the opt-in `"bf16"`. */
  matmulPrecision: MatmulPrecision;
}

/** The parameters of one decoder block. */
export interface DecoderBlock {
  readonly index: number;
  /** Sliding window (HF semantics), 0 for full causal attention. */
  readonly window: number;
  readonly inputNorm: Param;
  /** Gemma-2 only: norm applied to the attention output before the residual add. */
  readonly postAttnNorm: Param | null;
  /** Norm before the MLP (`post_attention_layernorm` in Qwen2/Llama, `pre_feedforward_layernorm` in Gemma-2). */
  readonly preMlpNorm: Param;
  /** Gemma-2 only: norm applied to the MLP output before the residual add. */
  readonly postMlpNorm: Param | null;
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;
}

/**
 * Where the rows of one forward sit: `batch` sequences of `tq` rows each, at per-row positions,
 * attending keys in a `[batch × tmax × kvHeads × headDim]` layout (the K/V projections themselves
 * when there is no cache, tmax = tq).
 */
export interface RowLayout {
  batch: number;
  tq: number;
  tmax: number;
  /** i32 [batch·tq]: absolute position of each row (RoPE). */
  positions: Tensor;
  /** i32 [batch]: absolute position of row 0 of each sequence. */
  qOffset: Tensor;
  /** i32 [batch]: number of valid keys per sequence. */
  kvLen: Tensor;
}

/** The K and V cache of one block. */
export interface BlockCache {
  k: Tensor;
  v: Tensor;
}

/** What the forward saved for the backward of one block. */
export interface BlockActivations {
  xIn: Tensor;
  rstdIn: Tensor;
  xnIn: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  attn: Tensor;
  lse: Tensor;
  /** Gemma-2: o_proj output (input of the post-attention norm) and that norm's rstd. */
  oOut: Tensor | null;
  rstdPostAttn: Tensor | null;
  xMid: Tensor;
  rstdMlp: Tensor;
  xnMlp: Tensor;
  gate: Tensor;
  up: Tensor;
  act: Tensor;
  /** Gemma-2: down_proj output and the post-feed-forward norm's rstd. */
  downOut: Tensor | null;
  rstdPostMlp: Tensor | null;
  /** LoRA intermediates `x·Aᵀ` per adapted linear layer. */
  lora: Map<Linear, Tensor>;
  /** bf16 packs of the linear layers' inputs (see `packLinearInput`), keyed by the input. */
  packed: Map<Tensor, PackedBf16>;
}

/** Every tensor a {@linkcode BlockActivations} owns, except `xIn` (the previous block's output). */
function ownedTensors(a: BlockActivations): Tensor[] {
  const list = [
    a.rstdIn,
    a.xnIn,
    a.q,
    a.k,
    a.v,
    a.attn,
    a.lse,
    a.oOut,
    a.rstdPostAttn,
    a.xMid,
    a.rstdMlp,
    a.xnMlp,
    a.gate,
    a.up,
    a.act,
    a.downOut,
    a.rstdPostMlp,
    ...a.lora.values(),
  ];
  return list.filter((t): t is Tensor => t !== null);
}

/** Returns the saved activations of a block to the pool. */
export function releaseActivations(pool: TensorPool, a: BlockActivations): void {
  for (const t of ownedTensors(a)) pool.release(t);
  for (const p of a.packed.values()) releasePacked(pool, p);
}

/**
 * Packs the input of one or more linear layers once (bf16 precision only; with its transpose when
 * `readers` will compute weight gradients in training) and keeps the pack with the activations,
 * for their forward products and weight gradients; with spare texels for their LoRA rank values.
 */
function packInput(
  rec: Recorder,
  d: BlockDims,
  packed: Map<Tensor, PackedBf16>,
  x: Tensor,
  rows: number,
  cols: number,
  readers: Linear[],
  training: boolean,
): void {
  const transposeToo = needsTranspose(training, readers);
  const p = packLinearInput(rec, x, rows, cols, d.matmulPrecision, transposeToo, loraPackTexels(...readers));
  if (p) packed.set(x, p);
}

/** Whether `readers` compute weight gradients, which read transposed packs (of their input and dy). */
function needsTranspose(training: boolean, readers: Linear[]): boolean {
  return training && readers.some((l) => l.weight.trainable);
}

function norm(rec: Recorder, d: BlockDims, w: Param, x: Tensor, y: Tensor, rstd: Tensor, rows: number): void {
  rmsnormForward(rec, x, whole(w.value), y, rstd, { rows, cols: d.hidden, eps: d.eps, offset: d.normOffset });
}

function normBackward(
  rec: Recorder,
  pool: TensorPool,
  d: BlockDims,
  w: Param,
  dy: Tensor,
  x: Tensor,
  rstd: Tensor,
  dx: Tensor,
  rows: number,
): void {
  const dw = w.trainable ? whole(ensureGrad(pool, w)) : null;
  rmsnormBackward(rec, dy, x, whole(w.value), rstd, dx, dw, { rows, cols: d.hidden, offset: d.normOffset });
}

function keep(lora: Map<Linear, Tensor>, lin: Linear, u: Tensor | null): void {
  if (u) lora.set(lin, u);
}

/**
 * Records the forward of `block` on `x` (`[rows × hidden]`) and returns the block output plus
 * the saved activations. With `cache`, the new keys and values are written into it first and the
 * attention reads the cache. `training`: {@linkcode blockBackward} will run on the activations,
 * so the bf16 packs of the inputs of layers with a trainable weight come with their transposes
 * (dW reads them), made from the same read of each input.
 */
export function blockForward(
  rec: Recorder,
  pool: TensorPool,
  d: BlockDims,
  block: DecoderBlock,
  x: Tensor,
  layout: RowLayout,
  cache: BlockCache | null,
  training = false,
): { out: Tensor; acts: BlockActivations } {
  const rows = layout.batch * layout.tq;
  const { hidden, heads, kvHeads, headDim, ff } = d;
  const t = (cols: number, name: string) => pool.tensor([rows, cols], "f32", `L${block.index}.${name}`);
  const lora = new Map<Linear, Tensor>();
  const packed = new Map<Tensor, PackedBf16>();
  const forward = (lin: Linear, input: Tensor, y: Tensor, accumulate = false) =>
    keep(
      lora,
      lin,
      linearForward(rec, pool, lin, input, y, rows, d.matmulPrecision, packed.get(input) ?? null, accumulate),
    );

  const rstdIn = t(1, "rstd_in");
  const xnIn = t(hidden, "xn_in");
  norm(rec, d, block.inputNorm, x, xnIn, rstdIn, rows);
  packInput(rec, d, packed, xnIn, rows, hidden, [block.q, block.k, block.v], training);
  const q = t(heads * headDim, "q");
  const k = t(kvHeads * headDim, "k");
  const v = t(kvHeads * headDim, "v");
  const raw = t(heads * headDim, "qk_raw");
  forward(block.q, xnIn, raw);
  ropeForward(rec, raw, q, layout.positions, {
    tokens: rows,
    heads,
    headDim,
    theta: d.ropeTheta,
    invFreq: d.invFreq,
  });
  forward(block.k, xnIn, raw);
  ropeForward(rec, raw, k, layout.positions, {
    tokens: rows,
    heads: kvHeads,
    headDim,
    theta: d.ropeTheta,
    invFreq: d.invFreq,
  });
  pool.release(raw);
  forward(block.v, xnIn, v);

  let keys = k;
  let values = v;
  if (cache) {
    const write = {
      batch: layout.batch,
      tq: layout.tq,
      tmax: layout.tmax,
      kvHeads,
      headDim,
      qOffset: layout.qOffset,
    };
    kvCacheWrite(rec, k, cache.k, write);
    kvCacheWrite(rec, v, cache.v, write);
    keys = cache.k;
    values = cache.v;
  }
  const attn = t(heads * headDim, "attn");
  const lse = pool.tensor([layout.batch, heads, layout.tq], "f32", `L${block.index}.lse`);
  attentionForward(rec, q, keys, values, attn, lse, attentionOptions(d, block, layout));

  packInput(rec, d, packed, attn, rows, heads * headDim, [block.o], training);
  const xMid = t(hidden, "x_mid");
  const attnOut = addBranch(rec, pool, d, block.o, block.postAttnNorm, attn, x, xMid, rows, forward);

  const rstdMlp = t(1, "rstd_mlp");
  const xnMlp = t(hidden, "xn_mlp");
  norm(rec, d, block.preMlpNorm, xMid, xnMlp, rstdMlp, rows);
  packInput(rec, d, packed, xnMlp, rows, hidden, [block.gate, block.up], training);
  const gate = t(ff, "gate");
  const up = t(ff, "up");
  const act = t(ff, "act");
  forward(block.gate, xnMlp, gate);
  forward(block.up, xnMlp, up);
  if (!needsTranspose(training, [block.down]) && linearInputPacks(rec, rows, ff, d.matmulPrecision)) {
    // The down layer reads act only packed along the rows: the GLU writes that pack itself.
    packed.set(
      act,
      (d.gelu ? gegluForwardPacked : swigluForwardPacked)(rec, gate, up, act, {
        rows,
        cols: ff,
        spareTexels: loraPackTexels(block.down),
      }),
    );
  } else {
    (d.gelu ? gegluForward : swigluForward)(rec, gate, up, act, { n: rows * ff });
    packInput(rec, d, packed, act, rows, ff, [block.down], training);
  }
  const out = t(hidden, "x_out");
  const mlpOut = addBranch(rec, pool, d, block.down, block.postMlpNorm, act, xMid, out, rows, forward);
  return {
    out,
    acts: {
      xIn: x,
      rstdIn,
      xnIn,
      q,
      k,
      v,
      attn,
      lse,
      oOut: attnOut.raw,
      rstdPostAttn: attnOut.rstd,
      xMid,
      rstdMlp,
      xnMlp,
      gate,
      up,
      act,
      downOut: mlpOut.raw,
      rstdPostMlp: mlpOut.rstd,
      lora,
      packed,
    },
  };
}

/**
 * Records `out = residual + postNorm(lin(x))`, or `out = residual + lin(x)` without a post norm
 * (the add then rides on the product: `out` starts as a copy of `residual`, ~20× cheaper than an
 * add pass); returns the linear output and norm rstd the backward needs (null without a post
 * norm).
 */
function addBranch(
  rec: Recorder,
  pool: TensorPool,
  d: BlockDims,
  lin: Linear,
  postNorm: Param | null,
  x: Tensor,
  residual: Tensor,
  out: Tensor,
  rows: number,
  forward: (lin: Linear, input: Tensor, y: Tensor, accumulate?: boolean) => void,
): { raw: Tensor | null; rstd: Tensor | null } {
  if (!postNorm) {
    rec.copy(residual, out);
    forward(lin, x, out, true);
    return { raw: null, rstd: null };
  }
  const raw = pool.tensor([rows, d.hidden], "f32", `${lin.weight.name}.out`);
  const rstd = pool.tensor([rows], "f32", `${postNorm.name}.rstd`);
  const branch = pool.tensor([rows, d.hidden], "f32", `${postNorm.name}.out`);
  forward(lin, x, raw);
  norm(rec, d, postNorm, raw, branch, rstd, rows);
  residualForward(rec, residual, branch, out);
  pool.release(branch);
  return { raw, rstd };
}

/**
 * Records the backward of a post norm (when there is one): returns ∂L/∂(linear output), a new
 * tensor to release, or `dBranch` itself without a post norm.
 */
function postNormBackward(
  rec: Recorder,
  pool: TensorPool,
  d: BlockDims,
  postNorm: Param | null,
  dBranch: Tensor,
  raw: Tensor | null,
  rstd: Tensor | null,
  rows: number,
): Tensor {
  if (!postNorm) return dBranch;
  const dRaw = pool.tensor([rows, d.hidden], "f32", `${postNorm.name}.d_in`);
  rec.clear(dRaw);
  normBackward(rec, pool, d, postNorm, dBranch, raw!, rstd!, dRaw, rows);
  return dRaw;
}

function attentionOptions(d: BlockDims, block: DecoderBlock, layout: RowLayout) {
  return {
    batch: layout.batch,
    tq: layout.tq,
    tmax: layout.tmax,
    heads: d.heads,
    kvHeads: d.kvHeads,
    headDim: d.headDim,
    scale: d.attentionScale,
    softcap: d.softcap,
    window: block.window,
    qOffset: layout.qOffset,
    kvLen: layout.kvLen,
  };
}

/**
 * Records the backward of one block (training layout: no cache). On entry `dRes` holds ∂L/∂(block
 * output); on exit it holds ∂L/∂(block input), unless `inputGrad` is false (nothing upstream
 * reads it: the first block under a frozen embedding), which skips the q/k/v input products and
 * the input norm's backward when that norm is frozen. Parameter gradients are accumulated.
 */
export function blockBackward(
  rec: Recorder,
  pool: TensorPool,
  d: BlockDims,
  block: DecoderBlock,
  a: BlockActivations,
  layout: RowLayout,
  dRes: Tensor,
  inputGrad = true,
): void {
  const rows = layout.batch * layout.tq;
  const { hidden, heads, kvHeads, headDim, ff } = d;
  const t = (cols: number, name: string) => pool.tensor([rows, cols], "f32", `L${block.index}.${name}`);
  // The first writer of each fresh gradient buffer overwrites it (saves a clear and a read of it).
  const backward = (
    lin: Linear,
    dy: Tensor,
    x: Tensor,
    dx: Tensor | null,
    overwriteDx: boolean,
    packedDy: PackedBf16 | null = null,
  ) =>
    linearBackward(rec, pool, lin, dy, x, a.lora.get(lin) ?? null, dx, rows, {
      overwriteDx,
      precision: d.matmulPrecision,
      packedX: a.packed.get(x) ?? null,
      packedDy,
    });

  // MLP half: dRes is ∂L/∂(branch) as well as ∂L/∂xMid (residual identity).
  const dDown = postNormBackward(
    rec,
    pool,
    d,
    block.postMlpNorm,
    dRes,
    a.downOut,
    a.rstdPostMlp,
    rows,
  );
  const dAct = t(ff, "d_act");
  backward(block.down, dDown, a.act, dAct, true);
  if (dDown !== dRes) pool.release(dDown);
  const dGate = t(ff, "d_gate");
  const dUp = t(ff, "d_up");
  // Frozen gate/up weights with a packed input (LoRA) read dGate and dUp only packed along the rows
  // in their base products: the GLU backward writes those packs itself. (Trainable ones read the
  // transposes too: packed both ways from one read, the faster path there.)
  const packs = a.packed.has(a.xnMlp) && !needsTranspose(true, [block.gate, block.up]) && ff % 4 === 0 &&
      packedFits(rec, rows, ff)
    ? (d.gelu ? gegluBackwardPacked : swigluBackwardPacked)(rec, dAct, a.gate, a.up, dGate, dUp, {
      rows,
      cols: ff,
      spareTexels: loraPackTexels(block.gate, block.up),
    })
    : null;
  if (!packs) {
    rec.clear(dGate);
    rec.clear(dUp);
    (d.gelu ? gegluBackward : swigluBackward)(rec, dAct, a.gate, a.up, dGate, dUp, { n: rows * ff });
  }
  pool.release(dAct);
  const dxn = t(hidden, "d_xn");
  backward(block.gate, dGate, a.xnMlp, dxn, true, packs?.dgate);
  backward(block.up, dUp, a.xnMlp, dxn, false, packs?.dup);
  if (packs) {
    releasePacked(rec, packs.dgate);
    releasePacked(rec, packs.dup);
  }
  pool.release(dGate);
  pool.release(dUp);
  normBackward(rec, pool, d, block.preMlpNorm, dxn, a.xMid, a.rstdMlp, dRes, rows);

  // Attention half: dRes is now ∂L/∂xMid.
  const dO = postNormBackward(
    rec,
    pool,
    d,
    block.postAttnNorm,
    dRes,
    a.oOut,
    a.rstdPostAttn,
    rows,
  );
  const dAttn = t(heads * headDim, "d_attn");
  backward(block.o, dO, a.attn, dAttn, true);
  if (dO !== dRes) pool.release(dO);
  const dq = t(heads * headDim, "d_q");
  const dk = t(kvHeads * headDim, "d_k");
  const dv = t(kvHeads * headDim, "d_v");
  rec.clear(dq);
  rec.clear(dk);
  rec.clear(dv);
  const delta = pool.tensor([layout.batch, heads, layout.tq], "f32", `L${block.index}.attn_delta`);
  attentionBackward(rec, dAttn, a.q, a.k, a.v, a.attn, a.lse, dq, dk, dv, {
    ...attentionOptions(d, block, layout),
    delta,
  });
  pool.release(delta);
  pool.release(dAttn);
  const dRaw = t(heads * headDim, "d_qk_raw");
  rec.clear(dRaw);
  ropeBackward(rec, dq, dRaw, layout.positions, {
    tokens: rows,
    heads,
    headDim,
    theta: d.ropeTheta,
    invFreq: d.invFreq,
  });
  // ∂L/∂xn feeds only the input norm's backward.
  const dInput = inputGrad || block.inputNorm.trainable ? dxn : null;
  backward(block.q, dRaw, a.xnIn, dInput, true);
  rec.clear(dRaw);
  ropeBackward(rec, dk, dRaw, layout.positions, {
    tokens: rows,
    heads: kvHeads,
    headDim,
    theta: d.ropeTheta,
  });
  backward(block.k, dRaw, a.xnIn, dInput, false);
  backward(block.v, dv, a.xnIn, dInput, false);
  for (const x of [dRaw, dq, dk, dv]) pool.release(x);
  if (dInput) normBackward(rec, pool, d, block.inputNorm, dxn, a.xIn, a.rstdIn, dRes, rows);
  pool.release(dxn);
}
