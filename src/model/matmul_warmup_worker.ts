/**
 * Worker entry of {@linkcode compileMatmulsInWorker}: compiles the texture matmul pipelines of the
 * precision it is sent on a device of its own, then says so.
 *
 * @module
 */
import { getEngine } from "../gpu/engine.ts";
import { matmulWarmup } from "../ops/matmul.ts";

const scope = globalThis as unknown as {
  onmessage: (event: MessageEvent<"f32" | "bf16">) => void;
  postMessage: (message: unknown) => void;
};
scope.onmessage = async (event) => {
  await matmulWarmup(await getEngine(), event.data, "texture");
  scope.postMessage("done");
};
