/**
 * GPU tensors: a storage buffer plus a shape, drawn from a size-class pool so activation memory
 * is reused across steps and released deterministically (GPU memory is not garbage-collected).
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { TensorPool } from "./tensor.ts";
 * const pool = new TensorPool(await getGpu());
 * const x = pool.upload(new Float32Array([1, 2, 3]), [3]);
 * pool.release(x);
 * ```
 *
 * @module
 */
import type { Gpu } from "./device.ts";

/** Element types stored on the GPU: f32 for values, i32/u32 for ids and indices. */
export type DType = "f32" | "i32" | "u32";

/** A dense row-major tensor living in one storage buffer. */
export interface Tensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Number of elements (product of the shape). */
  readonly size: number;
  /** Debug name: shows up in errors and in NaN reports. */
  readonly name: string;
}

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Product of a shape; 1 for a scalar. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Buffers are bucketed by size rounded up to a power of two (min 256 B) so reuse hits often. */
function sizeClass(bytes: number): number {
  return Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1))));
}

/**
 * Hands out tensors from free lists keyed by size class. `release` returns a buffer for reuse by
 * later work in the same or a later step; GPU commands run in submission order, so reuse inside
 * one recorded step is safe once the previous user's last command has been recorded.
 */
export class TensorPool {
  #free = new Map<number, GPUBuffer[]>();
  #live = new Set<GPUBuffer>();
  /** Bytes held by live tensors. */
  liveBytes = 0;
  /** Bytes held in total (live + free lists). */
  heldBytes = 0;

  constructor(readonly gpu: Gpu) {}

  /** A zero-filled-or-not (reused buffers keep old contents) tensor of `shape`. */
  tensor(shape: readonly number[], dtype: DType = "f32", name = "tensor"): Tensor {
    const size = numel(shape);
    const bytes = sizeClass(size * 4);
    const limit = this.gpu.device.limits.maxStorageBufferBindingSize;
    if (size * 4 > limit) {
      throw new RangeError(
        `Tensor ${name} [${shape.join("×")}] needs ${
          size * 4
        } bytes, above the ${limit}-byte binding limit: split it into chunks`,
      );
    }
    const buffer = this.#free.get(bytes)?.pop() ?? this.#allocate(bytes, name);
    this.#live.add(buffer);
    this.liveBytes += bytes;
    return { buffer, shape: [...shape], dtype, size, name };
  }

  /** A tensor filled with zeros (cleared on the queue, before any later submitted work). */
  zeros(shape: readonly number[], dtype: DType = "f32", name = "zeros"): Tensor {
    const t = this.tensor(shape, dtype, name);
    const encoder = this.gpu.device.createCommandEncoder();
    encoder.clearBuffer(t.buffer, 0, Math.ceil((t.size * 4) / 4) * 4);
    this.gpu.device.queue.submit([encoder.finish()]);
    return t;
  }

  /** Uploads host data (queued with `writeBuffer`, ~15 GB/s here). */
  upload(data: Float32Array | Int32Array | Uint32Array, shape: readonly number[], name = "upload"): Tensor {
    if (data.length !== numel(shape)) {
      throw new RangeError(`Tensor ${name}: ${data.length} values do not fill shape [${shape.join("×")}]`);
    }
    const dtype: DType = data instanceof Float32Array ? "f32" : data instanceof Int32Array ? "i32" : "u32";
    const t = this.tensor(shape, dtype, name);
    if (data.length > 0) this.gpu.device.queue.writeBuffer(t.buffer, 0, data as Float32Array<ArrayBuffer>);
    return t;
  }

  /** Returns a tensor's buffer to the free list. Releasing twice is an error. */
  release(t: Tensor): void {
    if (!this.#live.delete(t.buffer)) {
      throw new Error(`Tensor ${t.name} released twice or not from this pool`);
    }
    this.liveBytes -= t.buffer.size;
    const list = this.#free.get(t.buffer.size) ?? [];
    list.push(t.buffer);
    this.#free.set(t.buffer.size, list);
  }

  /** Destroys every free buffer (live ones stay). */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.heldBytes -= b.size;
        b.destroy();
      }
    }
    this.#free.clear();
  }

  #allocate(bytes: number, name: string): GPUBuffer {
    this.heldBytes += bytes;
    return this.gpu.device.createBuffer({ size: bytes, usage: USAGE, label: name });
  }
}

/**
 * Splits `rows` rows of `rowBytes` bytes into contiguous chunks that each fit one binding of
 * `limitBytes` (128 MiB on lavapipe: a Qwen2.5 embedding of 151936×896 f32 needs 5 chunks).
 */
export function rowChunks(
  rows: number,
  rowBytes: number,
  limitBytes: number,
): { start: number; rows: number }[] {
  const perChunk = Math.max(1, Math.floor(limitBytes / rowBytes));
  const chunks: { start: number; rows: number }[] = [];
  for (let start = 0; start < rows; start += perChunk) {
    chunks.push({ start, rows: Math.min(perChunk, rows - start) });
  }
  return chunks;
}

/** A matrix split by rows into chunks that each fit one binding (embedding tables, LM heads). */
export interface RowChunked {
  readonly rows: number;
  readonly cols: number;
  readonly chunks: readonly { start: number; rows: number; tensor: Tensor }[];
}

/** Uploads a row-major `[rows × cols]` matrix as row chunks under the device's binding limit. */
export function uploadRowChunked(
  pool: TensorPool,
  data: Float32Array,
  rows: number,
  cols: number,
  name: string,
): RowChunked {
  const limit = pool.gpu.device.limits.maxStorageBufferBindingSize;
  const chunks = rowChunks(rows, cols * 4, limit).map(({ start, rows: n }) => ({
    start,
    rows: n,
    tensor: pool.upload(
      data.subarray(start * cols, (start + n) * cols),
      [n, cols],
      `${name}[${start}:${start + n}]`,
    ),
  }));
  return { rows, cols, chunks };
}

/** Allocates a row-chunked matrix (contents undefined; clear it before accumulating). */
export function allocRowChunked(pool: TensorPool, rows: number, cols: number, name: string): RowChunked {
  const limit = pool.gpu.device.limits.maxStorageBufferBindingSize;
  const chunks = rowChunks(rows, cols * 4, limit).map(({ start, rows: n }) => ({
    start,
    rows: n,
    tensor: pool.tensor([n, cols], "f32", `${name}[${start}:${start + n}]`),
  }));
  return { rows, cols, chunks };
}
