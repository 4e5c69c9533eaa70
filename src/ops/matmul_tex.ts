/**
 * The fast matmul path: operands packed into textures, register-tiled kernels (compute-notes §2.5).
 * - One form, NT (`matmul_nt`, `matmul_nt_bf16`): `A·Bᵀ` with both operands packed with rows
 *   along k. Every layout reduces to it: an operand already stored with rows along k is copied
 *   with `copyBufferToTexture` (~10 GB/s) when its row pitch allows, otherwise a packing kernel
 *   gathers (and transposes) it; alpha is folded into A's packing. A weight gradient `dYᵀ·X` thus
 *   reads transposing packs of dY and X (~0.5 ms per 256 K values here, ~3 % of a bf16 training
 *   step of the reference decoder), while a kernel of its own for that layout (a TN tile reading
 *   dY and X as stored) cost 4–6 s of cold LLVM JIT and ran ~10 % slower than this one.
 * - bf16 (the training default) packs 8 rounded values per rgba32uint texel (half the fetches per
 *   FMA); `packBf16` packs a matrix once into a texture of its own that several products read
 *   (`matmulPacked`), e.g. a layer input for the forward and, transposed, for the weight gradient;
 *   `packBf16WithTranspose` makes both packs from one read of the matrix (a pack's cost is its
 *   loads here, so both cost about as much as one).
 * When accumulating, the old C is packed too and the kernel starts its accumulators from it.
 * Problems larger than the texture limit (16384 rows) run as several blocks, e.g. an LM head over a
 * 150k vocabulary. Per-call textures are cached per device by role and size, so repeated calls of
 * one shape reuse them; commands run in submission order, so reuse inside one recorded step is safe.
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { elementGrid } from "./grid.ts";

/** Output tile of one workgroup of the texture kernels: 32 rows × (16 lanes × 16 columns). */
export const TEX_TILE_M = 32;
export const TEX_TILE_N = 256;
/** Columns of one lane: the kernels' clamped tiles need C at least this wide (and 32 rows). */
const LANE_COLS = 16;
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

/** Everything the texture kernels need: `a` [m × k] and `b` [n × k], viewed with rows along k. */
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
  /** Free textures for {@linkcode packBf16}, by extent. */
  packed: Map<string, GPUTexture[]>;
  /** Padded output (see `outputFor`); grows to the largest size asked for. */
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
  /** Rows of the whole output (the binding covers rows × ldc values). */
  rows: number;
}

/**
 * Records the packing of the operands (and of the old C when accumulating) and the kernel, in
 * blocks of at most `blockLimits` output rows × columns; for n not a multiple of 4 or C smaller
 * than one lane's tile, into a padded scratch copy that one more dispatch copies into C.
 */
export function matmulTex(rec: Recorder, job: TexMatmul, placeholder: Tensor): void {
  const out = outputFor(rec, job.c, job.m, job.n);
  const limits = blockLimits(rec);
  for (const [i0, m] of evenBlocks(job.m, limits.rows, TEX_TILE_M)) {
    for (const [j0, n] of evenBlocks(job.n, limits.cols, TEX_TILE_N)) {
      launchBlock(rec, job, out, i0, j0, m, n, placeholder);
    }
  }
  unpad(rec, out, job.c, job.m, job.n);
}

/**
 * Where the kernel writes C [m × n]: C itself, or a scratch copy with rows padded to a multiple of
 * 4 columns and at least one lane's tile (32 × 16: the kernel clamps its tiles into C, see
 * matmul_nt_tile_begin.wgsl), which {@linkcode unpad} copies into C.
 */
function outputFor(rec: Recorder, c: Tensor, m: number, n: number): Output {
  const ldc = Math.max(roundUp(n, 4), LANE_COLS), rows = Math.max(m, TEX_TILE_M);
  return ldc === n && rows === m
    ? { buffer: c.buffer, ldc, rows }
    : { buffer: scratch(rec, rows * ldc), ldc, rows };
}

/** Copies a scratch output into C [m × n] (nothing when the kernel wrote C itself). */
function unpad(rec: Recorder, out: Output, c: Tensor, m: number, n: number): void {
  if (out.buffer === c.buffer) return;
  const { groups, rowStride } = elementGrid(m * n, PACK_WG);
  rec.dispatch(
    rec.kernel("matmul_pack", "matmul_unpad"),
    [{ buffer: out.buffer, size: out.rows * out.ldc * 4 }, c],
    groups,
    params([["u32", m * n], ["u32", n], ["u32", out.ldc], ["u32", rowStride]]),
  );
}

/**
 * [start, size] of the blocks that split `total` into pieces of at most `limit` (a multiple of
 * `tile`), of even sizes rounded to the tile: every block keeps ≥ 32 rows and ≥ 16 columns when
 * the whole does (its last block is ≥ limit/2 − tile·(blocks − 1), thousands here), as the
 * kernel's clamped tiles need.
 */
function evenBlocks(total: number, limit: number, tile: number): [number, number][] {
  const count = Math.ceil(total / limit);
  const size = Math.min(limit, roundUp(Math.ceil(total / count), tile));
  return Array.from({ length: count }, (_, i) => [i * size, Math.min(size, total - i * size)]);
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
  const kq = texelSteps(job.k, job.bf16);
  const ta = pack(rec, rowsOf(job.a, i0, m), format, kq, roundUp(m, TEX_TILE_M), "a");
  const tb = pack(rec, rowsOf(job.b, j0, n), format, kq, roundUp(n, TEX_TILE_N), "b");
  dispatchTex(rec, job, ta, tb, { out, i0, j0, m, n, kq }, placeholder);
}

/** Loop steps of the kernel: texels along k (the packs zero the values past k in the last one). */
function texelSteps(k: number, bf16: boolean): number {
  return Math.max(1, Math.ceil(k / (bf16 ? 8 : 4)));
}

/** Records the kernel for one output block whose operands are packed (and the old C, when accumulating). */
function dispatchTex(
  rec: Recorder,
  job: Pick<TexMatmul, "n" | "c" | "bias" | "accumulate" | "bf16">,
  ta: GPUTextureView,
  tb: GPUTextureView,
  block: { out: Output; i0: number; j0: number; m: number; n: number; kq: number },
  placeholder: Tensor,
): void {
  const { out, i0, j0, m, n, kq } = block;
  // Columns past n (up to the next multiple of 4, or up to 16) and rows past m (up to 32) exist
  // only in the scratch copy: A and B rows there are zeros or stale texels, and those rows and
  // columns are never copied to C.
  const n4 = Math.max(roundUp(n, 4), LANE_COLS), m32 = Math.max(m, TEX_TILE_M);
  const oldC = { tensor: job.c, offset: i0 * job.n + j0, rows: m, cols: n, row: job.n, col: 1, scale: 1 };
  const tc = job.accumulate
    ? pack(rec, oldC, "rgba32float", roundUp(n, 4) / 4, m, "c")
    : deviceCache(rec).emptyView;
  rec.dispatch(
    rec.kernel("matmul_tex", job.bf16 ? "matmul_nt_bf16" : "matmul_nt"),
    [
      ta,
      tb,
      tc,
      job.bias ? { buffer: job.bias.buffer, size: roundUp(job.n, 4) * 4 } : placeholder,
      { buffer: out.buffer, size: out.rows * out.ldc * 4 },
    ],
    [Math.ceil(n4 / TEX_TILE_N), Math.ceil(m32 / TEX_TILE_M)],
    params([
      ["u32", m32],
      ["u32", n4],
      ["u32", kq],
      ["u32", (job.bias ? 1 : 0) | (job.accumulate ? 2 : 0)],
      ["u32", out.ldc / 4],
      ["u32", (i0 * out.ldc + j0) / 4],
      ["u32", j0 / 4],
    ]),
  );
}

/**
 * A matrix packed once into bf16 texels along its rows ({@linkcode packBf16}), so that several
 * products read it without packing it again: in a linear layer's training step the input X
 * serves the forward (as A) and the LoRA product `A·xᵀ` (as B); the upstream gradient dY serves
 * dX (as A); their transposes dYᵀ and Xᵀ serve dW = dYᵀ·X.
 */
export interface PackedBf16 {
  readonly texture: GPUTexture;
  readonly rows: number;
  readonly cols: number;
  /** The pack of the transposed matrix once {@linkcode packedTranspose} made it; released with this one. */
  transposed?: PackedBf16;
}

/**
 * A texture of its own for a `[rows × cols]` bf16 pack, large enough for every role the packed
 * kernels give it, for a kernel that writes the pack itself (see {@linkcode packBf16}'s layout),
 * with at least `spareTexels` texels along k past the matrix's (see {@linkcode withSpareTexels});
 * return it with {@linkcode releasePacked}.
 */
export function allocatePacked(
  rec: Recorder,
  rows: number,
  cols: number,
  name: string,
  spareTexels = 0,
): PackedBf16 {
  const limit = rec.gpu.device.limits.maxTextureDimension2D;
  const { width, height } = packedExtent(rows, cols + 8 * spareTexels, limit);
  if (width > limit || height > limit) {
    throw new RangeError(`A bf16 pack of ${rows}×${cols} (${name}) exceeds the texture limit ${limit}`);
  }
  const free = deviceCache(rec).packed;
  const key = `${width}x${height}`;
  const texture = free.get(key)?.pop() ?? rec.gpu.device.createTexture({
    label: `matmul:packed:${key}`,
    size: { width, height },
    format: "rgba32uint",
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING,
  });
  return { texture, rows, cols };
}

/**
 * `packed` presented `texels` texels wider along k (columns past its own, which the caller writes
 * into the spare texels of the texture), or null when its texture lacks them (see
 * {@linkcode allocatePacked}'s `spareTexels`). Its values past `cols` inside the last texel are
 * zeros, so a product of two such views adds the spare texels' products to the matrix's.
 *
 * @example
 * ```ts
 * const xP = packBf16(rec, matrixView(x, rows, k), 1);
 * matmulPackedBf16(rec, withSpareTexels(xP, 1)!, withSpareTexels(wP, 1)!, y);
 * ```
 */
export function withSpareTexels(packed: PackedBf16, texels: number): PackedBf16 | null {
  const width = Math.ceil(packed.cols / 8) + texels;
  if (packed.texture.width < width) return null;
  return { texture: packed.texture, rows: packed.rows, cols: 8 * width };
}

/** True when a bf16 pack of a `[rows × cols]` matrix fits one texture ({@linkcode allocatePacked}). */
export function packedFits(rec: Recorder, rows: number, cols: number): boolean {
  const limit = rec.gpu.device.limits.maxTextureDimension2D;
  const { width, height } = packedExtent(rows, cols, limit);
  return width <= limit && height <= limit;
}

/** Width: the texels along k. Height: rows up to a whole tile of B (256 rows; A's 32-row tiles fit). */
function packedExtent(rows: number, cols: number, limit: number): { width: number; height: number } {
  return {
    width: textureExtent(Math.max(1, Math.ceil(cols / 8)), limit),
    height: textureExtent(roundUp(rows, TEX_TILE_N), limit),
  };
}

/**
 * Records the bf16 packing of `op` (its rows along texture x: texel (q, r) holds columns
 * 8q … 8q+7 of row r, two per u32, the lower column in the low half) into a texture of its own;
 * return it with {@linkcode releasePacked}.
 *
 * @example
 * ```ts
 * const xP = packBf16(rec, matrixView(x, tokens, hidden)); // read by several products
 * matmulPackedBf16(rec, xP, wP, y, { layout: "nt" });
 * releasePacked(rec, xP);
 * ```
 */
export function packBf16(rec: Recorder, op: Operand, spareTexels = 0): PackedBf16 {
  const packed = allocatePacked(rec, op.rows, op.cols, op.tensor.name, spareTexels);
  // Only the texels a kernel reads as data are written (zeros past the last column inside its
  // texel): the kernels' clamped tiles read no row past the matrix (only a padded scratch C's).
  packInto(rec, op, packed.texture, "rgba32uint", Math.max(1, Math.ceil(op.cols / 8)), op.rows);
  return packed;
}

/**
 * Records both bf16 packs of `op` from one read of it: its pack along the rows, as
 * {@linkcode packBf16} makes it, with the pack of its transpose kept as `transposed` (what
 * {@linkcode packedTranspose} returns; released with it). For a matrix that two products read
 * both ways, e.g. a layer's dY (dX = dY·W and dW = dYᵀ·X): about half the reads of two packs.
 * Views that are not contiguous, vec4-aligned rows (or of a width not a multiple of 4) take two
 * packs.
 *
 * @example
 * ```ts
 * const dyP = packBf16WithTranspose(rec, matrixView(dy, tokens, out));
 * matmulPackedBf16(rec, dyP, wT, dx);
 * matmulPackedBf16(rec, dyP.transposed!, xT, dw, { accumulate: true });
 * releasePacked(rec, dyP); // and dyP.transposed
 * ```
 */
export function packBf16WithTranspose(rec: Recorder, op: Operand, spareTexels = 0): PackedBf16 {
  const transposedOp = { ...op, rows: op.cols, cols: op.rows, row: op.col, col: op.row };
  const fused = op.col === 1 && op.row % 4 === 0 && op.offset % 4 === 0 && op.cols % 4 === 0;
  if (!fused || op.rows === 0 || op.cols === 0) {
    const packed = packBf16(rec, op, spareTexels);
    packed.transposed = packBf16(rec, transposedOp);
    return packed;
  }
  const packed = allocatePacked(rec, op.rows, op.cols, op.tensor.name, spareTexels);
  packed.transposed = allocatePacked(rec, op.cols, op.rows, op.tensor.name);
  const width = Math.ceil(op.cols / 8), blocks = Math.ceil(op.rows / 8);
  rec.dispatch(
    rec.kernel("matmul_pack", "matmul_pack_bf16_both"),
    [wholeVec4s(rec, op.tensor), packed.texture.createView(), packed.transposed.texture.createView()],
    [Math.ceil(width / PACK_WG), blocks],
    packParams(op, width, blocks),
  );
  return packed;
}

/**
 * The pack of `transposedOp` (the transpose of the matrix `packed` holds, as a view of the same
 * tensor), made at the first call and kept with `packed`: the layers that share an input (q, k and
 * v) share its transpose for their weight gradients.
 *
 * @example
 * ```ts
 * const xT = packedTranspose(rec, xP, matrixView(x, cols, rows, true));
 * ```
 */
export function packedTranspose(rec: Recorder, packed: PackedBf16, transposedOp: Operand): PackedBf16 {
  if (transposedOp.rows !== packed.cols || transposedOp.cols !== packed.rows) {
    throw new RangeError(
      `packedTranspose: ${transposedOp.tensor.name} is ${transposedOp.rows}×${transposedOp.cols}, the pack ${packed.rows}×${packed.cols}`,
    );
  }
  packed.transposed ??= packBf16(rec, transposedOp);
  return packed.transposed;
}

/**
 * Returns a packed matrix's texture (and its transpose's) for reuse by later packs on the same
 * device (commands already recorded keep it: commands run in recording order).
 */
export function releasePacked(owner: OnDevice, packed: PackedBf16): void {
  if (packed.transposed) releasePacked(owner, packed.transposed);
  packed.transposed = undefined;
  const free = deviceCache(owner).packed;
  const key = `${packed.texture.width}x${packed.texture.height}`;
  if (!free.has(key)) free.set(key, []);
  free.get(key)!.push(packed.texture);
}

/**
 * Records `C (= or +=) A·Bᵀ (+ bias)` from packed operands A [m × k] and B [n × k]. n must be a
 * multiple of 4.
 */
export function matmulPacked(
  rec: Recorder,
  a: PackedBf16,
  b: PackedBf16,
  c: Tensor,
  opts: { bias?: Tensor; accumulate?: boolean },
  placeholder: Tensor,
): void {
  const [m, n, k] = [a.rows, b.rows, a.cols];
  if (b.cols !== k) {
    throw new RangeError(`matmulPacked: inner sizes differ (${k} vs ${b.cols}) for ${c.name}`);
  }
  if (n % 4 !== 0) throw new RangeError(`matmulPacked: n = ${n} is not a multiple of 4 (${c.name})`);
  if (c.size < m * n) throw new RangeError(`matmulPacked: ${c.name} has ${c.size} values, needs ${m}×${n}`);
  if (m === 0 || n === 0) return;
  const job = {
    n,
    c,
    bias: opts.bias,
    accumulate: opts.accumulate ?? false,
    bf16: true,
  };
  const out = outputFor(rec, c, m, n);
  const kq = texelSteps(k, true);
  dispatchTex(
    rec,
    job,
    a.texture.createView(),
    b.texture.createView(),
    { out, i0: 0, j0: 0, m, n, kq },
    placeholder,
  );
  unpad(rec, out, c, m, n);
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
  packInto(rec, op, texture, format, width, height);
  return texture.createView();
}

/** Records the packing of `op` into the first `width` × `height` texels of `texture` (zeros past `op`). */
function packInto(
  rec: Recorder,
  op: Operand,
  texture: GPUTexture,
  format: "rgba32float" | "rgba32uint",
  width: number,
  height: number,
): void {
  const contiguous = op.col === 1 && op.row === op.cols && op.cols > 0 && op.cols % COPY_ROW_ALIGN === 0;
  if (format === "rgba32float" && contiguous && op.scale === 1 && op.offset % 4 === 0 && op.rows > 0) {
    rec.encoder().copyBufferToTexture(
      { buffer: op.tensor.buffer, offset: op.offset * 4, bytesPerRow: op.cols * 4, rowsPerImage: op.rows },
      { texture },
      { width, height: op.rows },
    );
    return;
  }
  const lanesOnRows = op.col !== 1;
  // With vec4-aligned source rows the packs load whole vec4s: 4 × 4 blocks when transposing,
  // row quads otherwise (about 2× faster than the scalar gathers).
  const aligned = op.offset % 4 === 0;
  const blocks = aligned && op.row === 1 && op.col % 4 === 0;
  const quads = aligned && op.col === 1 && op.row % 4 === 0;
  const variant = blocks ? "_transposed" : quads ? "_rows" : "";
  const entry = `matmul_pack${format === "rgba32uint" ? "_bf16" : ""}${variant}`;
  const groups: [number, number] = blocks
    ? [Math.ceil(width / PACK_WG), Math.ceil(height / 4)]
    : quads
    ? [Math.ceil(width / PACK_WG), height]
    : packGrid(lanesOnRows, width, height);
  rec.dispatch(
    rec.kernel("matmul_pack", entry),
    [blocks || quads ? wholeVec4s(rec, op.tensor) : op.tensor, texture.createView()],
    groups,
    packParams(op, width, height, lanesOnRows),
  );
}

/** The packing kernels' uniform block (`Params` in matmul_pack.wgsl). */
function packParams(op: Operand, width: number, height: number, lanesOnRows = false): ArrayBuffer {
  return params([
    ["u32", op.rows],
    ["u32", op.cols],
    ["u32", op.row],
    ["u32", op.col],
    ["u32", width],
    ["u32", height],
    ["f32", op.scale],
    ["u32", op.offset],
    ["u32", lanesOnRows ? 1 : 0],
  ]);
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

/** Anything that knows its device: a recorder or a tensor pool. */
type OnDevice = { readonly gpu: { readonly device: GPUDevice } };

function deviceCache(rec: OnDevice): DeviceCache {
  const device = rec.gpu.device;
  let cache = caches.get(device);
  if (!cache) {
    const empty = device.createTexture({
      label: "matmul:no-accumulate",
      size: { width: 3, height: 3 },
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING,
    });
    cache = { textures: new Map(), packed: new Map(), emptyView: empty.createView() };
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
