/**
 * Shared test utilities for ops: seeded random data, closeness assertions with a written-down
 * tolerance, and central finite differences for checking CPU backward passes.
 *
 * @module
 */
import { existsSync } from "node:fs";

/** Deterministic uniform PRNG (mulberry32), so failures reproduce. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` values uniform in [-scale, scale). */
export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r() * 2 - 1) * scale;
  return out;
}

/**
 * Asserts `|actual − expected| ≤ atol + rtol·|expected|` elementwise, reporting the worst index.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: { atol: number; rtol?: number },
  what: string,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} ≠ expected ${expected.length}`);
  }
  const rtol = tolerance.rtol ?? 0;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    const excess = diff - (tolerance.atol + rtol * Math.abs(expected[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: index ${worst} got ${actual[worst]}, expected ${
        expected[worst]
      } (atol ${tolerance.atol}, rtol ${rtol})`,
    );
  }
}

/**
 * Central finite differences of a scalar function: d f / d x[i] ≈ (f(x+h) − f(x−h)) / 2h.
 * `f` must compute in f64 so h = 1e-6 is accurate to ~1e-8.
 */
export function numericalGradient(
  f: (x: Float64Array) => number,
  x: ArrayLike<number>,
  h = 1e-6,
): Float64Array {
  const xs = Float64Array.from(x);
  const grad = new Float64Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    const keep = xs[i];
    xs[i] = keep + h;
    const up = f(xs);
    xs[i] = keep - h;
    const down = f(xs);
    xs[i] = keep;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

/** Dot product used to turn a vector output into a scalar loss L = Σ w·y for gradient checks. */
export function weightedSum(y: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * w[i];
  return s;
}

/** True when a WebGPU adapter is available; GPU tests are skipped (with a message) otherwise. */
export const hasGpu: boolean = await (async () => {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = gpu ? await gpu.requestAdapter() : null;
  if (!adapter) {
    console.warn("No WebGPU adapter: GPU tests are skipped (apt-get install mesa-vulkan-drivers)");
  }
  return adapter !== null;
})();

/** True when `../shared` (fixtures and real data) sits beside the checkout. */
export function hasShared(path: string): boolean {
  const ok = existsSync(path);
  if (!ok) console.warn(`${path} is absent: tests that need it are skipped`);
  return ok;
}
