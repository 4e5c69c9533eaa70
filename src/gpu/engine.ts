/**
 * The engine: device + tensor pool + pipeline cache, created once per process.
 *
 * @example
 * ```ts
 * import { getEngine } from "./engine.ts";
 * const engine = await getEngine();
 * const rec = engine.recorder();
 * ```
 *
 * @module
 */
import { getGpu, type Gpu } from "./device.ts";
import { PipelineCache } from "./pipelines.ts";
import { Recorder } from "./recorder.ts";
import { type Tensor, TensorPool } from "./tensor.ts";

/** Everything an op launcher needs. */
export class Engine {
  readonly pool: TensorPool;
  readonly kernels: PipelineCache;

  constructor(readonly gpu: Gpu) {
    this.pool = new TensorPool(gpu);
    this.kernels = new PipelineCache(gpu);
  }

  /** A fresh recorder for one step. */
  recorder(): Recorder {
    return new Recorder(this.gpu, this.kernels);
  }

  /** Reads a tensor back with its own submit (one sync): for tests and tools, not inside a step. */
  async read(t: Tensor): Promise<Float32Array> {
    const rec = this.recorder();
    const out = rec.read(t);
    await rec.submit();
    return out;
  }
}

let shared: Promise<Engine> | undefined;

/** The process-wide engine. */
export function getEngine(): Promise<Engine> {
  shared ??= getGpu().then((gpu) => new Engine(gpu));
  return shared;
}
