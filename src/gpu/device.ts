/**
 * The one WebGPU device of the process: preflight, explicit limits, and error surfacing.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * const gpu = await getGpu();
 * console.log(gpu.info.description, gpu.info.isCpu);
 * ```
 *
 * @module
 */

/** What `r2ec info` prints and every benchmark row carries. */
export interface GpuInfo {
  description: string;
  vendor: string;
  architecture: string;
  /** `vulkan` or `gl`, as chosen through `DENO_WEBGPU_BACKEND` (Deno ignores `WGPU_BACKEND`). */
  backend: string;
  /** True for software adapters (llvmpipe/lavapipe, SwiftShader, WARP): timings are CPU timings. */
  isCpu: boolean;
  features: string[];
  requestedLimits: Record<string, number>;
}

/** A WebGPU failure (validation, out of memory, device loss), naming the kernel or step involved. */
export class GpuError extends Error {
  override name = "GpuError";
}

/** Raised when no adapter exists; the message names the remedy. */
export class NoAdapterError extends Error {
  override name = "NoAdapterError";
}

/** The device handle shared by every module. */
export interface Gpu {
  device: GPUDevice;
  info: GpuInfo;
  /** Uncaptured errors since the last check; `throwIfFailed()` turns them into a `GpuError`. */
  throwIfFailed(context: string): void;
}

/**
 * Limits r2ec asks for. Each is raised to the adapter's own maximum: large storage bindings for
 * vocab chunks, 16384 texture rows for packed matmul operands, many storage buffers per stage for
 * fused backward kernels.
 */
const RAISED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupsPerDimension",
  "maxTextureDimension2D",
  "maxUniformBufferBindingSize",
  "maxBindGroups",
] as const;

const CPU_ADAPTER = /llvmpipe|lavapipe|swiftshader|warp|software/i;

let shared: Promise<Gpu> | undefined;

/** One line naming the adapter and backend, and saying so when it is a CPU adapter. */
export function describeGpu(info: GpuInfo): string {
  const kind = info.isCpu ? ": a CPU (software) adapter, timings are CPU timings" : "";
  return `WebGPU: ${info.description} via ${info.backend}${kind}`;
}

/** Returns the process-wide device, creating it on first use. */
export function getGpu(): Promise<Gpu> {
  shared ??= createGpu();
  return shared;
}

async function createGpu(): Promise<Gpu> {
  const gpuApi = (navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = gpuApi ? await gpuApi.requestAdapter({ powerPreference: "high-performance" }) : null;
  if (!adapter) {
    throw new NoAdapterError(
      "No WebGPU adapter found: install a driver (on Debian: apt-get install -y mesa-vulkan-drivers) or set DENO_WEBGPU_BACKEND=gl",
    );
  }
  const requestedLimits: Record<string, number> = {};
  const adapterLimits = adapter.limits as unknown as Record<string, number>;
  for (const name of RAISED_LIMITS) {
    if (typeof adapterLimits[name] === "number") requestedLimits[name] = adapterLimits[name];
  }
  const features = [...adapter.features].filter((f) => f === "shader-f16" || f === "timestamp-query");
  const device = await adapter.requestDevice({
    requiredLimits: requestedLimits,
    requiredFeatures: features as GPUFeatureName[],
  });
  const info = adapter.info;
  const description = info.description || info.device || info.vendor || "unknown adapter";
  const failures: string[] = [];
  device.addEventListener("uncapturederror", (event) => {
    failures.push((event as GPUUncapturedErrorEvent).error.message.split("\n")[0]);
  });
  device.lost.then((lost) => {
    if (lost.reason !== "destroyed") failures.push(`device lost: ${lost.message}`);
  });
  return {
    device,
    info: {
      description,
      vendor: info.vendor,
      architecture: info.architecture,
      backend: detectBackend(adapter),
      isCpu: CPU_ADAPTER.test(description) ||
        Boolean((adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter),
      features,
      requestedLimits,
    },
    throwIfFailed(context: string) {
      if (failures.length === 0) return;
      const first = failures.splice(0).join("; ");
      throw new GpuError(`${context}: ${first}`);
    },
  };
}

/**
 * The backend in use: `DENO_WEBGPU_BACKEND` when set (Deno ignores `WGPU_BACKEND`). Unset, wgpu
 * tries Vulkan first and falls back to GL; only its Vulkan path offers `shader-f16`, which tells
 * the two apart (reading /proc/self/maps would need --allow-all in Deno).
 */
function detectBackend(adapter: GPUAdapter): string {
  const requested = Deno.env.get("DENO_WEBGPU_BACKEND");
  if (requested) return requested;
  return adapter.features.has("shader-f16") ? "vulkan" : "gl (inferred: no shader-f16)";
}
