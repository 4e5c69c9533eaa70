import { getEngine } from "../../src/gpu/engine.ts";
import {
  gegluBackward,
  gegluBackwardCpu,
  gegluForward,
  gegluForwardCpu,
  scaleBackward,
  scaleForward,
  scaleForwardCpu,
  swigluBackward,
  swigluBackwardCpu,
  swigluForward,
  swigluForwardCpu,
} from "../../src/ops/activations.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, weightedSum } from "./check.ts";

// Tolerance: one exp or tanh per element; llvmpipe's f32 exp/tanh are within a few ulp (~5e-7
// relative) and the products add ~2 ulp, for |gate| ≤ 12 (values ≤ 12). 1e-5 absolute + 1e-5 relative
// leaves a 10× margin and still fails on a wrong derivative term (errors ≥ 1e-2).
const TOL = { atol: 1e-5, rtol: 1e-5 };

const GLUS = [
  {
    name: "swiglu",
    forwardCpu: swigluForwardCpu,
    backwardCpu: swigluBackwardCpu,
    forward: swigluForward,
    backward: swigluBackward,
  },
  {
    name: "geglu",
    forwardCpu: gegluForwardCpu,
    backwardCpu: gegluBackwardCpu,
    forward: gegluForward,
    backward: gegluBackward,
  },
];

for (const glu of GLUS) {
  Deno.test(`${glu.name}BackwardCpu() matches central finite differences`, () => {
    // Gates span the saturated tails (±12) and the curved middle.
    const gate = [-12, -3, -0.7, -1e-3, 0, 0.4, 1.9, 5, 12], n = gate.length;
    const up = randomArray(n, 1), probe = randomArray(n, 2);
    const { dgate, dup } = glu.backwardCpu(probe, gate, up);
    assertClose(dgate, numericalGradient((g) => weightedSum(glu.forwardCpu(g, up), probe), gate), {
      atol: 1e-8,
    }, "dgate");
    assertClose(dup, numericalGradient((u) => weightedSum(glu.forwardCpu(gate, u), probe), up), {
      atol: 1e-8,
    }, "dup");
  });

  // Sizes divisible by 4 take the vec4 kernels; 65535·64 + 3 elements need the 2-D grid (scalar).
  for (const n of glu.name === "geglu" ? [1, 63, 1000, 65535 * 64 + 3] : [1, 63, 1000, 4]) {
    Deno.test({
      name: `${glu.name} kernels match the CPU reference for ${n} elements`,
      ignore: !hasGpu,
      async fn() {
        const engine = await getEngine();
        const pool = engine.pool;
        const gate = randomArray(n, 3, 12), up = randomArray(n, 4), dout = randomArray(n, 5);
        const dgateBefore = randomArray(n, 6), dupBefore = randomArray(n, 7);
        const tGate = pool.upload(gate, [n]), tUp = pool.upload(up, [n]), tDout = pool.upload(dout, [n]);
        const tOut = pool.tensor([n]),
          tDgate = pool.upload(dgateBefore, [n]),
          tDup = pool.upload(dupBefore, [n]);
        const rec = engine.recorder();
        glu.forward(rec, tGate, tUp, tOut, { n });
        glu.backward(rec, tDout, tGate, tUp, tDgate, tDup, { n });
        const reads = [tOut, tDgate, tDup].map((t) => rec.read(t));
        await rec.submit();
        const [out, dgate, dup] = await Promise.all(reads);
        const ref = glu.backwardCpu(dout, gate, up);
        assertClose(out, glu.forwardCpu(gate, up), TOL, "out");
        assertClose(dgate, ref.dgate.map((g, i) => g + dgateBefore[i]), TOL, "dgate");
        assertClose(dup, ref.dup.map((g, i) => g + dupBefore[i]), TOL, "dup");
        for (const t of [tGate, tUp, tDout, tOut, tDgate, tDup]) pool.release(t);
      },
    });
  }
}

Deno.test("scaleForwardCpu() gradient matches central finite differences", () => {
  const x = randomArray(6, 8), probe = randomArray(6, 9);
  const numeric = numericalGradient((v) => weightedSum(scaleForwardCpu(v, -2.5), probe), x);
  assertClose(scaleForwardCpu(probe, -2.5), numeric, { atol: 1e-8 }, "dx");
});

for (const n of [1, 63, 1000]) {
  Deno.test({
    name: `scale kernels match the CPU reference for ${n} elements`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const pool = engine.pool;
      const x = randomArray(n, 10), dy = randomArray(n, 11), dxBefore = randomArray(n, 12);
      const tx = pool.upload(x, [n]),
        ty = pool.tensor([n]),
        tdy = pool.upload(dy, [n]),
        tdx = pool.upload(dxBefore, [n]);
      const rec = engine.recorder();
      scaleForward(rec, tx, ty, { n, scale: 29.9 });
      scaleBackward(rec, tdy, tdx, { n, scale: 29.9 });
      const reads = [ty, tdx].map((t) => rec.read(t));
      await rec.submit();
      const [y, dx] = await Promise.all(reads);
      assertClose(y, scaleForwardCpu(x, 29.9), TOL, "y");
      assertClose(dx, scaleForwardCpu(dy, 29.9).map((g, i) => g + dxBefore[i]), TOL, "dx");
      for (const t of [tx, ty, tdy, tdx]) pool.release(t);
    },
  });
}
