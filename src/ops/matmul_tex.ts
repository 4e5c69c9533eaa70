/**
 * The fast matmul path: both operands are packed into rgba32float textures with rows along k,
 * then one register-tiled kernel computes `A·Bᵀ` (compute-notes §2.5, fp32 variant).
 * Every layout reduces to that form: an operand already stored with rows along k is copied with
 * `copyBufferToTexture` (~10 GB/s) when its row pitch allows, otherwise a packing kernel gathers
 * (and transposes) it; alpha is folded into A's packing. The opt-in bf16 mode packs 8 rounded
 * values per rgba32uint texel instead (half the fetches per FMA). When accumulating, the old C is packed
 * too and the kernel starts its accumulators from it. Problems larger than the texture limit
 * (16384 rows) run as several blocks, e.g. an LM head over a 150k vocabulary. Textures are cached per device by role and
 * size, so repeated calls of one shape reuse them; commands run in submission order, so reuse
 * inside one recorded step is safe.
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";

/** Output tile of one workgroup of the texture kernel: 32 rows × (16 lanes × 16 columns). */
export const TEX_TILE_M = 32;
export const TEX_TILE_N = 256;
const PACK_WG = 16;
/** copyBufferToTexture needs bytesPerRow to be a multiple of 256: rows of a multiple of 64 floats. */
const COPY_ROW_ALIGN = 64;

/**
 * A matrix view with `rows` rows of `cols` values: element (r, x) lives at
 * `buf[offset + r·row + x·col]`.
 */
export interface Operand {
  tensor: Tensor;
  offset: number;
  rows: number;
  cols: number;
  row: number;
  col: number;
  /** Multiplies every element while packing (alpha for A, 1 otherwise). */
  scale: number;
}

/** Everything the texture kernel needs; `a` and `b` are both viewed with rows along k. */
export interface TexMatmul {
  m: number;
  n: number;
  k: number;
  a: Operand;
  b: Operand;
  c: Tensor;
  bias?: Tensor;
  accumulate: boolean;
  /** Opt-in: round A and B to bf16 (8 values per rgba32uint texel), accumulate in f32. */
  bf16: boolean;
}

interface DeviceCache {
  textures: Map<string, GPUTexture>;
  /** Padded output for n not a multiple of 4; grows to the largest size asked for. */
  scratch?: GPUBuffer;
  /** Bound as the old C when not accumulating (never read then). */
  emptyView: GPUTextureView;
}

const caches = new WeakMap<GPUDevice, DeviceCache>();

/** Output rows and columns of one launch: multiples of the tile that stay under the texture limit. */
function blockLimits(rec: Recorder): { rows: number; cols: number } {
  const limit = rec.gpu.device.limits.maxTextureDimension2D;
  const largest = (tile: number) => {
    let x = Math.floor(limit / tile) * tile;
    while (avoidPowerOfTwo(x) > limit) x -= tile;
    return x;
  };
  return { rows: largest(TEX_TILE_M), cols: largest(TEX_TILE_N) };
}

/**
 * True when the texture kernel can compute this problem: k within one texture row (65532 f32
 * values here) and, when n is not a multiple of 4 (the kernel stores vec4s, so it then writes a
 * padded scratch copy of C), that copy within one binding and a bias readable as whole vec4s.
 * m and n of any size are split into blocks.
 */
export function texFits(
  rec: Recorder,
  m: number,
  n: number,
  k: number,
  bias: Tensor | undefined,
  bf16: boolean,
): boolean {
  const limits = rec.gpu.device.limits;
  if (avoidPowerOfTwo(Math.ceil(k / (bf16 ? 8 : 4))) > limits.maxTextureDimension2D) return false;
  if (n % 4 === 0) return true;
  return m * roundUp(n, 4) * 4 <= limits.maxStorageBufferBindingSize &&
    (!bias || bias.buffer.size >= roundUp(n, 4) * 4);
}

/** Where the kernel writes: C itself, or a scratch copy with rows padded to a multiple of 4. */
interface Output {
  buffer: GPUBuffer;
  ldc: number;
}

/**
 * Records the packing of the operands (and of the old C when accumulating) and the kernel, in
 * blocks of at most `blockLimits` output rows × columns; for n not a multiple of 4, into a padded
 * scratch copy that one more dispatch copies into C.
 */
export function matmulTex(rec: Recorder, job: TexMatmul, placeholder: Tensor): void {
  const ldc = roundUp(job.n, 4);
  const out: Output = ldc === job.n
    ? { buffer: job.c.buffer, ldc }
    : { buffer: scratch(rec, job.m * ldc), ldc };
  const limits = blockLimits(rec);
  for (let i0 = 0; i0 < job.m; i0 += limits.rows) {
    for (let j0 = 0; j0 < job.n; j0 += limits.cols) {
      const m = Math.min(limits.rows, job.m - i0), n = Math.min(limits.cols, job.n - j0);
      launchBlock(rec, job, out, i0, j0, m, n, placeholder);
    }
  }
  if (out.buffer !== job.c.buffer) {
    const { groups, rowStride } = elementGrid(job.m * job.n, PACK_WG);
    rec.dispatch(
      rec.kernel("matmul_pack", "matmul_unpad"),
      [{ buffer: out.buffer, size: job.m * ldc * 4 }, job.c],
      groups,
      params([["u32", job.m * job.n], ["u32", job.n], ["u32", ldc], ["u32", rowStride]]),
    );
  }
}

/** Rows r0 … r0+rows−1 of an operand view. */
function rowsOf(op: Operand, r0: number, rows: number): Operand {
  return { ...op, offset: op.offset + r0 * op.row, rows };
}

function launchBlock(
  rec: Recorder,
  job: TexMatmul,
  out: Output,
  i0: number,
  j0: number,
  m: number,
  n: number,
  placeholder: Tensor,
): void {
  const format = job.bf16 ? "rgba32uint" : "rgba32float";
  const kq = Math.max(1, Math.ceil(job.k / (job.bf16 ? 8 : 4)));
  // Columns past n (up to the next multiple of 4) exist only in the scratch copy: B rows there
  // are zeros or stale texels, and those columns are never copied to C.
  const n4 = roundUp(n, 4);
  const ta = pack(rec, rowsOf(job.a, i0, m), format, kq, roundUp(m, TEX_TILE_M), "a");
  const tb = pack(rec, rowsOf(job.b, j0, n), format, kq, roundUp(n, TEX_TILE_N), "b");
  const oldC = { tensor: job.c, offset: i0 * job.n + j0, rows: m, cols: n, row: job.n, col: 1, scale: 1 };
  const tc = job.accumulate ? pack(rec, oldC, "rgba32float", n4 / 4, m, "c") : deviceCache(rec).emptyView;
  rec.dispatch(
    rec.kernel("matmul_tex", job.bf16 ? "matmul_nt_bf16" : "matmul_nt"),
    [
      ta,
      tb,
      tc,
      job.bias ? { buffer: job.bias.buffer, size: roundUp(job.n, 4) * 4 } : placeholder,
      { buffer: out.buffer, size: job.m * out.ldc * 4 },
    ],
    [Math.ceil(n4 / TEX_TILE_N), Math.ceil(m / TEX_TILE_M)],
    params([
      ["u32", m],
      ["u32", n4],
      ["u32", kq],
      ["u32", (job.bias ? 1 : 0) | (job.accumulate ? 2 : 0)],
      ["u32", out.ldc / 4],
      ["u32", (i0 * out.ldc + j0) / 4],
      ["u32", j0 / 4],
    ]),
  );
}

/** Packs `op` into a cached texture `width` texels wide with at least `height` rows. */
function pack(
  rec: Recorder,
  op: Operand,
  format: "rgba32float" | "rgba32uint",
  width: number,
  height: number,
  role: string,
): GPUTextureView {
  const texture = cachedTexture(rec, format, width, height, role);
  const contiguous = op.col === 1 && op.row === op.cols && op.cols > 0 && op.cols % COPY_ROW_ALIGN === 0;
  if (format === "rgba32float" && contiguous && op.scale === 1 && op.offset % 4 === 0 && op.rows > 0) {
    rec.encoder().copyBufferToTexture(
      { buffer: op.tensor.buffer, offset: op.offset * 4, bytesPerRow: op.cols * 4, rowsPerImage: op.rows },
      { texture },
      { width, height: op.rows },
    );
  } else {
    const lanesOnRows = op.col !== 1;
    // With vec4-aligned source rows the packs load whole vec4s: 4 × 4 blocks when transposing,
    // row quads otherwise (about 2× faster than the scalar gathers).
    const aligned = op.offset % 4 === 0;
    const blocks = aligned && op.row === 1 && op.col % 4 === 0;
    const quads = aligned && op.col === 1 && op.row % 4 === 0;
    const variant = blocks ? "_transposed" : quads ? "_rows" : "";
    const entry = `matmul_pack${format === "rgba32uint" ? "_bf16" : ""}${variant}`;
    const groups: [number, number] = blocks
      ? [Math.ceil(height / 4 / PACK_WG), width]
      : quads
      ? [Math.ceil(width / PACK_WG), height]
      : packGrid(lanesOnRows, width, height);
    rec.dispatch(
      rec.kernel("matmul_pack", entry),
      [blocks || quads ? wholeVec4s(rec, op.tensor) : op.tensor, texture.createView()],
      groups,
      params([
        ["u32", op.rows],
        ["u32", op.cols],
        ["u32", op.row],
        ["u32", op.col],
        ["u32", width],
        ["u32", height],
        ["f32", op.scale],
        ["u32", op.offset],
        ["u32", lanesOnRows ? 1 : 0],
      ]),
    );
  }
  return texture.createView();
}

/** One lane per texel, lanes along the contiguous direction of the source. */
function packGrid(lanesOnRows: boolean, width: number, height: number): [number, number] {
  return lanesOnRows ? [Math.ceil(height / PACK_WG), width] : [Math.ceil(width / PACK_WG), height];
}

/**
 * The buffer of `t` as whole vec4s, up to the binding limit (reads past `t.size` only feed texels
 * that are never stored).
 */
export function wholeVec4s(rec: Recorder, t: Tensor): { buffer: GPUBuffer; size: number } {
  const bytes = Math.min(t.buffer.size, rec.gpu.device.limits.maxStorageBufferBindingSize);
  return { buffer: t.buffer, size: Math.floor(bytes / 16) * 16 };
}

function deviceCache(rec: Recorder): DeviceCache {
  const device = rec.gpu.device;
  let cache = caches.get(device);
  if (!cache) {
    const empty = device.createTexture({
      label: "matmul:no-accumulate",
      size: { width: 3, height: 3 },
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING,
    });
    cache = { textures: new Map(), emptyView: empty.createView() };
    caches.set(device, cache);
  }
  return cache;
}

function scratch(rec: Recorder, floats: number): GPUBuffer {
  const cache = deviceCache(rec);
  if (!cache.scratch || cache.scratch.size < floats * 4) {
    // The smaller buffer is dropped, not destroyed: commands recorded but not yet submitted may
    // still use it.
    cache.scratch = rec.gpu.device.createBuffer({
      label: "matmul:padded-c",
      size: Math.max(256, 2 ** Math.ceil(Math.log2(floats * 4))),
      usage: GPUBufferUsage.STORAGE,
    });
  }
  return cache.scratch;
}

function cachedTexture(
  rec: Recorder,
  format: GPUTextureFormat,
  width: number,
  height: number,
  role: string,
): GPUTexture {
  const { textures } = deviceCache(rec);
  const limit = rec.gpu.device.limits.maxTextureDimension2D;
  width = textureExtent(width, limit);
  height = textureExtent(height, limit);
  const key = `${role}:${format}:${width}x${height}`;
  let texture = textures.get(key);
  if (!texture) {
    texture = rec.gpu.device.createTexture({
      label: `matmul:${key}`,
      size: { width, height },
      format,
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
    });
    textures.set(key, texture);
  }
  return texture;
}

/**
 * The allocated size for a needed extent: rounded up to a size class (8 per octave, ≤ 25 %
 * extra) so problems of many nearby shapes (prompt lengths, chunks) share a few textures, and never
 * a power of two: llvmpipe keys its compiled shader variants on whether texture sizes are powers of
 * two, so mixing both kinds would JIT the big kernel (seconds) once per kind. Texels beyond the
 * needed extent are never read.
 */
function textureExtent(needed: number, limit: number): number {
  const step = 2 ** Math.max(0, Math.ceil(Math.log2(needed)) - 3);
  const rounded = avoidPowerOfTwo(Math.ceil(needed / step) * step);
  return rounded <= limit ? rounded : avoidPowerOfTwo(needed);
}

function avoidPowerOfTwo(x: number): number {
  while ((x & (x - 1)) === 0) x++;
  return x;
}

function roundUp(x: number, to: number): number {
  return Math.max(to, Math.ceil(x / to) * to);
}
