/**
 * Causal self-attention (GQA, HF sliding window, Gemma-2 logit soft-capping) over a KV-cache
 * layout, plus the KV-cache write used in decoding. Many query rows (training, prefill) go through
 * score matrices materialised in scratch per chunk of query rows, so that every kernel is a small
 * register tile that llvmpipe compiles in a fraction of a second; a few rows (decoding) take a
 * scores / softmax / P·V path. The backward recomputes the probabilities from `lse`.
 *
 * Layouts: q, out `[B·Tq × H × D]`; k, v `[B × Tmax × KVH × D]`; lse `[B × H × Tq]`;
 * qOffset, kvLen `i32 [B]`. A query at absolute position `pos = qOffset[b] + i` sees key `j`
 * when `j ≤ pos`, `j < kvLen[b]` and, with `window > 0`, `j > pos − window`. Scores are
 * `scale·q·k`, then `softcap·tanh(s/softcap)` when `softcap > 0`, then masking and softmax.
 * Training uses `tq = tmax = T`, `qOffset = 0`, `kvLen = T`.
 *
 * @example
 * ```ts
 * const rec = engine.recorder();
 * attentionForward(rec, q, k, v, out, lse, {
 *   batch: 4, tq: 256, tmax: 256, heads: 4, kvHeads: 4, headDim: 64,
 *   scale: 1 / 8, softcap: 0, window: 0, qOffset, kvLen,
 * });
 * await rec.submit();
 * ```
 *
 * @module
 */
import type { Engine } from "../gpu/engine.ts";
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";
import { scratchBuffer } from "./scratch.ts";

/**
 * Workgroup x size: one 8-lane SIMD group on llvmpipe, so a row tile covers 64 query rows (keys):
 * less causal waste than 128, which measured ~16 % slower at T 256.
 */
const WG = 8;
/** Query rows (keys) per invocation of the tiled kernels; must match kernels/attention.wgsl. */
const ROWS_PER_LANE = 8;
/** vec4 slices of the head dimension per invocation of the product kernels. */
const D_SLICES = 4;
/** Upper bound of one score scratch texture; longer problems run in chunks of query rows. */
const SCRATCH_BYTES = 64 * 2 ** 20;

/** Sizes and score options shared by the CPU reference and the launchers. */
export interface AttentionShape {
  batch: number;
  /** Query rows per sequence in this call (T in training, 1 or a few in decoding). */
  tq: number;
  /** Rows of the K/V layout per sequence (the cache capacity; T in training). */
  tmax: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Score scale: 1/√headDim, or Gemma's query_pre_attn_scalar^-½. */
  scale: number;
  /** Logit soft-cap (Gemma-2: 50); 0 turns it off. */
  softcap: number;
  /** Sliding window in tokens (HF semantics); 0 turns it off. */
  window: number;
}

/** Launcher options: the shape plus per-sequence positions on the GPU. */
export interface AttentionOptions extends AttentionShape {
  /** i32 [B]: absolute position of query row 0 of each sequence. */
  qOffset: Tensor;
  /** i32 [B]: number of valid keys of each sequence. */
  kvLen: Tensor;
}

/** Backward options: `delta` is scratch `[B × H × Tq]` (Σ dout·out per row) the caller provides. */
export interface AttentionBackwardOptions extends AttentionOptions {
  delta: Tensor;
}

/** CPU-reference options: positions as plain arrays. */
export interface AttentionCpuOptions extends AttentionShape {
  qOffset: ArrayLike<number>;
  kvLen: ArrayLike<number>;
}

/** Options of {@linkcode kvCacheWrite}. */
export interface KvCacheWriteOptions {
  batch: number;
  tq: number;
  tmax: number;
  kvHeads: number;
  headDim: number;
  /** i32 [B]: cache row of new row 0 per sequence. */
  qOffset: Tensor;
}

/** True when key `j` is visible from absolute position `pos`. */
function visible(pos: number, j: number, len: number, window: number): boolean {
  return j <= pos && j < len && (window === 0 || j > pos - window);
}

/** One query row's visible keys with scores and probabilities (f64). */
function rowProbabilities(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  o: AttentionCpuOptions,
  b: number,
  i: number,
  h: number,
): { keys: number[]; scores: number[]; probs: number[]; lse: number } {
  const { tq, tmax, heads, kvHeads, headDim: d, scale, softcap, window } = o;
  const kvh = Math.floor(h / (heads / kvHeads));
  const pos = o.qOffset[b] + i;
  const qBase = ((b * tq + i) * heads + h) * d;
  const keys: number[] = [], scores: number[] = [];
  for (let j = 0; j < tmax; j++) {
    if (!visible(pos, j, o.kvLen[b], window)) continue;
    const kBase = ((b * tmax + j) * kvHeads + kvh) * d;
    let dot = 0;
    for (let c = 0; c < d; c++) dot += q[qBase + c] * k[kBase + c];
    const s = dot * scale;
    keys.push(j);
    scores.push(softcap > 0 ? Math.tanh(s / softcap) * softcap : s);
  }
  const max = Math.max(...scores);
  const exps = scores.map((s) => Math.exp(s - max));
  const sum = exps.reduce((a, x) => a + x, 0);
  return { keys, scores, probs: exps.map((e) => e / sum), lse: max + Math.log(sum) };
}

/**
 * CPU reference forward (f64): `out [B·Tq × H·D]` and `lse [B × H × Tq]`. A row that sees no
 * key gets zeros and lse −Infinity.
 */
export function attentionForwardCpu(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  o: AttentionCpuOptions,
): { out: Float64Array; lse: Float64Array } {
  const { batch, tq, tmax, heads, kvHeads, headDim: d } = o;
  const out = new Float64Array(batch * tq * heads * d);
  const lse = new Float64Array(batch * heads * tq);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / (heads / kvHeads));
      for (let i = 0; i < tq; i++) {
        const row = rowProbabilities(q, k, o, b, i, h);
        lse[(b * heads + h) * tq + i] = row.lse;
        const oBase = ((b * tq + i) * heads + h) * d;
        row.keys.forEach((j, n) => {
          const vBase = ((b * tmax + j) * kvHeads + kvh) * d;
          for (let c = 0; c < d; c++) out[oBase + c] += row.probs[n] * v[vBase + c];
        });
      }
    }
  }
  return { out, lse };
}

/** CPU reference backward (f64): gradients of `Σ dout·out` w.r.t. q, k and v (not accumulated). */
export function attentionBackwardCpu(
  dout: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  o: AttentionCpuOptions,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { batch, tq, tmax, heads, kvHeads, headDim: d, scale, softcap } = o;
  const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / (heads / kvHeads));
      for (let i = 0; i < tq; i++) {
        const row = rowProbabilities(q, k, o, b, i, h);
        const qBase = ((b * tq + i) * heads + h) * d;
        const kvBase = row.keys.map((j) => ((b * tmax + j) * kvHeads + kvh) * d);
        const dp = kvBase.map((base) => {
          let s = 0;
          for (let c = 0; c < d; c++) s += dout[qBase + c] * v[base + c];
          return s;
        });
        const delta = row.probs.reduce((a, p, n) => a + p * dp[n], 0);
        row.keys.forEach((_, n) => {
          const t = softcap > 0 ? row.scores[n] / softcap : 0;
          const dRaw = row.probs[n] * (dp[n] - delta) * scale * (1 - t * t);
          const base = kvBase[n];
          for (let c = 0; c < d; c++) {
            dq[qBase + c] += dRaw * k[base + c];
            dk[base + c] += dRaw * q[qBase + c];
            dv[base + c] += row.probs[n] * dout[qBase + c];
          }
        });
      }
    }
  }
  return { dq, dk, dv };
}

function checkShape(o: AttentionShape): void {
  if (o.headDim % 4 !== 0) {
    throw new RangeError(`Attention headDim ${o.headDim} must be a multiple of 4`);
  }
  if (o.heads % o.kvHeads !== 0) {
    throw new RangeError(`Attention kvHeads ${o.kvHeads} must divide heads ${o.heads}`);
  }
}

/** Launch parameters past the shape (see `Params` in kernels/attention.wgsl). */
interface LaunchExtras {
  gridStride?: number;
  /** First column (float) of the scratch matrix a product kernel reads. */
  col?: number;
  /** Rows per (sequence, head) and first query row of the S texture attention_backward_ds reads. */
  scoreRows?: number;
  scoreRow0?: number;
  /** Row packing of the q / dout and of the K / V row textures. */
  rowShift?: number;
  kvShift?: number;
  /** Query rows [row0, row0 + rows) of this chunk (defaults: all). */
  row0?: number;
  rows?: number;
  /** attention_rows_times_kv computes the forward (softmax(S)·V and lse). */
  forward?: boolean;
}

function attentionParams(
  o: AttentionShape,
  {
    gridStride = 0,
    col = 0,
    scoreRows = 0,
    scoreRow0 = 0,
    rowShift = 0,
    kvShift = 0,
    row0 = 0,
    rows = o.tq,
    forward = false,
  }: LaunchExtras = {},
): ArrayBuffer {
  return params([
    ["u32", o.batch],
    ["u32", o.tq],
    ["u32", o.tmax],
    ["u32", o.heads],
    ["u32", o.kvHeads],
    ["u32", o.headDim],
    ["f32", o.scale],
    ["f32", o.softcap],
    ["u32", o.window],
    ["u32", gridStride],
    ["u32", col],
    ["u32", scoreRows],
    ["u32", scoreRow0],
    ["u32", rowShift],
    ["u32", kvShift],
    ["u32", row0],
    ["u32", rows],
    // Params.four: a loop bound of 4 the shader compiler cannot see.
    ["u32", 4],
    ["u32", forward ? 1 : 0],
  ]);
}

/**
 * Pipeline constants: workgroup size, head_dim in vec4, and soft-capping (a constant so that the
 * kernels carry no uniform branch around it).
 */
function kernelConstants(o: AttentionShape): Record<string, number> {
  return { WG, HD4: o.headDim / 4, SOFTCAP: o.softcap > 0 ? 1 : 0 };
}

/** Workgroups along x for `n` rows (keys) of the tiled kernels. */
function blocks(n: number): number {
  return Math.ceil(n / (WG * ROWS_PER_LANE));
}

/** Chunks of `n` vec4 slices of the head dimension per product-kernel invocation. */
function dChunks(o: AttentionShape): number {
  return Math.ceil(o.headDim / 4 / D_SLICES);
}

/**
 * Query-row chunks `[row0, row0 + rows)` whose score scratch (`matrices` score matrices side by
 * side, each tmax rounded up to 4 wide, one texture row per sequence, head and query row) fits
 * one texture and {@linkcode SCRATCH_BYTES}; `maxRows` forces smaller chunks (tests). The scratch
 * of one chunk is written and read before the next chunk's commands run.
 */
function rowChunks(
  rec: Recorder,
  o: AttentionShape,
  matrices: number,
  maxRows = Infinity,
): { width: number; chunks: [number, number][]; rowsPerChunk: number } {
  const width = Math.ceil(o.tmax / 4) * 4;
  const pitch = width * matrices;
  const limit = rec.gpu.device.limits.maxTextureDimension2D;
  const sequences = o.batch * o.heads;
  const perChunk = Math.min(
    maxRows,
    o.tq,
    Math.floor(limit / sequences),
    Math.floor(SCRATCH_BYTES / (sequences * pitch * 4)),
  );
  if (perChunk < 1 || pitch / 4 + 1 > limit) {
    throw new RangeError(
      `Attention scratch of ${sequences} rows × ${pitch / 4} texels exceeds the ${limit}-texel texture limit`,
    );
  }
  const chunks: [number, number][] = [];
  for (let row0 = 0; row0 < o.tq; row0 += perChunk) chunks.push([row0, Math.min(perChunk, o.tq - row0)]);
  return { width, chunks, rowsPerChunk: perChunk };
}

/** Query rows per chunk of the `chunked` paths (not a multiple of the row tile, on purpose). */
const FORCED_CHUNK_ROWS = 5;

/**
 * Which kernels compute a forward: `auto` picks by shape, the others force one (tests, bench);
 * `chunked` is `tiled` with a few query rows per chunk (as very long sequences would run).
 */
export type AttentionPath = "auto" | "tiled" | "decode" | "chunked";

/**
 * Below this many query rows per sequence the row-tiled kernels (128 rows per workgroup) would sit
 * mostly idle, so `auto` takes the decoding path (scores, softmax, P·V through scratch).
 */
const DECODE_MAX_TQ = 16;

/** Records the forward: writes `out [B·Tq × H·D]` and `lse [B × H × Tq]`. */
export function attentionForward(
  rec: Recorder,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  o: AttentionOptions,
): void {
  attentionForwardVia("auto", rec, q, k, v, out, lse, o);
}

/** {@linkcode attentionForward} through a chosen kernel path. */
export function attentionForwardVia(
  path: AttentionPath,
  rec: Recorder,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  o: AttentionOptions,
): void {
  checkShape(o);
  const constants = kernelConstants(o);
  const scoreBytes = o.batch * o.heads * o.tq * o.tmax * 4;
  const decode = path === "decode" ||
    (path === "auto" && o.tq < DECODE_MAX_TQ &&
      scoreBytes <= rec.gpu.device.limits.maxStorageBufferBindingSize);
  if (!decode) {
    const qt = rowTexture(rec, q, o, "q"), kv = kvTextures(rec, k, v, o);
    const { width, chunks, rowsPerChunk } = rowChunks(
      rec,
      o,
      1,
      path === "chunked" ? FORCED_CHUNK_ROWS : Infinity,
    );
    const size = scoresSize(o, width, rowsPerChunk);
    const scores = (chunks.length === 1 ? keepScores(rec, o, q, k, lse, size) : undefined) ??
      cachedTexture(rec, "scores", size.width, size.height);
    if (chunks.length > 1) forgetScores(rec, lse);
    for (const [row0, rows] of chunks) {
      const extras = { row0, rows, rowShift: qt.shift, kvShift: kv.shift };
      recordScores(rec, o, qt, kv, scores, extras);
      rec.dispatch(
        rec.kernel("attention", "attention_rows_times_kv", constants),
        [kv.v, scores.createView(), o.qOffset, o.kvLen, lse, out],
        [blocks(rows) * dChunks(o), o.heads, o.batch],
        attentionParams(o, { ...extras, forward: true }),
      );
    }
    return;
  }
  forgetScores(rec, lse);
  const rows = o.batch * o.heads * o.tq;
  // The decoding kernels take the query heads of a KV group 4 at a time.
  const headChunks = o.kvHeads * Math.ceil(o.heads / o.kvHeads / 4);
  const scores = {
    buffer: scratchBuffer(rec, "attention.scores", Math.max(4, scoreBytes)),
    size: scoreBytes,
  };
  rec.dispatch(
    rec.kernel("attention", "attention_decode_scores", constants),
    [q, k, o.qOffset, o.kvLen, scores],
    [Math.ceil(o.tmax / (WG * 4)), headChunks, o.batch * o.tq],
    attentionParams(o),
  );
  const { groups, rowStride } = elementGrid(rows, 1);
  rec.dispatch(
    rec.kernel("attention", "attention_decode_softmax", constants),
    [scores, lse],
    groups,
    attentionParams(o, { gridStride: rowStride }),
  );
  rec.dispatch(
    rec.kernel("attention", "attention_decode_pv", constants),
    [scores, v, o.qOffset, o.kvLen, out],
    [Math.ceil(o.headDim / 4 / WG), headChunks, o.batch * o.tq],
    attentionParams(o),
  );
}

/**
 * Which kernels compute a backward: `chunked` forces a few query rows per chunk, `recompute` also
 * recomputes S instead of reading the one the forward kept (tests).
 */
export type AttentionBackwardPath = "auto" | "chunked" | "recompute";

/**
 * Records the backward: `dq += ∂L/∂q`, `dk += ∂L/∂k`, `dv += ∂L/∂v` from `dout`, recomputing the
 * probabilities from `lse`. Deterministic: every gradient element is summed by one invocation.
 */
export function attentionBackward(
  rec: Recorder,
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  o: AttentionBackwardOptions,
): void {
  attentionBackwardVia("auto", rec, dout, q, k, v, out, lse, dq, dk, dv, o);
}

/**
 * {@linkcode attentionBackward} through a chosen path: a delta pass (Σ dout·out per row), then per
 * chunk of query rows one kernel that recomputes S and dP and stores P and dS in scratch
 * `[B × H × rows × (P | dS)]`, then dq += dS·K, dk += dSᵀ·Q and dv += Pᵀ·dout.
 */
export function attentionBackwardVia(
  path: AttentionBackwardPath,
  rec: Recorder,
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dq: Tensor,
  dk: Tensor,
  dv: Tensor,
  o: AttentionBackwardOptions,
): void {
  checkShape(o);
  const constants = kernelConstants(o);
  const qt = rowTexture(rec, q, o, "q"), doutT = rowTexture(rec, dout, o, "dout");
  const kv = kvTextures(rec, k, v, o);
  rec.dispatch(
    rec.kernel("attention", "attention_backward_delta", constants),
    [dout, out, o.delta],
    [Math.ceil(o.batch * o.tq / WG), o.heads],
    attentionParams(o),
  );
  const { width, chunks, rowsPerChunk } = rowChunks(
    rec,
    o,
    2,
    path === "auto" ? Infinity : FORCED_CHUNK_ROWS,
  );
  const grads = cachedTexture(rec, "grads", width / 2, o.batch * o.heads * rowsPerChunk);
  const kept = path === "recompute" ? undefined : keptScores(rec, o, q, k, lse);
  const keyGrads = rec.kernel("attention", "attention_key_grads", constants);
  for (const [row0, rows] of chunks) {
    const extras = { row0, rows, rowShift: qt.shift, kvShift: kv.shift };
    let scores = kept, scoreRows = o.tq, scoreRow0 = 0;
    if (!scores) {
      const size = scoresSize(o, width, rowsPerChunk);
      scores = cachedTexture(rec, "scores", size.width, size.height);
      recordScores(rec, o, qt, kv, scores, extras);
      [scoreRows, scoreRow0] = [rows, row0];
    }
    rec.dispatch(
      rec.kernel("attention", "attention_backward_ds", constants),
      [doutT.view, kv.v, o.qOffset, o.kvLen, grads.createView(), scores.createView(), lse, o.delta],
      [blocks(rows), o.heads, o.batch],
      attentionParams(o, { ...extras, scoreRows, scoreRow0 }),
    );
    rec.dispatch(
      rec.kernel("attention", "attention_rows_times_kv", constants),
      [kv.k, grads.createView(), o.qOffset, o.kvLen, lse, dq],
      [blocks(rows) * dChunks(o), o.heads, o.batch],
      attentionParams(o, { ...extras, col: width }),
    );
    rec.dispatch(
      keyGrads,
      [qt.view, grads.createView(), o.qOffset, o.kvLen, dk, doutT.view, dv],
      [blocks(o.tmax) * dChunks(o), o.kvHeads, o.batch],
      attentionParams(o, extras),
    );
  }
}

const textureCache = new WeakMap<GPUDevice, Map<string, GPUTexture>>();

/**
 * An rgba32float texture of at least `width × height` texels. Sizes are rounded up to a class
 * (≤ 25 % extra) that is never a power of two: llvmpipe compiles one shader variant per
 * power-of-two-ness of texture sizes.
 */
function createTexture(device: GPUDevice, label: string, width: number, height: number): GPUTexture {
  const limit = device.limits.maxTextureDimension2D;
  const extent = (x: number) => {
    const step = 2 ** Math.max(0, Math.ceil(Math.log2(x)) - 3);
    let y = Math.ceil(x / step) * step;
    while ((y & (y - 1)) === 0) y++;
    return Math.min(y, limit);
  };
  return device.createTexture({
    label,
    size: { width: extent(width), height: extent(height) },
    format: "rgba32float",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
  });
}

/**
 * A texture of at least `width × height` texels for `role`, cached per device, role and size;
 * reuse within one recorded step is safe because commands run in submission order.
 */
function cachedTexture(rec: Recorder, role: string, width: number, height: number): GPUTexture {
  const device = rec.gpu.device;
  const cache = textureCache.get(device) ?? new Map<string, GPUTexture>();
  textureCache.set(device, cache);
  const key = `${role}:${width}x${height}`;
  let texture = cache.get(key);
  if (!texture) {
    texture = createTexture(device, `attention:${key}`, width, height);
    cache.set(key, texture);
  }
  return texture;
}

/** Texels of the S texture of `rows` query rows per (sequence, head): S, then the row maxima. */
function scoresSize(o: AttentionShape, width: number, rows: number): { width: number; height: number } {
  return { width: width / 4 + 1, height: o.batch * o.heads * rows };
}

/** Records attention_scores for one chunk of query rows into `scores`. */
function recordScores(
  rec: Recorder,
  o: AttentionOptions,
  qt: { view: GPUTextureView },
  kv: { k: GPUTextureView },
  scores: GPUTexture,
  extras: LaunchExtras,
): void {
  rec.dispatch(
    rec.kernel("attention", "attention_scores", kernelConstants(o)),
    [qt.view, kv.k, o.qOffset, o.kvLen, scores.createView()],
    [blocks(extras.rows ?? o.tq), o.heads, o.batch],
    attentionParams(o, extras),
  );
}

/**
 * S of a forward, kept for its backward (which then skips recomputing q·kᵀ, about a third of its
 * work), per device and lse buffer: the forward's lse stays alive until its backward, and the
 * entry names the inputs S came from, so a backward only uses an S of its own q, k and options.
 * Kept only while the textures stay within {@linkcode KEPT_SCORES_BYTES} (a few layers of a small
 * model; the oldest entries are evicted first); otherwise the backward recomputes S.
 */
interface KeptScores {
  texture: GPUTexture;
  inputs: readonly unknown[];
}

const KEPT_SCORES_BYTES = 64 * 2 ** 20;
const keptByDevice = new WeakMap<GPUDevice, Map<GPUBuffer, KeptScores>>();

function keptMap(rec: Recorder): Map<GPUBuffer, KeptScores> {
  const map = keptByDevice.get(rec.gpu.device) ?? new Map<GPUBuffer, KeptScores>();
  keptByDevice.set(rec.gpu.device, map);
  return map;
}

function scoreInputs(o: AttentionOptions, q: Tensor, k: Tensor): unknown[] {
  const { batch, tq, tmax, heads, kvHeads, headDim, scale, softcap, window } = o;
  return [
    q.buffer,
    k.buffer,
    o.qOffset.buffer,
    o.kvLen.buffer,
    batch,
    tq,
    tmax,
    heads,
    kvHeads,
    headDim,
    scale,
    softcap,
    window,
  ];
}

/** The texture this forward's S should go to for its backward, or undefined past the budget. */
function keepScores(
  rec: Recorder,
  o: AttentionOptions,
  q: Tensor,
  k: Tensor,
  lse: Tensor,
  size: { width: number; height: number },
): GPUTexture | undefined {
  const map = keptMap(rec);
  const old = map.get(lse.buffer);
  map.delete(lse.buffer);
  let texture = old?.texture;
  if (!texture || texture.width < size.width || texture.height < size.height) {
    const need = size.width * size.height * 16 * 1.25 ** 2;
    // An entry stays after its backward, and a later step's forwards may write their lse into
    // other pool buffers (a LoRA step did, filling the budget in three steps and recomputing S
    // from then on): evict the oldest first. This forward's earlier layers were set last.
    for (const buffer of map.keys()) {
      if (keptBytes(map) + need <= KEPT_SCORES_BYTES) break;
      map.delete(buffer);
    }
    if (keptBytes(map) + need > KEPT_SCORES_BYTES) return undefined;
    texture = createTexture(rec.gpu.device, "attention:kept_scores", size.width, size.height);
  }
  map.set(lse.buffer, { texture, inputs: scoreInputs(o, q, k) });
  return texture;
}

function keptBytes(map: Map<GPUBuffer, KeptScores>): number {
  return [...map.values()].reduce((n, e) => n + e.texture.width * e.texture.height * 16, 0);
}

/** Drops the kept S of `lse`'s buffer (another kind of forward wrote it). */
function forgetScores(rec: Recorder, lse: Tensor): void {
  keptMap(rec).delete(lse.buffer);
}

/** The S a forward kept for this backward's q, k, lse and options, if any. */
function keptScores(
  rec: Recorder,
  o: AttentionOptions,
  q: Tensor,
  k: Tensor,
  lse: Tensor,
): GPUTexture | undefined {
  const entry = keptMap(rec).get(lse.buffer);
  const inputs = scoreInputs(o, q, k);
  return entry && entry.inputs.every((x, i) => x === inputs[i]) ? entry.texture : undefined;
}

/** K and V `[B × Tmax × KVH × D]` as row textures (same packing, so one shift). */
function kvTextures(
  rec: Recorder,
  k: Tensor,
  v: Tensor,
  o: AttentionShape,
): { k: GPUTextureView; v: GPUTextureView; shift: number } {
  const rows = { ...o, tq: o.tmax, heads: o.kvHeads };
  const kt = rowTexture(rec, k, rows, "k"), vt = rowTexture(rec, v, rows, "v");
  return { k: kt.view, v: vt.view, shift: kt.shift };
}

/**
 * Copies token rows `[B·Tq × H·D]` (q, dout, or K / V with Tmax and KVH) into an rgba32float texture: `2^shift` rows side by
 * side per texture row (the smallest power of two that keeps the height within the limit), so
 * the dk/dv kernel reads them with texel fetches. Textures are cached per device, role and size
 * class; reuse within one recorded step is safe because commands run in submission order.
 */
function rowTexture(
  rec: Recorder,
  t: Tensor,
  o: AttentionShape,
  role: string,
): { view: GPUTextureView; shift: number } {
  const device = rec.gpu.device;
  const limit = device.limits.maxTextureDimension2D;
  const rows = o.batch * o.tq, width = o.heads * o.headDim / 4;
  let shift = 0;
  while (Math.ceil(rows / 2 ** shift) > limit && width * 2 ** (shift + 1) <= limit) shift++;
  const height = Math.ceil(rows / 2 ** shift);
  if (height > limit || width > limit) {
    throw new RangeError(
      `Attention: ${rows} rows of ${width} texels do not fit a ${limit}² texture`,
    );
  }
  const texture = cachedTexture(rec, role, width * 2 ** shift, height);
  if (shift === 0 && (width * 16) % 256 === 0) {
    rec.encoder().copyBufferToTexture(
      { buffer: t.buffer, bytesPerRow: width * 16, rowsPerImage: rows },
      { texture },
      { width, height: rows },
    );
  } else {
    const { groups, rowStride } = elementGrid(rows * width, WG);
    rec.dispatch(
      rec.kernel("attention", "attention_pack_rows", { WG, HD4: o.headDim / 4 }),
      [t, texture.createView()],
      groups,
      attentionParams(o, { gridStride: rowStride, rowShift: shift }),
    );
  }
  return { view: texture.createView(), shift };
}

/** Records the copy of new K (or V) rows `[B·Tq × KVH × D]` into cache rows `qOffset[b] + i`. */
export function kvCacheWrite(rec: Recorder, kNew: Tensor, cache: Tensor, o: KvCacheWriteOptions): void {
  if (o.headDim % 4 !== 0) throw new RangeError(`kvCacheWrite headDim ${o.headDim} must be a multiple of 4`);
  const { groups, rowStride } = elementGrid(o.batch * o.tq * o.kvHeads * (o.headDim / 4), WG);
  rec.dispatch(
    rec.kernel("attention", "kv_cache_write", { WG, HD4: o.headDim / 4 }),
    [kNew, o.qOffset, cache],
    groups,
    attentionParams({ ...o, heads: o.kvHeads, scale: 1, softcap: 0, window: 0 }, { gridStride: rowStride }),
  );
}

/**
 * Compiles and runs once every attention pipeline for `headDim` (tiled and decoding forward,
 * backward, KV-cache write) on a one-token problem without soft-capping, so the LLVM JIT happens
 * at start-up, not inside the first step. Returns the milliseconds it took (one sync).
 */
export async function attentionWarmup(engine: Engine, headDim: number): Promise<number> {
  const start = performance.now();
  const { pool } = engine;
  const shape = { batch: 1, tq: 1, tmax: 1, heads: 1, kvHeads: 1, headDim, scale: 1, softcap: 0, window: 0 };
  const [q, k, v, out, dq, dk, dv] = Array.from({ length: 7 }, () => pool.zeros([headDim]));
  const lse = pool.zeros([1]), delta = pool.zeros([1]);
  const qOffset = pool.zeros([1], "i32"), kvLen = pool.upload(new Int32Array([1]), [1]);
  const o = { ...shape, qOffset, kvLen };
  const rec = engine.recorder();
  kvCacheWrite(rec, k, v, { batch: 1, tq: 1, tmax: 1, kvHeads: 1, headDim, qOffset });
  attentionForwardVia("decode", rec, q, k, v, out, lse, o);
  attentionForwardVia("tiled", rec, q, k, v, out, lse, o);
  attentionBackward(rec, out, q, k, v, out, lse, dq, dk, dv, { ...o, delta });
  await rec.submit();
  for (const t of [q, k, v, out, dq, dk, dv, lse, delta, qOffset, kvLen]) pool.release(t);
  return performance.now() - start;
}
