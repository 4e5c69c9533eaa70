import { getEngine } from "../../src/gpu/engine.ts";
import {
  residualBackward,
  residualBackwardCpu,
  residualForward,
  residualForwardCpu,
} from "../../src/ops/residual.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, weightedSum } from "./check.ts";

// Tolerance: one f32 FMA per element → 1 ulp-ish; 1e-6 relative is generous and still catches any indexing bug.
const TOL = { atol: 1e-6, rtol: 1e-6 };

Deno.test("residualBackwardCpu() matches central finite differences", () => {
  const a = randomArray(7, 1), b = randomArray(7, 2), w = randomArray(7, 3);
  const { da, db } = residualBackwardCpu(w, 0.5);
  assertClose(
    da,
    numericalGradient((x) => weightedSum(residualForwardCpu(x, b, 0.5), w), a),
    { atol: 1e-8 },
    "da",
  );
  assertClose(
    db,
    numericalGradient((x) => weightedSum(residualForwardCpu(a, x, 0.5), w), b),
    { atol: 1e-8 },
    "db",
  );
});

for (const n of [1, 63, 64, 1000, 70_000 * 64 + 5]) {
  Deno.test({
    name: `residual kernels match the CPU reference for ${n} elements`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const a = randomArray(n, 4), b = randomArray(n, 5), dy = randomArray(n, 6);
      const ta = engine.pool.upload(a, [n]), tb = engine.pool.upload(b, [n]);
      const ty = engine.pool.tensor([n]), tdy = engine.pool.upload(dy, [n]);
      // Gradients accumulate: start from a and b as "previous" gradients.
      const tda = engine.pool.upload(a, [n]), tdb = engine.pool.upload(b, [n]);
      const rec = engine.recorder();
      residualForward(rec, ta, tb, ty, -0.75);
      residualBackward(rec, tdy, tda, tdb, -0.75);
      const [y, da, db] = [rec.read(ty), rec.read(tda), rec.read(tdb)];
      await rec.submit();
      const ref = residualBackwardCpu(dy, -0.75);
      assertClose(await y, residualForwardCpu(a, b, -0.75), TOL, "y");
      assertClose(await da, residualForwardCpu(a, ref.da, 1), TOL, "da");
      assertClose(await db, residualForwardCpu(b, ref.db, 1), TOL, "db");
      for (const t of [ta, tb, ty, tdy, tda, tdb]) engine.pool.release(t);
    },
  });
}
