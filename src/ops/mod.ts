/**
 * Every op: CPU reference (the spec, f64 accumulation) and GPU launcher, forward and backward.
 *
 * @module
 */
export * from "./activations.ts";
export * from "./adamw.ts";
export * from "./attention.ts";
export * from "./embedding.ts";
export * from "./lm_head.ts";
export * from "./lora.ts";
export * from "./matmul.ts";
export * from "./ranking.ts";
export * from "./residual.ts";
export * from "./rmsnorm.ts";
export * from "./rope.ts";
export * from "./sampling.ts";
export * from "./scores.ts";
