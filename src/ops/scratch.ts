/**
 * Scratch storage owned by an op (reduction partials, penalised logits), one growing buffer per
 * device and purpose. Safe to share between calls and recorders: an op writes its scratch before
 * reading it within its own recorded commands, and commands run in submission order.
 *
 * @example
 * ```ts
 * const partials = scratchBuffer(rec, "adamw.partials", 4 * count);
 * rec.dispatch(kernel, [grad, { buffer: partials }], [groups]);
 * ```
 *
 * @module
 */
import type { Recorder } from "../gpu/recorder.ts";

const buffers = new WeakMap<GPUDevice, Map<string, GPUBuffer>>();

/**
 * A storage buffer of at least `bytes` bytes for `purpose`. Growing replaces the buffer without
 * destroying the old one (already-recorded commands may still use it); it is freed with its last
 * reference.
 */
export function scratchBuffer(rec: Recorder, purpose: string, bytes: number): GPUBuffer {
  const device = rec.gpu.device;
  const byPurpose = buffers.get(device) ?? new Map<string, GPUBuffer>();
  buffers.set(device, byPurpose);
  const current = byPurpose.get(purpose);
  if (current && current.size >= bytes) return current;
  const size = Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, current ? current.size * 2 : 1))));
  const buffer = device.createBuffer({
    size,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    label: `scratch:${purpose}`,
  });
  byPurpose.set(purpose, buffer);
  return buffer;
}
