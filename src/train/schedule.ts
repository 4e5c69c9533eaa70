/**
 * Learning-rate schedules: constant or cosine decay, each with linear warm-up.
 *
 * @example
 * ```ts
 * learningRate({ lr: 1e-3, schedule: "cosine", warmupSteps: 10, maxSteps: 100, minLrRatio: 0.1 }, 55);
 * ```
 *
 * @module
 */

/** Schedule settings, named as in the training config. */
export interface ScheduleConfig {
  lr: number;
  schedule: "constant" | "cosine";
  warmupSteps: number;
  maxSteps: number;
  /** Cosine decays to `lr · minLrRatio` at `maxSteps`. */
  minLrRatio: number;
}

/** The learning rate for optimizer step `step` (0-based). */
export function learningRate(c: ScheduleConfig, step: number): number {
  if (c.warmupSteps > 0 && step < c.warmupSteps) return (c.lr * (step + 1)) / c.warmupSteps;
  if (c.schedule === "constant") return c.lr;
  const span = Math.max(1, c.maxSteps - c.warmupSteps);
  const progress = Math.min(1, (step - c.warmupSteps) / span);
  const min = c.lr * c.minLrRatio;
  return min + 0.5 * (c.lr - min) * (1 + Math.cos(Math.PI * progress));
}
