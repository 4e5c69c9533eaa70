/**
 * Compiled compute pipelines, cached by kernel file, entry point and override constants.
 *
 * WGSL lives in `kernels/<file>.wgsl`; pipelines are labelled `<file>:<entry>` so that any
 * validation error names the kernel. WGSL has no includes, so a line `// #include <name>` is
 * replaced by `kernels/<name>.wgsl` (once per module: helpers shared by several kernel files) and
 * a line `// #insert <name>` by that file every time (statements shared by several kernel bodies).
 * The LLVM JIT of lavapipe runs at the first dispatch, not here: warm-up means dispatching once
 * (see `Recorder`).
 *
 * @module
 */
import type { Gpu } from "./device.ts";

/** One compiled entry point. */
export interface Kernel {
  readonly pipeline: GPUComputePipeline;
  readonly label: string;
}

const KERNEL_DIR = new URL("../../kernels/", import.meta.url);

/** Caches shader modules per file and pipelines per (file, entry, constants). */
export class PipelineCache {
  #modules = new Map<string, GPUShaderModule>();
  #pipelines = new Map<string, Kernel>();
  /** Wall milliseconds spent creating modules and pipelines. */
  compileMs = 0;

  constructor(readonly gpu: Gpu) {}

  /** Number of distinct pipelines compiled so far. */
  get size(): number {
    return this.#pipelines.size;
  }

  /**
   * Returns the pipeline for `entry` in `kernels/<file>.wgsl`, specialised by override
   * `constants` (workgroup sizes, tile sizes, feature switches).
   */
  get(file: string, entry: string, constants: Record<string, number> = {}): Kernel {
    const key = `${file}:${entry}:${JSON.stringify(constants)}`;
    const cached = this.#pipelines.get(key);
    if (cached) return cached;
    const start = performance.now();
    const label = `${file}:${entry}`;
    const pipeline = this.gpu.device.createComputePipeline({
      label,
      layout: "auto",
      compute: { module: this.#module(file), entryPoint: entry, constants },
    });
    this.gpu.throwIfFailed(`Kernel ${label} failed to compile`);
    const kernel = { pipeline, label };
    this.#pipelines.set(key, kernel);
    this.compileMs += performance.now() - start;
    return kernel;
  }

  #module(file: string): GPUShaderModule {
    let module = this.#modules.get(file);
    if (!module) {
      module = this.gpu.device.createShaderModule({ label: file, code: kernelSource(file) });
      this.#modules.set(file, module);
    }
    return module;
  }
}

const DIRECTIVE = /^\/\/ #(include|insert) ([a-z0-9_]+)$/;

/**
 * The WGSL of `<dir>/<file>.wgsl` (default `kernels/`) with its `// #include <name>` lines
 * replaced by `<dir>/<name>.wgsl`, each file at most once (a repeated or circular include becomes
 * an empty line), and its `// #insert <name>` lines by `<dir>/<name>.wgsl` every time.
 */
export function kernelSource(
  file: string,
  dir: URL = KERNEL_DIR,
  included = new Set<string>([file]),
): string {
  const code = Deno.readTextFileSync(new URL(`${file}.wgsl`, dir));
  return code.split("\n").map((line) => {
    const [, directive, name] = DIRECTIVE.exec(line.trim()) ?? [];
    if (name === undefined) return line;
    if (directive === "insert") return kernelSource(name, dir, included);
    if (included.has(name)) return "";
    included.add(name);
    return kernelSource(name, dir, included);
  }).join("\n");
}
