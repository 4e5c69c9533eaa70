/**
 * The fast matmul path: both operands are packed into rgba32float textures with rows along k,
 * then one register-tiled kernel computes `alpha·A·Bᵀ` (compute-notes §2.5, fp32 variant).
 * Every layout reduces to that form: an operand already stored with rows along k is copied with
 * `copyBufferToTexture` (~10 GB/s) when its row pitch allows, otherwise a packing kernel gathers
 * (and transposes) it. Textures are cached per device by size and role, so repeated calls of one
 * shape reuse them; commands run in submission order, so reuse inside one recorded step is safe.
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";

/** Output tile of one workgroup of the texture kernel: 32 rows × (16 lanes × 16 columns). */
export const TEX_TILE_M = 32;
export const TEX_TILE_N = 256;
const PACK_WG = 16;
/** copyBufferToTexture needs bytesPerRow to be a multiple of 256: k a multiple of 64 floats. */
const COPY_ROW_ALIGN = 64;

/** Where operand element (r, p) of the row-along-k view lives: `buf[r·row + p·col]`. */
interface Operand {
  tensor: Tensor;
  rows: number;
  row: number;
  col: number;
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
  alpha: number;
  /** Epilogue switches: 1 = add bias, 2 = accumulate into c. */
  flags: number;
}

const caches = new WeakMap<GPUDevice, Map<string, GPUTexture>>();

/**
 * True when the texture kernel can compute this problem: n a multiple of 4 (it stores vec4s) and
 * both operands within the texture size limit (16384 rows here).
 */
export function texFits(rec: Recorder, m: number, n: number, k: number): boolean {
  const limit = rec.gpu.device.limits.maxTextureDimension2D;
  const fits = (x: number) => avoidPowerOfTwo(x) <= limit;
  return n % 4 === 0 && fits(roundUp(m, TEX_TILE_M)) && fits(roundUp(n, TEX_TILE_N)) &&
    fits(Math.ceil(k / 4));
}

/** Records packing of both operands and the texture kernel. */
export function matmulTex(rec: Recorder, job: TexMatmul, placeholder: Tensor): void {
  const { m, n, k } = job;
  const kq = Math.max(1, Math.ceil(k / 4));
  const ta = pack(rec, job.a, k, kq, roundUp(m, TEX_TILE_M), "a");
  const tb = pack(rec, job.b, k, kq, roundUp(n, TEX_TILE_N), "b");
  rec.dispatch(
    rec.kernel("matmul_tex", "matmul_nt"),
    [
      ta,
      tb,
      job.bias ? { buffer: job.bias.buffer, size: n * 4 } : placeholder,
      { buffer: job.c.buffer, size: m * n * 4 },
    ],
    [Math.ceil(n / TEX_TILE_N), Math.ceil(m / TEX_TILE_M)],
    params([["u32", m], ["u32", n], ["u32", kq], ["f32", job.alpha], ["u32", job.flags]]),
  );
}

function pack(
  rec: Recorder,
  op: Operand,
  k: number,
  kq: number,
  height: number,
  role: string,
): GPUTextureView {
  const texture = cachedTexture(rec, kq, height, role);
  if (op.col === 1 && op.row === k && k % COPY_ROW_ALIGN === 0 && op.rows > 0) {
    rec.encoder().copyBufferToTexture(
      { buffer: op.tensor.buffer, bytesPerRow: k * 4, rowsPerImage: op.rows },
      { texture },
      { width: kq, height: op.rows },
    );
  } else {
    const lanesOnRows = op.col !== 1;
    const [gx, gy] = lanesOnRows ? [height, kq] : [kq, height];
    rec.dispatch(
      rec.kernel("matmul_pack", "matmul_pack", { LANES_ON_ROWS: lanesOnRows ? 1 : 0 }),
      [op.tensor, texture.createView()],
      [Math.ceil(gx / PACK_WG), gy],
      params([
        ["u32", op.rows],
        ["u32", k],
        ["u32", op.row],
        ["u32", op.col],
        ["u32", kq],
        ["u32", height],
      ]),
    );
  }
  return texture.createView();
}

function cachedTexture(rec: Recorder, width: number, height: number, role: string): GPUTexture {
  const device = rec.gpu.device;
  let cache = caches.get(device);
  if (!cache) {
    cache = new Map();
    caches.set(device, cache);
  }
  // llvmpipe keys its compiled shader variants on whether texture sizes are powers of two, so
  // mixing both kinds would JIT the big kernel (seconds) once per kind: never allocate a power of
  // two. The extra texels are never read.
  width = avoidPowerOfTwo(width);
  height = avoidPowerOfTwo(height);
  const key = `${role}:${width}x${height}`;
  let texture = cache.get(key);
  if (!texture) {
    texture = device.createTexture({
      label: `matmul:${key}`,
      size: { width, height },
      format: "rgba32float",
      usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
    });
    cache.set(key, texture);
  }
  return texture;
}

function avoidPowerOfTwo(x: number): number {
  while ((x & (x - 1)) === 0) x++;
  return x;
}

function roundUp(x: number, to: number): number {
  return Math.max(to, Math.ceil(x / to) * to);
}
