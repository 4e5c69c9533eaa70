/**
 * Embedding lookup over a vocab-chunked table, `out[t,:] = scale·table[ids[t],:]`, and its
 * deterministic scatter-add gradient (CPU reference + GPU launchers).
 *
 * The gradient needs the token ids on the CPU at record time (they come from the data loader):
 * {@linkcode embeddingGradIndex} turns them into a CSR (unique id → ascending positions) so each
 * table row is summed by one invocation in a fixed order — no atomics, bit-identical every run.
 *
 * @example
 * ```ts
 * const index = embeddingGradIndex(rec, engine.pool, idsHost, table);
 * embeddingForward(rec, ids, table, hidden, { scale: Math.sqrt(d) });
 * // … backward of the layers above fills dHidden …
 * embeddingBackward(rec, index, dHidden, dTable, { scale: Math.sqrt(d) });
 * await rec.submit();
 * index.release();
 * ```
 *
 * @module
 */
import { params, type Recorder } from "../gpu/recorder.ts";
import type { RowChunked, Tensor, TensorPool } from "../gpu/tensor.ts";

const WG = 64;
/** Workgroups striding over tokens (or unique ids): enough for both cores, few enough to amortise start-up. */
const ROW_GROUPS = 256;

/** Widths divisible by 4 take the vec4 kernels, whose column count is in vec4s. */
function columns(cols: number): { suffix: string; lanes: number } {
  return cols % 4 === 0 ? { suffix: "_vec4", lanes: cols / 4 } : { suffix: "", lanes: cols };
}

/** CPU reference: `out[t,:] = scale·table[ids[t],:]` for a dense `[rows × cols]` table. */
export function embeddingForwardCpu(
  ids: ArrayLike<number>,
  table: ArrayLike<number>,
  cols: number,
  scale = 1,
): Float64Array {
  const out = new Float64Array(ids.length * cols);
  for (let t = 0; t < ids.length; t++) {
    for (let c = 0; c < cols; c++) out[t * cols + c] = scale * table[ids[t] * cols + c];
  }
  return out;
}

/** CPU reference backward: the dense `[rows × cols]` table gradient. */
export function embeddingBackwardCpu(
  ids: ArrayLike<number>,
  dOut: ArrayLike<number>,
  rows: number,
  cols: number,
  scale = 1,
): Float64Array {
  const dTable = new Float64Array(rows * cols);
  for (let t = 0; t < ids.length; t++) {
    for (let c = 0; c < cols; c++) dTable[ids[t] * cols + c] += scale * dOut[t * cols + c];
  }
  return dTable;
}

/**
 * Records the gather for every chunk of `table` into the preallocated `out [T × cols]`. Rows of ids
 * outside the table are left untouched (validate ids on the host; `embeddingGradIndex` does).
 */
export function embeddingForward(
  rec: Recorder,
  ids: Tensor,
  table: RowChunked,
  out: Tensor,
  { scale = 1 }: { scale?: number } = {},
): void {
  const tokens = ids.size;
  const { suffix, lanes } = columns(table.cols);
  const kernel = rec.kernel("embedding", `embedding_forward${suffix}`, { WG });
  for (const chunk of table.chunks) {
    rec.dispatch(
      kernel,
      [ids, chunk.tensor, out],
      [Math.ceil(lanes / WG), Math.min(tokens, ROW_GROUPS)],
      params([["u32", tokens], ["u32", lanes], ["i32", chunk.start], ["i32", chunk.rows], ["f32", scale]]),
    );
  }
}

/** The CSR of token positions per unique id, split by table chunk, on the GPU. */
export interface EmbeddingGradIndex {
  /** Chunk-local row of each unique id, grouped by chunk in chunk order. */
  readonly uniqueRows: Tensor;
  /** CSR offsets into `positions` (one more than the unique ids). */
  readonly offsets: Tensor;
  /** Token positions of each unique id, ascending. */
  readonly positions: Tensor;
  /** Per table chunk: the range `[first, first + count)` of its unique ids. */
  readonly chunkRanges: readonly { first: number; count: number }[];
  /** Returns the three tensors to the pool (after the step that uses them was recorded). */
  release(): void;
}

/**
 * Builds the gradient CSR for host token `ids` of a table chunked like `table` and records its
 * upload in step order (safe under gradient accumulation, where the pool reuses buffers).
 * Throws when an id lies outside the table.
 */
export function embeddingGradIndex(
  rec: Recorder,
  pool: TensorPool,
  ids: ArrayLike<number>,
  table: Pick<RowChunked, "rows" | "chunks">,
): EmbeddingGradIndex {
  const byId = new Map<number, number[]>();
  for (let t = 0; t < ids.length; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id >= table.rows) {
      throw new RangeError(`Embedding id ${id} at position ${t} is outside the ${table.rows}-row table`);
    }
    const list = byId.get(id);
    if (list) list.push(t);
    else byId.set(id, [t]);
  }
  const sortedIds = [...byId.keys()].sort((a, b) => a - b);
  const uniqueRows = new Int32Array(Math.max(1, sortedIds.length));
  const offsets = new Uint32Array(sortedIds.length + 1);
  const positions = new Uint32Array(Math.max(1, ids.length));
  const chunkRanges = table.chunks.map(() => ({ first: 0, count: 0 }));
  let chunk = 0;
  let filled = 0;
  sortedIds.forEach((id, u) => {
    while (id >= table.chunks[chunk].start + table.chunks[chunk].rows) {
      chunk++;
      chunkRanges[chunk].first = u;
    }
    chunkRanges[chunk].count++;
    uniqueRows[u] = id - table.chunks[chunk].start;
    for (const t of byId.get(id)!) positions[filled++] = t;
    offsets[u + 1] = filled;
  });
  const tensors = [
    rec.upload(pool, uniqueRows, [uniqueRows.length], "embedding.uniqueRows"),
    rec.upload(pool, offsets, [offsets.length], "embedding.offsets"),
    rec.upload(pool, positions, [positions.length], "embedding.positions"),
  ];
  return {
    uniqueRows: tensors[0],
    offsets: tensors[1],
    positions: tensors[2],
    chunkRanges,
    release: () => tensors.forEach((t) => pool.release(t)),
  };
}

/** Records `dTable[ids[t],:] += scale·dOut[t,:]` (accumulates; deterministic order). */
export function embeddingBackward(
  rec: Recorder,
  index: EmbeddingGradIndex,
  dOut: Tensor,
  dTable: RowChunked,
  { scale = 1 }: { scale?: number } = {},
): void {
  const { suffix, lanes } = columns(dTable.cols);
  const kernel = rec.kernel("embedding", `embedding_backward${suffix}`, { WG });
  dTable.chunks.forEach((chunk, i) => {
    const { first, count } = index.chunkRanges[i];
    rec.dispatch(
      kernel,
      [index.uniqueRows, index.offsets, index.positions, dOut, chunk.tensor],
      [Math.ceil(lanes / WG), Math.min(count, ROW_GROUPS)],
      params([["u32", count], ["u32", lanes], ["u32", first], ["f32", scale]]),
    );
  });
}
