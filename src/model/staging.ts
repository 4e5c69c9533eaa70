/**
 * Host → GPU writes ordered inside a recorded step.
 *
 * `queue.writeBuffer` runs before the whole command buffer of the next submit, so writing into a
 * pool tensor that an earlier command of the same step also used (the pool hands released buffers
 * out again within a step) would be overwritten by that command. A copy from a fresh mapped
 * staging buffer is recorded in the command stream instead, so it lands exactly where it is
 * recorded.
 *
 * @module
 */
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor, TensorPool } from "../gpu/tensor.ts";

/** A pool tensor holding `data`, written in step order (see `Recorder.write`). */
export function uploadInStep(
  rec: Recorder,
  pool: TensorPool,
  data: Float32Array | Int32Array | Uint32Array,
  shape: readonly number[],
  name: string,
): Tensor {
  const dtype = data instanceof Int32Array ? "i32" : data instanceof Uint32Array ? "u32" : "f32";
  const t = pool.tensor(shape, dtype, name);
  rec.write(t, data);
  return t;
}

/**
 * The pool as seen by code that uploads with `pool.upload`: the same pool, except that uploads are
 * written in step order. For helpers such as `embeddingGradIndex` called in the middle of a step.
 */
export function stepOrderedPool(rec: Recorder, pool: TensorPool): TensorPool {
  return new Proxy(pool, {
    get(target, key) {
      if (key === "upload") {
        return (data: Float32Array | Int32Array | Uint32Array, shape: readonly number[], name = "upload") =>
          uploadInStep(rec, target, data, shape, name);
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
