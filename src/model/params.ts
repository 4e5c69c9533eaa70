/**
 * Model parameters on the GPU: every HF tensor as a {@linkcode RowChunked} matrix (one chunk for
 * all but vocabulary-sized ones), with an optional gradient of the same layout and a trainable
 * flag. Row chunks let one code path read, write, save and optimise the embedding, the LM head
 * and the small tensors alike.
 *
 * @module
 */
import type { Recorder } from "../gpu/recorder.ts";
import {
  allocRowChunked,
  type RowChunked,
  type Tensor,
  type TensorPool,
  uploadRowChunked,
} from "../gpu/tensor.ts";

/** One named parameter tensor (HF name and checkpoint shape) and its gradient. */
export interface Param {
  readonly name: string;
  /** Checkpoint shape: `[out, in]` for weights, `[n]` for norms and biases. */
  readonly shape: readonly number[];
  readonly value: RowChunked;
  /** Accumulated gradient (allocated by {@linkcode ensureGrad}); null until then. */
  grad: RowChunked | null;
  /** Whether backward computes this parameter's gradient. */
  trainable: boolean;
  /**
   * Counts the writes of `value` ({@linkcode markWritten}): what was derived from the values
   * (the bf16 packs `weight_packs.ts` keeps across steps) is stale once it moves.
   */
  version: number;
}

/** Rows × cols view of a checkpoint shape (vectors are one row). */
function matrixOf(shape: readonly number[]): [number, number] {
  return shape.length === 1 ? [1, shape[0]] : [shape[0], shape.slice(1).reduce((a, b) => a * b, 1)];
}

/** Uploads `data` (laid out like the checkpoint tensor) as a parameter. */
export function uploadParam(
  pool: TensorPool,
  name: string,
  shape: readonly number[],
  data: Float32Array,
): Param {
  const [rows, cols] = matrixOf(shape);
  return {
    name,
    shape: [...shape],
    value: uploadRowChunked(pool, data, rows, cols, name),
    grad: null,
    trainable: true,
    version: 0,
  };
}

/**
 * Records that `p.value` was (or is being) written: every writer of a parameter's values calls
 * it (AdamW, LoRA merge and unmerge, {@linkcode writeParam}), so kept packs of the old values are
 * rebuilt at their next use.
 */
export function markWritten(p: Param): void {
  p.version++;
}

/** The single tensor of a parameter that is never split (everything but vocabulary-sized matrices). */
export function whole(m: RowChunked): Tensor {
  if (m.chunks.length !== 1) {
    throw new Error(`Tensor ${m.chunks[0]?.tensor.name} is split into ${m.chunks.length} chunks`);
  }
  return m.chunks[0].tensor;
}

/** Allocates the gradient of `p` if it has none yet (contents undefined until cleared). */
export function ensureGrad(pool: TensorPool, p: Param): RowChunked {
  p.grad ??= allocRowChunked(pool, p.value.rows, p.value.cols, `${p.name}.grad`);
  return p.grad;
}

/** Records zero-filling of every chunk. */
export function clearChunks(rec: Recorder, m: RowChunked): void {
  for (const chunk of m.chunks) rec.clear(chunk.tensor);
}

/** Schedules a read of a whole row-chunked matrix; resolves (after submit) to its row-major values. */
export function readChunks(rec: Recorder, m: RowChunked): Promise<Float32Array> {
  const parts = m.chunks.map((chunk) => rec.read(chunk.tensor));
  return Promise.all(parts).then((values) => {
    const out = new Float32Array(m.rows * m.cols);
    m.chunks.forEach((chunk, i) => out.set(values[i], chunk.start * m.cols));
    return out;
  });
}

/** Overwrites a row-chunked matrix with row-major `data` (queued before the next submit). */
export function writeChunks(pool: TensorPool, m: RowChunked, data: Float32Array): void {
  for (const chunk of m.chunks) {
    pool.gpu.device.queue.writeBuffer(
      chunk.tensor.buffer,
      0,
      data.subarray(chunk.start * m.cols, (chunk.start + chunk.rows) * m.cols) as Float32Array<ArrayBuffer>,
    );
  }
}

/** Overwrites a parameter's values with row-major `data` (see {@linkcode writeChunks}). */
export function writeParam(pool: TensorPool, p: Param, data: Float32Array): void {
  writeChunks(pool, p.value, data);
  markWritten(p);
}

/** Returns every chunk of a row-chunked matrix to the pool. */
export function releaseChunks(pool: TensorPool, m: RowChunked): void {
  for (const chunk of m.chunks) pool.release(chunk.tensor);
}
