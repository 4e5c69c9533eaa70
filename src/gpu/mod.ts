/**
 * The WebGPU engine layer: device, tensors, pipelines, step recorder.
 *
 * @module
 */
export * from "./device.ts";
export * from "./engine.ts";
export * from "./pipelines.ts";
export * from "./recorder.ts";
export * from "./tensor.ts";
