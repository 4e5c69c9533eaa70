/**
 * Cold warm-up on two threads. llvmpipe JITs a pipeline at its first dispatch on the thread that
 * submits it, so a one-thread warm-up pays every JIT in a row (the texture matmul kernel alone
 * takes ~1.5 s on an empty Mesa cache). A worker with its own device compiles that kernel and its
 * packs meanwhile, and Mesa's on-disk shader cache hands the results to this thread's device in
 * milliseconds. Without that cache (`MESA_SHADER_CACHE_DISABLE`, an unwritable cache folder) the
 * worker's work is lost and the warm-up takes as long as on one thread; it is never wrong.
 *
 * @module
 */
import type { Engine } from "../gpu/engine.ts";
import { Recorder } from "../gpu/recorder.ts";
import type { MatmulPrecision } from "./linear.ts";

/**
 * Whether the worker compiles this kernel: the texture matmul kernel and its packs, i.e. what
 * `matmulWarmup`'s `"texture"` part dispatches.
 */
export function compiledByWorker(label: string): boolean {
  return label.startsWith("matmul_tex:") || label.startsWith("matmul_pack:");
}

/**
 * Starts a worker that compiles the pipelines {@linkcode compiledByWorker} names, for
 * `precision`, on a device of its own; resolves when it is done, failed or could not start (the
 * caller then compiles them itself).
 */
export function compileMatmulsInWorker(precision: MatmulPrecision): Promise<void> {
  let worker: Worker;
  try {
    worker = new Worker(new URL("./matmul_warmup_worker.ts", import.meta.url), { type: "module" });
  } catch {
    return Promise.resolve(); // No worker allowed here: the caller's thread compiles them
  }
  return new Promise((resolve) => {
    const finish = () => {
      worker.terminate();
      resolve();
    };
    worker.onmessage = finish;
    worker.onerror = (event) => {
      event.preventDefault();
      finish();
    };
    worker.postMessage(precision);
  });
}

/** A recorder that drops the dispatches of some kernels: the rest of a step gets compiled. */
export class RecorderWithout extends Recorder {
  constructor(engine: Engine, readonly skip: (label: string) => boolean) {
    super(engine.gpu, engine.kernels);
  }

  override dispatch(...args: Parameters<Recorder["dispatch"]>): void {
    if (!this.skip(args[0].label)) super.dispatch(...args);
  }
}
