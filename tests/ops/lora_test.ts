import { getEngine } from "../../src/gpu/engine.ts";
import {
  loraBackward,
  loraBackwardCpu,
  loraForward,
  loraForwardCpu,
  loraSavedSize,
  type LoraShape,
} from "../../src/ops/lora.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, weightedSum } from "./check.ts";

// Tolerance: every GPU value is an f32 sum of at most 256 products of values ≤ 1 in magnitude
// (then scaled by ≤ 2 and summed over ≤ 6 ranks): rounding stays below ~1e-5 of the magnitudes
// here; a wrong row, rank or feature is off by O(1).
const TOL = { atol: 2e-5, rtol: 1e-5 };

Deno.test("loraBackwardCpu() matches central finite differences", () => {
  const shape = { rows: 3, inFeatures: 4, outFeatures: 8, rank: 2, scale: 1.5 };
  const x = randomArray(12, 1), a = randomArray(8, 2), b = randomArray(16, 3), w = randomArray(24, 4);
  const { dx, da, db } = loraBackwardCpu(shape, w, x, a, b);
  const loss = (x: ArrayLike<number>, a: ArrayLike<number>, b: ArrayLike<number>) =>
    weightedSum(loraForwardCpu(shape, x, a, b).update, w);
  assertClose(dx, numericalGradient((v) => loss(v, a, b), x), { atol: 1e-8 }, "dx");
  assertClose(da, numericalGradient((v) => loss(x, v, b), a), { atol: 1e-8 }, "dA");
  assertClose(db, numericalGradient((v) => loss(x, a, v), b), { atol: 1e-8 }, "dB");
});

/** The saved u rows (vec4s of ranks) without the padding past the rank. */
function unpadRanks(saved: Float32Array, rows: number, rank: number): Float32Array {
  const stride = saved.length / rows;
  return Float32Array.from(
    { length: rows * rank },
    (_, i) => saved[Math.floor(i / rank) * stride + (i % rank)],
  );
}

function plus(base: Float32Array, delta: Float64Array): Float64Array {
  return Float64Array.from(base, (v, i) => v + delta[i]);
}

// One row, one rank (size-1 edges); rows past one workgroup (64) and feature quads past one lane
// group (16) with tails; rank 6 (two rank quads, the second half empty); the reference layer shape.
const SHAPES: LoraShape[] = [
  { rows: 1, inFeatures: 4, outFeatures: 4, rank: 1, scale: 2 },
  { rows: 70, inFeatures: 12, outFeatures: 20, rank: 3, scale: 0.5 },
  { rows: 130, inFeatures: 72, outFeatures: 8, rank: 6, scale: -1.25 },
  { rows: 67, inFeatures: 256, outFeatures: 68, rank: 4, scale: 2 },
];

for (const shape of SHAPES) {
  const { rows, inFeatures: k, outFeatures: n, rank: r } = shape;
  Deno.test({
    name: `LoRA kernels match the CPU reference for ${rows} rows, ${k} → ${n}, rank ${r}`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const pool = engine.pool;
      const x = randomArray(rows * k, 5), a = randomArray(r * k, 6), b = randomArray(n * r, 7);
      const dy = randomArray(rows * n, 8);
      // Outputs and gradients accumulate: start them from random "previous" values.
      const y0 = randomArray(rows * n, 9), dx0 = randomArray(rows * k, 10);
      const da0 = randomArray(r * k, 11), db0 = randomArray(n * r, 12);
      const up = (data: Float32Array) => pool.upload(data, [data.length]);
      const [tx, ta, tb, tdy, ty, tdx, tda, tdb] = [x, a, b, dy, y0, dx0, da0, db0].map(up);
      const tu = pool.tensor([loraSavedSize(shape)]);
      const rec = engine.recorder();
      loraForward(rec, shape, { x: tx, a: ta, b: tb, y: ty, u: tu });
      loraBackward(rec, shape, { dy: tdy, x: tx, u: tu, a: ta, b: tb, dx: tdx, da: tda, db: tdb });
      const [y, u, dx, da, db] = [ty, tu, tdx, tda, tdb].map((t) => rec.read(t));
      await rec.submit();
      const forward = loraForwardCpu(shape, x, a, b);
      const backward = loraBackwardCpu(shape, dy, x, a, b);
      assertClose(await y, plus(y0, forward.update), TOL, "y");
      assertClose(unpadRanks(await u, rows, r), forward.u, TOL, "u");
      assertClose(await dx, plus(dx0, backward.dx), TOL, "dx");
      assertClose(await da, plus(da0, backward.da), TOL, "dA");
      assertClose(await db, plus(db0, backward.db), TOL, "dB");
      for (const t of [tx, ta, tb, tdy, ty, tdx, tda, tdb, tu]) pool.release(t);
    },
  });
}
