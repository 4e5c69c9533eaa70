/**
 * Matmul benchmark cases: the three layouts at transformer shapes (issue 2 targets: ≥ 50 GFLOP/s
 * at 1024³, ≥ 35 at every shape with M ≥ 512). Shapes read M×K×N: C[M×N] = op(A)·op(B) with
 * inner dimension K, so 2048×256×8192 is the LM-head forward of 2048 tokens, d 256, vocab 8192.
 *
 * @module
 */
import { type MatmulPath, matmulVia } from "../ops/matmul.ts";
import { type BenchCase, benchCase } from "./harness.ts";

/** [M, K, N]: the list plus the reference decoder's FF (768) and square-ish projections. */
export const MATMUL_SHAPES: readonly [number, number, number][] = [
  [1024, 1024, 1024],
  [512, 256, 1024],
  [2048, 1024, 256],
  [2048, 256, 8192],
  [1024, 256, 768],
  [1024, 768, 256],
  [1024, 256, 256],
  // Decoding one token: a row times a 4096 × 1024 weight (memory-bound; bytes reported too).
  [1, 1024, 4096],
];

const LAYOUTS = { nn: {}, nt: { transB: true }, tn: { transA: true } } as const;

/**
 * One case per layout and shape; `path` forces a kernel path (default: what `matmul` picks) and
 * `precision` selects the opt-in bf16 operands.
 */
export function matmulCases(
  path: MatmulPath = "auto",
  shapes: readonly [number, number, number][] = MATMUL_SHAPES,
  precision: "f32" | "bf16" = "f32",
): BenchCase[] {
  const suffix = (path === "auto" ? "" : `.${path}`) + (precision === "f32" ? "" : `.${precision}`);
  return shapes.flatMap(([m, k, n]) =>
    Object.entries(LAYOUTS).map(([layout, flags]) =>
      benchCase({
        name: `matmul.${layout}${suffix}`,
        shape: `${m}×${k}×${n}`,
        flops: 2 * m * n * k,
        bytes: 4 * (m * k + k * n + m * n),
        setup: (engine) => ({
          a: engine.pool.upload(randomValues(m * k), [m * k], "bench.a"),
          b: engine.pool.upload(randomValues(k * n), [k * n], "bench.b"),
          c: engine.pool.tensor([m, n], "f32", "bench.c"),
        }),
        record: (rec, s) => matmulVia(path, rec, s.a, s.b, s.c, { m, n, k, precision, ...flags }),
        teardown: (engine, s) => [s.a, s.b, s.c].forEach((t) => engine.pool.release(t)),
      })
    )
  );
}

function randomValues(n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.random() * 2 - 1;
  return out;
}
