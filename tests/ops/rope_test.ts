import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import {
  ropeBackward,
  ropeBackwardCpu,
  ropeForward,
  ropeForwardCpu,
  ropeFrequencies,
  type RopeShape,
} from "../../src/ops/rope.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, rng, weightedSum } from "./check.ts";

// Tolerance: GPU and CPU rotate by the same f32 angle; the kernel's range reduction is exact up to
// ~1e-9 rad for positions < 40 000 and llvmpipe's cos/sin on [−π, π] are within ~1e-7, so each output
// (two products of |x| ≤ 1) is within ~5e-7. 2e-6 keeps margin; a wrong position, frequency or pair
// offset gives errors of order 1.
const TOL = { atol: 2e-6, rtol: 2e-6 };

Deno.test("ropeBackwardCpu() matches central finite differences", () => {
  const shape = { tokens: 3, heads: 2, headDim: 6, theta: 100 };
  const positions = [0, 7, 3];
  const x = randomArray(36, 1), probe = randomArray(36, 2);
  const numeric = numericalGradient((v) => weightedSum(ropeForwardCpu(v, positions, shape), probe), x);
  assertClose(ropeBackwardCpu(probe, positions, shape), numeric, { atol: 1e-8 }, "dx");
});

Deno.test("ropeFrequencies() follows theta^(-2i/d) and rejects an odd head dim", () => {
  const freq = ropeFrequencies({ tokens: 1, heads: 1, headDim: 8, theta: 10_000 });
  assertClose(freq, [1, 0.1, 0.01, 0.001], { atol: 0, rtol: 1e-7 }, "invFreq");
  assert.throws(() => ropeFrequencies({ tokens: 1, heads: 1, headDim: 7, theta: 10_000 }), /head dim 7 /);
});

const SHAPES: (RopeShape & { maxPosition: number })[] = [
  { tokens: 1, heads: 1, headDim: 2, theta: 10_000, maxPosition: 1 },
  { tokens: 5, heads: 3, headDim: 10, theta: 10_000, maxPosition: 50 },
  { tokens: 37, heads: 2, headDim: 64, theta: 1e6, maxPosition: 32_768 },
  { tokens: 130, heads: 14, headDim: 64, theta: 1e6, maxPosition: 4096 },
  {
    tokens: 9,
    heads: 4,
    headDim: 128,
    theta: 5e5,
    maxPosition: 8192,
    invFreq: randomArray(64, 9).map(Math.abs),
  },
];

for (const { maxPosition, ...shape } of SHAPES) {
  const { tokens, heads, headDim } = shape;
  Deno.test({
    name: `rope kernels match the CPU reference for ${tokens} tokens × ${heads} heads × ${headDim}${
      shape.invFreq ? " with custom frequencies" : ""
    }`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const pool = engine.pool;
      const n = tokens * heads * headDim;
      const r = rng(tokens);
      const positions = Int32Array.from({ length: tokens }, () => Math.floor(r() * maxPosition));
      const x = randomArray(n, 3), dy = randomArray(n, 4), dxBefore = randomArray(n, 5);
      const tpos = pool.upload(positions, [tokens]);
      const tx = pool.upload(x, [n]), tInPlace = pool.upload(x, [n]), ty = pool.tensor([n]);
      const tdy = pool.upload(dy, [n]), tdx = pool.upload(dxBefore, [n]);
      const rec = engine.recorder();
      ropeForward(rec, tx, ty, tpos, shape);
      ropeForward(rec, tInPlace, tInPlace, tpos, shape);
      ropeBackward(rec, tdy, tdx, tpos, shape);
      const reads = [ty, tInPlace, tdx].map((t) => rec.read(t));
      await rec.submit();
      const [y, inPlace, dx] = await Promise.all(reads);
      const expected = ropeForwardCpu(x, positions, shape);
      assertClose(y, expected, TOL, "y");
      assertClose(inPlace, expected, TOL, "y in place");
      assertClose(dx, ropeBackwardCpu(dy, positions, shape).map((g, i) => g + dxBefore[i]), TOL, "dx");
      for (const t of [tpos, tx, tInPlace, ty, tdy, tdx]) pool.release(t);
    },
  });
}
