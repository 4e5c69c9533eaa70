/**
 * The key/value cache of a batch being generated: per block, K and V in the attention op's cache
 * layout `[batch × capacity × kvHeads × headDim]`, plus each sequence's filled length.
 *
 * @module
 */
import type { TensorPool } from "../gpu/tensor.ts";
import type { ModelConfig } from "./config.ts";
import type { BlockCache } from "./layers.ts";

/** K/V tensors for every block of a model, for `batch` sequences of up to `capacity` tokens. */
export class KvCache {
  readonly blocks: BlockCache[];

  constructor(
    readonly pool: TensorPool,
    config: ModelConfig,
    readonly batch: number,
    /** Tokens per sequence the cache holds (prompt + new tokens). */
    readonly capacity: number,
  ) {
    const shape = [batch, capacity, config.numKvHeads, config.headDim];
    this.blocks = Array.from({ length: config.numLayers }, (_, i) => ({
      k: pool.tensor(shape, "f32", `kv_cache.${i}.k`),
      v: pool.tensor(shape, "f32", `kv_cache.${i}.v`),
    }));
  }

  /** Returns every cache tensor to the pool. */
  release(): void {
    for (const { k, v } of this.blocks) {
      this.pool.release(k);
      this.pool.release(v);
    }
  }
}
