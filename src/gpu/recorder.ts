/**
 * The step recorder: a whole step (forward, backward, optimizer; or one decode step) is encoded
 * into one command buffer, submitted once, and only the tensors asked for are read back — one
 * CPU↔GPU sync per step (each sync costs ≥ 10 ms on lavapipe; a batched dispatch ~50 µs).
 *
 * Binding convention for every kernel: `@group(0) @binding(0)` is the uniform parameter block
 * when the entry point has one; storage buffers (and textures) follow from binding 1 in the
 * order given to {@linkcode Recorder.dispatch}. Pipelines use the auto layout, so pass exactly
 * the bindings the entry point uses.
 *
 * @example
 * ```ts
 * const rec = new Recorder(gpu, kernels);
 * rec.dispatch(kernels.get("add", "add_forward"), [a, b, out], [groups, 1, 1], params);
 * const out = rec.read(out);
 * await rec.submit();
 * console.log(await out);
 * ```
 *
 * @module
 */
import type { Gpu } from "./device.ts";
import type { Kernel, PipelineCache } from "./pipelines.ts";
import type { Tensor, TensorPool } from "./tensor.ts";

/** Anything a kernel binding can take. */
export type Binding = Tensor | GPUTextureView | { buffer: GPUBuffer; offset?: number; size?: number };

/** Uniform blocks are packed into one buffer per submit at this alignment. */
const UNIFORM_ALIGN = 256;
const UNIFORM_CHUNK = 64 * 1024;

interface PendingRead {
  staging: GPUBuffer;
  resolve: (data: ArrayBuffer) => void;
}

/** Records dispatches and copies into one command encoder; `submit()` runs them with one sync. */
export class Recorder {
  #encoder: GPUCommandEncoder;
  #pass: GPUComputePassEncoder | undefined;
  #uniformBytes: Uint8Array<ArrayBuffer>[] = [];
  #uniformBuffers: GPUBuffer[] = [];
  #uniformOffset = 0;
  #reads: PendingRead[] = [];
  #kernels: string[] = [];
  #stagingBuffers: GPUBuffer[] = [];
  #afterSubmit: (() => void)[] = [];
  /** Dispatches recorded so far. */
  dispatches = 0;

  constructor(readonly gpu: Gpu, readonly kernels: PipelineCache) {
    this.#encoder = gpu.device.createCommandEncoder();
  }

  /** Gets (and caches) a kernel; a shortcut for `kernels.get`. */
  kernel(file: string, entry: string, constants?: Record<string, number>): Kernel {
    return this.kernels.get(file, entry, constants);
  }

  /**
   * Records one dispatch. `params` (if the entry point declares a uniform block) is copied now,
   * so the caller may reuse its array.
   */
  dispatch(
    kernel: Kernel,
    bindings: Binding[],
    workgroups: readonly [number, number?, number?],
    params?: ArrayBufferView | ArrayBuffer,
  ): void {
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    const max = this.gpu.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) {
      throw new RangeError(`Kernel ${kernel.label}: ${x}×${y}×${z} workgroups exceed ${max} per dimension`);
    }
    const entries: GPUBindGroupEntry[] = [];
    if (params) entries.push({ binding: 0, resource: this.#uniform(params) });
    bindings.forEach((b, i) => entries.push({ binding: i + 1, resource: resource(b) }));
    const group = this.gpu.device.createBindGroup({
      label: kernel.label,
      layout: kernel.pipeline.getBindGroupLayout(0),
      entries,
    });
    this.#pass ??= this.#encoder.beginComputePass();
    this.#pass.setPipeline(kernel.pipeline);
    this.#pass.setBindGroup(0, group);
    this.#pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
    this.#kernels.push(kernel.label);
  }

  /** The raw encoder for copies (ends the open compute pass). */
  encoder(): GPUCommandEncoder {
    this.#pass?.end();
    this.#pass = undefined;
    return this.#encoder;
  }

  /** Records a buffer-to-buffer copy of `bytes` bytes. */
  copy(src: Tensor, dst: Tensor, bytes = src.size * 4, srcOffset = 0, dstOffset = 0): void {
    this.encoder().copyBufferToBuffer(src.buffer, srcOffset, dst.buffer, dstOffset, bytes);
  }

  /**
   * Records a host → GPU write at this point of the step. Unlike `queue.writeBuffer` (which runs
   * before the whole command buffer), the copy lands in order, so a pool buffer reused within the
   * step receives the data after its earlier users are done with it.
   */
  write(t: Tensor, data: Float32Array | Int32Array | Uint32Array): void {
    if (data.length > t.size) {
      throw new RangeError(`Tensor ${t.name} holds ${t.size} values, cannot write ${data.length}`);
    }
    if (data.length === 0) return;
    const bytes = Math.ceil(data.byteLength / 4) * 4;
    const staging = this.gpu.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    staging.unmap();
    this.encoder().copyBufferToBuffer(staging, 0, t.buffer, 0, bytes);
    this.#stagingBuffers.push(staging);
  }

  /** A tensor from `pool` holding `data`, written in step order (see {@linkcode Recorder.write}). */
  upload(
    pool: TensorPool,
    data: Float32Array | Int32Array | Uint32Array,
    shape: readonly number[],
    name: string,
  ): Tensor {
    const dtype = data instanceof Int32Array ? "i32" : data instanceof Uint32Array ? "u32" : "f32";
    const t = pool.tensor(shape, dtype, name);
    this.write(t, data);
    return t;
  }

  /** Records zero-filling of a tensor. */
  clear(t: Tensor): void {
    if (t.size > 0) this.encoder().clearBuffer(t.buffer, 0, t.size * 4);
  }

  /** Schedules a read of `t` (or of `count` elements from `offset`); resolves after `submit()`. */
  read(t: Tensor, offset = 0, count = t.size - offset): Promise<Float32Array> {
    return this.readBytes(t.buffer, offset * 4, count * 4).then((b) => new Float32Array(b));
  }

  /** Like `read` for integer tensors. */
  readInt(t: Tensor, offset = 0, count = t.size - offset): Promise<Int32Array> {
    return this.readBytes(t.buffer, offset * 4, count * 4).then((b) => new Int32Array(b));
  }

  /** Schedules a raw read of `bytes` bytes from `buffer`. */
  readBytes(buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.gpu.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    if (bytes > 0) this.encoder().copyBufferToBuffer(buffer, offset, staging, 0, size);
    return new Promise((resolve) =>
      this.#reads.push({ staging, resolve: (b) => resolve(b.slice(0, bytes)) })
    );
  }

  /**
   * Runs `fn` once the commands recorded so far have run without error (at the end of the next
   * successful `submit()`), e.g. to mark a cached result as written.
   */
  afterSubmit(fn: () => void): void {
    this.#afterSubmit.push(fn);
  }

  /**
   * Writes the uniforms, submits the command buffer, waits once, resolves the scheduled reads,
   * and throws a `GpuError` naming the kernels of this step if WebGPU reported an error.
   */
  async submit(): Promise<void> {
    this.#pass?.end();
    this.#pass = undefined;
    const device = this.gpu.device;
    this.#flushUniformChunk();
    this.#uniformBytes.forEach((bytes, i) => device.queue.writeBuffer(this.#uniformBuffers[i], 0, bytes));
    device.pushErrorScope("validation");
    device.queue.submit([this.#encoder.finish()]);
    const errorPromise = device.popErrorScope();
    if (this.#reads.length > 0) {
      await Promise.all(this.#reads.map((r) => r.staging.mapAsync(GPUMapMode.READ)));
    } else {
      await device.queue.onSubmittedWorkDone();
    }
    const error = await errorPromise;
    for (const b of [...this.#uniformBuffers, ...this.#stagingBuffers]) b.destroy();
    this.#stagingBuffers = [];
    this.gpu.throwIfFailed(`Step with kernels ${summarise(this.#kernels)} failed`);
    if (error) {
      throw new Error(
        `Step with kernels ${summarise(this.#kernels)} failed: ${error.message.split("\n")[0]}`,
      );
    }
    for (const r of this.#reads) {
      r.resolve(r.staging.getMappedRange().slice(0));
      r.staging.destroy();
    }
    this.#reads = [];
    const done = this.#afterSubmit;
    this.#afterSubmit = [];
    for (const fn of done) fn();
    this.#encoder = device.createCommandEncoder();
    this.#uniformBytes = [];
    this.#uniformBuffers = [];
    this.#kernels = [];
    this.#uniformOffset = 0;
  }

  #uniform(params: ArrayBufferView | ArrayBuffer): GPUBufferBinding {
    const bytes = params instanceof ArrayBuffer
      ? new Uint8Array(params)
      : new Uint8Array(params.buffer, params.byteOffset, params.byteLength);
    const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
    if (this.#uniformBytes.length === 0 || this.#uniformOffset + size > UNIFORM_CHUNK) {
      this.#newUniformChunk();
    }
    const chunk = this.#uniformBytes[this.#uniformBytes.length - 1];
    chunk.set(bytes, this.#uniformOffset);
    const binding = {
      buffer: this.#uniformBuffers[this.#uniformBuffers.length - 1],
      offset: this.#uniformOffset,
      size,
    };
    this.#uniformOffset += Math.ceil(size / UNIFORM_ALIGN) * UNIFORM_ALIGN;
    return binding;
  }

  #newUniformChunk(): void {
    this.#uniformBytes.push(new Uint8Array(UNIFORM_CHUNK));
    this.#uniformBuffers.push(
      this.gpu.device.createBuffer({
        size: UNIFORM_CHUNK,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      }),
    );
    this.#uniformOffset = 0;
  }

  #flushUniformChunk(): void {
    // Only the used prefix of the last chunk needs uploading.
    const last = this.#uniformBytes.length - 1;
    if (last >= 0) {
      this.#uniformBytes[last] = this.#uniformBytes[last].subarray(0, Math.max(16, this.#uniformOffset));
    }
  }
}

function resource(b: Binding): GPUBindingResource {
  if ("shape" in b) return { buffer: b.buffer, size: Math.max(4, b.size * 4) };
  if ("buffer" in b) return b;
  return b;
}

function summarise(labels: string[]): string {
  const unique = [...new Set(labels)];
  return unique.length <= 6
    ? unique.join(", ")
    : `${unique.slice(0, 6).join(", ")} and ${unique.length - 6} more`;
}

/** Packs a parameter block: numbers listed as `u32`, `i32` or `f32` fields in declaration order. */
export function params(fields: [kind: "u32" | "i32" | "f32", value: number][]): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buf);
  fields.forEach(([kind, value], i) => {
    if (kind === "f32") view.setFloat32(i * 4, value, true);
    else if (kind === "i32") view.setInt32(i * 4, value, true);
    else view.setUint32(i * 4, value, true);
  });
  return buf;
}
