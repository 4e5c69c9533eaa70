/**
 * Vocab-chunked LM head with optional final logit soft-capping (Gemma-2) and sampling
 * temperature: full logits, per-token log-probabilities of targets (never more than one block of
 * logits alive), and their backward into the hidden states and the head.
 *
 * Logit of vocab row v for token t: `l = h_t·W_v`, `z = softcap·tanh(l/softcap)` when
 * `softcap > 0`, then `z / temperature`. `logprob_t = z_t[target_t] − logsumexp_v z_t[v]`, and
 * 0 for targets −1. The head is a `RowChunked` matrix `[V × hidden]` (HF layout); each chunk's
 * logits come from `matmul` (NT), one block of token rows at a time, so a logit block fits one
 * binding even for a 150k vocabulary. When all logits fit one block of one chunk (the reference
 * decoder's 1024 × 8192), the backward reuses the forward's logits instead of recomputing them
 * (one of its three T·d·V products), provided it is the next LM-head op recorded after that
 * forward, with the same tensors and options; otherwise it recomputes them.
 *
 * @example
 * ```ts
 * tokenLogProbs(rec, h, head, targets, logprob, lse, { tokens: 1024, hidden: 256, vocab: 8192, softcap: 0 });
 * // mean CE = −mean logprob: dLogprob_t = −1/count for counted tokens
 * tokenLogProbsBackward(rec, h, head, targets, lse, dLogprob, dh, dHead, { tokens: 1024, hidden: 256, vocab: 8192, softcap: 0 });
 * ```
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { RowChunked, Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";
import {
  allocatePacked,
  matmul,
  matmulPackedBf16,
  matrixView,
  packBf16,
  type PackedBf16,
  packedFits,
  releasePacked,
} from "./matmul.ts";
import { scratchBuffer } from "./scratch.ts";

const WG = 64;
/** Logits per invocation of the scalar gradient kernel; must equal `SPAN` in kernels/lm_head.wgsl. */
const GRAD_SPAN = 32;
/** Workgroup size of the vec4 kernels (`lm_head_stats_rows`, `lm_head_grad_quads`). */
const ROW_WG = 16;
/** Column quads per invocation of `lm_head_grad_quads`; must equal `QSPAN` in kernels/lm_head.wgsl. */
const GRAD_QSPAN = 4;
/** Default bound on one block of logits in scratch memory. */
const DEFAULT_BLOCK_BYTES = 64 * 2 ** 20;

/** Shape and logit transform of the LM head. */
export interface LmHeadOptions {
  tokens: number;
  hidden: number;
  vocab: number;
  /** Final logit soft-cap (Gemma-2: 30); 0 turns it off. */
  softcap: number;
  /**
   * Operand precision of the logit and gradient products (see `MatmulOptions.precision`):
   * `"f32"` (default) or the opt-in `"bf16"` (f32 accumulation; ~1.4× faster products here).
   */
  precision?: "f32" | "bf16";
  /**
   * bf16 packs of the head's chunks kept across calls (`src/model/weight_packs.ts`), read by the
   * bf16 products instead of packing the head at every call.
   */
  headPacks?: HeadPacks;
}

/** The bf16 packs of chunk `i` of the head: as stored (`[rows × hidden]`) and transposed. */
export interface HeadPacks {
  rows(i: number): PackedBf16;
  transposed(i: number): PackedBf16;
}

/**
 * Fewest token rows whose logits read a kept pack of the head: a single row takes the general
 * kernel's dot products, faster than a 32-row tile of the texture kernel.
 */
const KEPT_PACK_MIN_ROWS = 2;

/** Options of the log-prob ops. */
export interface TokenLogProbOptions extends LmHeadOptions {
  /** Sampling temperature the log-probs are taken at (default 1). */
  temperature?: number;
  /**
   * Upper bound on the bytes of one block of logits (default: 64 MiB or the binding limit if
   * smaller — the reference decoder's 1024 × 8192 fits in one block, a 150k vocabulary is done
   * in blocks of ~450 tokens). Smaller values bound memory and let tests exercise blocking.
   */
  blockBytes?: number;
}

function transformCpu(l: number, softcap: number, temperature: number): number {
  return (softcap > 0 ? Math.tanh(l / softcap) * softcap : l) / temperature;
}

/** CPU reference: raw logits `h·Wᵀ` (f64), `[T × V]`. */
function rawLogitsCpu(h: ArrayLike<number>, w: ArrayLike<number>, o: LmHeadOptions): Float64Array {
  const { tokens, hidden, vocab } = o;
  const out = new Float64Array(tokens * vocab);
  for (let t = 0; t < tokens; t++) {
    for (let v = 0; v < vocab; v++) {
      let s = 0;
      for (let c = 0; c < hidden; c++) s += h[t * hidden + c] * w[v * hidden + c];
      out[t * vocab + v] = s;
    }
  }
  return out;
}

/** CPU reference of {@linkcode lmHeadLogits}: capped logits `[T × V]` from `h [T × d]`, `W [V × d]`. */
export function lmHeadLogitsCpu(h: ArrayLike<number>, w: ArrayLike<number>, o: LmHeadOptions): Float64Array {
  return rawLogitsCpu(h, w, o).map((l) => transformCpu(l, o.softcap, 1));
}

/** CPU reference of {@linkcode tokenLogProbs}: `logprob [T]` (0 for target −1) and `lse [T]`. */
export function tokenLogProbsCpu(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  targets: ArrayLike<number>,
  o: TokenLogProbOptions,
): { logprob: Float64Array; lse: Float64Array } {
  const { tokens, vocab, softcap, temperature = 1 } = o;
  const raw = rawLogitsCpu(h, w, o);
  const logprob = new Float64Array(tokens), lse = new Float64Array(tokens);
  for (let t = 0; t < tokens; t++) {
    const z = Array.from(
      raw.subarray(t * vocab, (t + 1) * vocab),
      (l) => transformCpu(l, softcap, temperature),
    );
    const max = Math.max(...z);
    lse[t] = max + Math.log(z.reduce((a, x) => a + Math.exp(x - max), 0));
    logprob[t] = targets[t] < 0 ? 0 : z[targets[t]] - lse[t];
  }
  return { logprob, lse };
}

/**
 * CPU reference of {@linkcode tokenLogProbsBackward}: gradients of `Σ_t dLogprob_t·logprob_t`
 * w.r.t. `h [T × d]` and `W [V × d]` (not accumulated).
 */
export function tokenLogProbsBackwardCpu(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  targets: ArrayLike<number>,
  dLogprob: ArrayLike<number>,
  o: TokenLogProbOptions,
): { dh: Float64Array; dHead: Float64Array } {
  const { tokens, hidden, vocab, softcap, temperature = 1 } = o;
  const raw = rawLogitsCpu(h, w, o);
  const { lse } = tokenLogProbsCpu(h, w, targets, o);
  const dh = new Float64Array(tokens * hidden), dHead = new Float64Array(vocab * hidden);
  for (let t = 0; t < tokens; t++) {
    if (targets[t] < 0) continue;
    for (let v = 0; v < vocab; v++) {
      const l = raw[t * vocab + v];
      const prob = Math.exp(transformCpu(l, softcap, temperature) - lse[t]);
      const tanh = softcap > 0 ? Math.tanh(l / softcap) : 0;
      const dl = dLogprob[t] * ((v === targets[t] ? 1 : 0) - prob) * (1 - tanh * tanh) / temperature;
      for (let c = 0; c < hidden; c++) {
        dh[t * hidden + c] += dl * w[v * hidden + c];
        dHead[v * hidden + c] += dl * h[t * hidden + c];
      }
    }
  }
  return { dh, dHead };
}

/**
 * What the scratch logits block holds after {@linkcode tokenLogProbs} covered every logit in one
 * block: the raw logits of these inputs. Any other LM-head op overwrites or consumes the block.
 */
interface RetainedLogits {
  block: GPUBuffer;
  inputs: GPUBuffer[];
  options: string;
}

const retained = new WeakMap<GPUDevice, RetainedLogits>();

function retentionKey(
  block: GPUBuffer,
  h: Tensor,
  head: RowChunked,
  targets: Tensor,
  lse: Tensor,
  o: TokenLogProbOptions,
): RetainedLogits {
  const { tokens, hidden, vocab, softcap, temperature = 1, precision = "f32" } = o;
  return {
    block,
    inputs: [h.buffer, targets.buffer, lse.buffer, ...head.chunks.map((c) => c.tensor.buffer)],
    options: JSON.stringify([tokens, hidden, vocab, softcap, temperature, precision]),
  };
}

function sameRetention(a: RetainedLogits | undefined, b: RetainedLogits): boolean {
  return !!a && a.block === b.block && a.options === b.options && a.inputs.length === b.inputs.length &&
    a.inputs.every((buffer, i) => buffer === b.inputs[i]);
}

/** A `[rows × cols]` f32 tensor over an op-owned scratch buffer. */
function scratchTensor(rec: Recorder, purpose: string, rows: number, cols: number): Tensor {
  const buffer = scratchBuffer(rec, purpose, Math.max(4, rows * cols * 4));
  return { buffer, shape: [rows, cols], dtype: "f32", size: rows * cols, name: purpose };
}

/** Token rows per block so that one block of one chunk's logits fits `blockBytes`. */
function tokenBlock(rec: Recorder, head: RowChunked, o: LmHeadOptions & { blockBytes?: number }): number {
  const limit = o.blockBytes ??
    Math.min(DEFAULT_BLOCK_BYTES, rec.gpu.device.limits.maxStorageBufferBindingSize);
  const widest = Math.max(...head.chunks.map((c) => c.rows));
  const rows = Math.floor(limit / (4 * widest));
  if (rows < 1) throw new RangeError(`LM head chunk of ${widest} rows does not fit ${limit} bytes of logits`);
  // The gradient kernel's grid has one row of workgroups per token (at most 65535).
  return Math.min(o.tokens, rows, 65535);
}

function checkHead(head: RowChunked, o: LmHeadOptions): void {
  if (head.rows !== o.vocab || head.cols !== o.hidden) {
    throw new RangeError(
      `LM head is ${head.rows}×${head.cols}, expected vocab ${o.vocab} × hidden ${o.hidden}`,
    );
  }
}

interface Block {
  /** First token row and number of rows. */
  row0: number;
  rows: number;
  /** The block's hidden rows (`h` itself when one block covers all tokens). */
  h: Tensor;
}

/** Runs `body` per block of token rows, staging `h` rows into scratch when blocking is needed. */
function forEachBlock(
  rec: Recorder,
  h: Tensor,
  rowsPerBlock: number,
  o: LmHeadOptions,
  body: (b: Block) => void,
) {
  for (let row0 = 0; row0 < o.tokens; row0 += rowsPerBlock) {
    const rows = Math.min(rowsPerBlock, o.tokens - row0);
    if (rows === o.tokens) {
      body({ row0, rows, h });
      continue;
    }
    const hBlock = scratchTensor(rec, "lm_head.h", rows, o.hidden);
    rec.copy(h, hBlock, rows * o.hidden * 4, row0 * o.hidden * 4, 0);
    body({ row0, rows, h: hBlock });
  }
}

/**
 * The scratch block of the raw logits `h·Wᵀ` of chunk `i`, recording their product when
 * `compute` (from the kept pack of the chunk when these rows read one).
 */
function chunkLogits(
  rec: Recorder,
  block: Block,
  head: RowChunked,
  i: number,
  o: LmHeadOptions,
  compute: boolean,
): Tensor {
  const n = head.chunks[i].rows, k = o.hidden;
  const raw = scratchTensor(rec, "lm_head.logits", block.rows, n);
  if (!compute) return raw;
  const kept = o.precision === "bf16" && block.rows >= KEPT_PACK_MIN_ROWS && n % 4 === 0 &&
      packedFits(rec, block.rows, k) && packedFits(rec, n, k)
    ? o.headPacks?.rows(i)
    : undefined;
  if (kept) {
    const hP = packBf16(rec, matrixView(block.h, block.rows, k));
    matmulPackedBf16(rec, hP, kept, raw);
    releasePacked(rec, hP);
  } else {
    matmul(rec, block.h, head.chunks[i].tensor, raw, {
      m: block.rows,
      n,
      k,
      transB: true,
      precision: o.precision,
    });
  }
  return raw;
}

/** An LM-head kernel compiled for `o`'s soft-capping (a pipeline constant: no tanh when it is off). */
function lmHeadKernel(
  rec: Recorder,
  entry: string,
  o: LmHeadOptions,
  constants: Record<string, number> = {},
) {
  return rec.kernel("lm_head", entry, { ...constants, SOFTCAP: o.softcap > 0 ? 1 : 0 });
}

function chunkParams(
  o: LmHeadOptions,
  block: Block,
  chunk: { start: number; rows: number },
  flags: { first: boolean; last: boolean; gridStride: number; temperature: number; writeT?: boolean },
): ArrayBuffer {
  return params([
    ["u32", block.rows],
    ["u32", chunk.rows],
    ["u32", chunk.start],
    ["u32", o.vocab],
    ["u32", block.row0],
    ["u32", flags.first ? 1 : 0],
    ["u32", flags.last ? 1 : 0],
    ["u32", flags.gridStride],
    ["f32", o.softcap],
    ["f32", 1 / flags.temperature],
    ["u32", flags.writeT ? 1 : 0],
  ]);
}

/** Records the full capped logits `[T × V]` (for sampling): `softcap·tanh(h·Wᵀ/softcap)`. */
export function lmHeadLogits(
  rec: Recorder,
  h: Tensor,
  head: RowChunked,
  logits: Tensor,
  o: LmHeadOptions & { blockBytes?: number },
): void {
  checkHead(head, o);
  retained.delete(rec.gpu.device);
  forEachBlock(rec, h, tokenBlock(rec, head, o), o, (block) => {
    head.chunks.forEach((chunk, i) => {
      const raw = chunkLogits(rec, block, head, i, o, true);
      const { groups, rowStride } = elementGrid(block.rows * chunk.rows, WG);
      rec.dispatch(
        lmHeadKernel(rec, "lm_head_place", o, { WG }),
        [raw, logits],
        groups,
        chunkParams(o, block, chunk, { first: false, last: false, gridStride: rowStride, temperature: 1 }),
      );
    });
  });
}

/** Records `logprob [T]` of `targets` (i32, −1 = ignore → 0) and `lse [T]` of the transformed logits. */
export function tokenLogProbs(
  rec: Recorder,
  h: Tensor,
  head: RowChunked,
  targets: Tensor,
  logprob: Tensor,
  lse: Tensor,
  o: TokenLogProbOptions,
): void {
  checkHead(head, o);
  retained.delete(rec.gpu.device);
  const stats = scratchTensor(rec, "lm_head.stats", o.tokens, 3);
  const rowsPerBlock = tokenBlock(rec, head, o);
  forEachBlock(rec, h, rowsPerBlock, o, (block) => {
    const { groups, rowStride } = elementGrid(block.rows, 1);
    head.chunks.forEach((chunk, i) => {
      const raw = chunkLogits(rec, block, head, i, o, true);
      // Rows of whole vec4s take the one-lane-per-row kernel (~3× less core time).
      const quads = chunk.rows % 4 === 0;
      rec.dispatch(
        lmHeadKernel(rec, quads ? "lm_head_stats_rows" : "lm_head_stats", o),
        [raw, targets, stats, logprob, lse],
        quads ? [Math.ceil(block.rows / ROW_WG)] : groups,
        chunkParams(o, block, chunk, {
          first: i === 0,
          last: i === head.chunks.length - 1,
          gridStride: rowStride,
          temperature: o.temperature ?? 1,
        }),
      );
      if (rowsPerBlock === o.tokens && head.chunks.length === 1) {
        retained.set(rec.gpu.device, retentionKey(raw.buffer, h, head, targets, lse, o));
      }
    });
  });
}

/**
 * Records the backward of `Σ_t dLogprob_t·logprob_t`: `dh += ∂/∂h`, and `dHead += ∂/∂W` unless
 * `dHead` is null (frozen head). `lse` comes from {@linkcode tokenLogProbs} with the same
 * options; that call's logits are reused when it was the last LM-head op and they fit one block
 * (see the module doc), else each chunk's logits are recomputed.
 */
export function tokenLogProbsBackward(
  rec: Recorder,
  h: Tensor,
  head: RowChunked,
  targets: Tensor,
  lse: Tensor,
  dLogprob: Tensor,
  dh: Tensor,
  dHead: RowChunked | null,
  o: TokenLogProbOptions,
): void {
  checkHead(head, o);
  const device = rec.gpu.device;
  const rowsPerBlock = tokenBlock(rec, head, o);
  const reuse = rowsPerBlock === o.tokens && head.chunks.length === 1 && sameRetention(
    retained.get(device),
    retentionKey(scratchTensor(rec, "lm_head.logits", o.tokens, o.vocab).buffer, h, head, targets, lse, o),
  );
  // The gradient pass overwrites the block in place.
  retained.delete(device);
  forEachBlock(rec, h, rowsPerBlock, o, (block) => {
    const whole = block.rows === o.tokens;
    const dhBlock = whole ? dh : scratchTensor(rec, "lm_head.dh", block.rows, o.hidden);
    if (!whole) rec.copy(dh, dhBlock, block.rows * o.hidden * 4, block.row0 * o.hidden * 4, 0);
    head.chunks.forEach((chunk, i) => {
      const dl = chunkLogits(rec, block, head, i, o, !reuse);
      const { m, n, k, precision } = { m: block.rows, n: chunk.rows, k: o.hidden, precision: o.precision };
      const flags = {
        first: false,
        last: false,
        gridStride: 0,
        temperature: o.temperature ?? 1,
        writeT: false,
      };
      // bf16 with whole vec4 rows and both packs of dl within the texture limits: the gradient
      // kernel writes dl packed along the vocab (for dh) and along the tokens (for dHead), and no
      // f32 dl.
      if (
        precision === "bf16" && n % 4 === 0 && k % 4 === 0 && packedFits(rec, m, n) && packedFits(rec, n, m)
      ) {
        const dlP = allocatePacked(rec, m, n, "lm_head.dl");
        // A frozen head needs no dlᵀ: a one-texel pack is bound and never written.
        const dlT = dHead
          ? allocatePacked(rec, n, m, "lm_head.dl_t")
          : allocatePacked(rec, 1, 1, "lm_head.no_dl_t");
        rec.dispatch(
          lmHeadKernel(rec, "lm_head_grad_bf16", o),
          [targets, lse, dLogprob, dl, dlP.texture.createView(), dlT.texture.createView()],
          [Math.ceil(Math.ceil(n / 8) / ROW_WG), Math.ceil(m / 8)],
          chunkParams(o, block, chunk, { ...flags, writeT: dHead !== null }),
        );
        const kept = o.headPacks?.transposed(i);
        const wT = kept ?? packBf16(rec, matrixView(chunk.tensor, k, n, true));
        matmulPackedBf16(rec, dlP, wT, dhBlock, { accumulate: true });
        if (!kept) releasePacked(rec, wT);
        if (dHead) {
          const hT = packBf16(rec, matrixView(block.h, k, m, true));
          matmulPackedBf16(rec, dlT, hT, dHead.chunks[i].tensor, { accumulate: true });
          releasePacked(rec, hT);
        }
        releasePacked(rec, dlP);
        releasePacked(rec, dlT);
        return;
      }
      // Whole vec4 rows take the 4×4-block kernel, which can also write dlᵀ for the dHead product
      // (saves matmul's transposing pack of the block).
      const quads = n % 4 === 0;
      const dlT = quads && dHead !== null && m % 4 === 0
        ? scratchTensor(rec, "lm_head.logits_t", n, m)
        : null;
      if (quads) {
        rec.dispatch(
          lmHeadKernel(rec, "lm_head_grad_quads", o),
          [targets, lse, dLogprob, dl, dlT ?? scratchTensor(rec, "lm_head.no_logits_t", 1, 4)],
          [Math.ceil(n / 4 / (ROW_WG * GRAD_QSPAN)), Math.ceil(m / 4)],
          chunkParams(o, block, chunk, { ...flags, writeT: !!dlT }),
        );
      } else {
        rec.dispatch(
          lmHeadKernel(rec, "lm_head_grad", o, { WG }),
          [targets, lse, dLogprob, dl],
          [Math.ceil(n / (WG * GRAD_SPAN)), m],
          chunkParams(o, block, chunk, flags),
        );
      }
      matmul(rec, dl, chunk.tensor, dhBlock, { m, n: k, k: n, accumulate: true, precision });
      if (dHead) {
        const product = { m: n, n: k, k: m, accumulate: true, precision };
        const dChunk = dHead.chunks[i].tensor;
        if (dlT) matmul(rec, dlT, block.h, dChunk, product);
        else matmul(rec, dl, block.h, dChunk, { ...product, transA: true });
      }
    });
    if (!whole) rec.copy(dhBlock, dh, block.rows * o.hidden * 4, 0, block.row0 * o.hidden * 4);
  });
}
