import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import {
  rmsnormBackward,
  rmsnormBackwardCpu,
  rmsnormForward,
  rmsnormForwardCpu,
} from "../../src/ops/rmsnorm.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, weightedSum } from "./check.ts";

// Tolerance: each output is a row reduction of ≤ 1000 f32 terms (relative error ~√cols·2⁻²⁴ ≈ 2e-6)
// times O(1) factors; the dw column sums add ≤ 70 rows of O(1) terms. 1e-5 absolute + 1e-5 relative
// is ~5× above that and far below the O(0.1) errors of a wrong row, column or offset.
const TOL = { atol: 1e-5, rtol: 1e-5 };
const EPS = 1e-6;

for (const offset of [0, 1]) {
  Deno.test(`rmsnormBackwardCpu() matches central finite differences with offset ${offset}`, () => {
    const shape = { rows: 3, cols: 5, offset };
    const x = randomArray(15, 1), w = randomArray(5, 2), probe = randomArray(15, 3);
    const { rstd } = rmsnormForwardCpu(x, w, { ...shape, eps: EPS });
    const { dx, dw } = rmsnormBackwardCpu(probe, x, w, rstd, shape);
    const loss = (xs: ArrayLike<number>, ws: ArrayLike<number>) =>
      weightedSum(rmsnormForwardCpu(xs, ws, { ...shape, eps: EPS }).y, probe);
    assertClose(dx, numericalGradient((v) => loss(v, w), x), { atol: 1e-7 }, "dx");
    assertClose(dw, numericalGradient((v) => loss(x, v), w), { atol: 1e-7 }, "dw");
  });
}

// Widths divisible by 4 take the vec4 kernels, the others the scalar ones. The vec4 dw kernel
// covers 128 columns per workgroup: 68 and 200 columns leave a partial workgroup, 896 fills 7.
const SHAPES = [
  { rows: 1, cols: 1, offset: 0 },
  { rows: 3, cols: 65, offset: 1 },
  { rows: 70, cols: 896, offset: 0 },
  { rows: 130, cols: 7, offset: 1 },
  { rows: 65, cols: 8, offset: 1 },
  { rows: 1, cols: 4, offset: 0 },
  { rows: 3, cols: 68, offset: 0 },
  { rows: 257, cols: 200, offset: 1 },
];

for (const shape of SHAPES) {
  const { rows, cols, offset } = shape;
  Deno.test({
    name: `rmsnorm kernels match the CPU reference for ${rows}×${cols} with offset ${offset}`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const pool = engine.pool;
      const n = rows * cols;
      const x = randomArray(n, 4, 2), w = randomArray(cols, 5), dy = randomArray(n, 6);
      const dxBefore = randomArray(n, 7), dwBefore = randomArray(cols, 8);
      const tx = pool.upload(x, [rows, cols]),
        tw = pool.upload(w, [cols]),
        tdy = pool.upload(dy, [rows, cols]);
      const ty = pool.tensor([rows, cols]), trstd = pool.tensor([rows]);
      const tdx = pool.upload(dxBefore, [rows, cols]), tdw = pool.upload(dwBefore, [cols]);
      const rec = engine.recorder();
      rmsnormForward(rec, tx, tw, ty, trstd, { ...shape, eps: EPS });
      rmsnormBackward(rec, tdy, tx, tw, trstd, tdx, tdw, shape);
      const reads = [ty, trstd, tdx, tdw].map((t) => rec.read(t));
      await rec.submit();
      const [y, rstd, dx, dw] = await Promise.all(reads);
      const ref = rmsnormForwardCpu(x, w, { ...shape, eps: EPS });
      const grads = rmsnormBackwardCpu(dy, x, w, ref.rstd, shape);
      assertClose(y, ref.y, TOL, "y");
      assertClose(rstd, ref.rstd, TOL, "rstd");
      assertClose(dx, grads.dx.map((g, i) => g + dxBefore[i]), TOL, "dx");
      assertClose(dw, grads.dw.map((g, i) => g + dwBefore[i]), TOL, "dw");
      for (const t of [tx, tw, tdy, ty, trstd, tdx, tdw]) pool.release(t);
    },
  });
}

Deno.test({
  name: "rmsnormBackward() without dw (a frozen weight) still adds dx and records one dispatch",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const pool = engine.pool;
    const shape = SHAPES[0];
    const { rows, cols } = shape;
    const x = randomArray(rows * cols, 9, 2), w = randomArray(cols, 10), dy = randomArray(rows * cols, 11);
    const dxBefore = randomArray(rows * cols, 12);
    const tx = pool.upload(x, [rows, cols]), tw = pool.upload(w, [cols]), tdy = pool.upload(dy, [rows, cols]);
    const ty = pool.tensor([rows, cols]),
      trstd = pool.tensor([rows]),
      tdx = pool.upload(dxBefore, [rows, cols]);
    const rec = engine.recorder();
    rmsnormForward(rec, tx, tw, ty, trstd, { ...shape, eps: EPS });
    const before = rec.dispatches;
    rmsnormBackward(rec, tdy, tx, tw, trstd, tdx, null, shape);
    assert.equal(rec.dispatches - before, 1);
    const read = rec.read(tdx);
    await rec.submit();
    const ref = rmsnormForwardCpu(x, w, { ...shape, eps: EPS });
    const grads = rmsnormBackwardCpu(dy, x, w, ref.rstd, shape);
    assertClose(await read, grads.dx.map((g, i) => g + dxBefore[i]), TOL, "dx");
    for (const t of [tx, tw, tdy, ty, trstd, tdx]) pool.release(t);
  },
});
