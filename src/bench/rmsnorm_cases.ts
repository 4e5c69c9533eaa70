/**
 * RMSNorm benchmark cases: forward and backward (dx + deterministic dw) at the reference decoder's
 * 1024 tokens × d 256 and at a Qwen2.5-0.5B-sized 4096 × 896. GB/s counts nominal traffic (each
 * tensor read or written once per kernel), so it compares with compute-notes §4's 2–5 GB/s.
 *
 * @module
 */
import type { Engine } from "../gpu/engine.ts";
import { rmsnormBackward, rmsnormForward } from "../ops/rmsnorm.ts";
import { type BenchCase, benchCase } from "./harness.ts";

const SHAPES: readonly [rows: number, cols: number][] = [[1024, 256], [4096, 896]];

/** Forward and backward cases per shape. */
export function rmsnormCases(): BenchCase[] {
  return SHAPES.flatMap(([rows, cols]) => {
    const shape = { rows, cols, offset: 0 };
    const setup = (engine: Engine) => ({
      x: engine.pool.zeros([rows, cols]),
      w: engine.pool.zeros([cols]),
      y: engine.pool.zeros([rows, cols]),
      rstd: engine.pool.zeros([rows]),
      dx: engine.pool.zeros([rows, cols]),
      dw: engine.pool.zeros([cols]),
    });
    type State = ReturnType<typeof setup>;
    const teardown = (engine: Engine, s: State) => Object.values(s).forEach((t) => engine.pool.release(t));
    return [
      benchCase({
        name: "rmsnorm.forward",
        shape: `${rows}×${cols}`,
        bytes: 2 * rows * cols * 4,
        setup,
        record: (rec, s: State) => rmsnormForward(rec, s.x, s.w, s.y, s.rstd, { ...shape, eps: 1e-6 }),
        teardown,
      }),
      benchCase({
        // dx reads dy, x and read-modify-writes dx; dw reads dy and x again.
        name: "rmsnorm.backward",
        shape: `${rows}×${cols}`,
        bytes: 6 * rows * cols * 4,
        setup,
        record: (rec, s: State) => rmsnormBackward(rec, s.y, s.x, s.w, s.rstd, s.dx, s.dw, shape),
        teardown,
      }),
    ];
  });
}
