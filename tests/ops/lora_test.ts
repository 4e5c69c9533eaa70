import { getEngine } from "../../src/gpu/engine.ts";
import {
  loraBackward,
  loraBackwardCpu,
  loraBackwardTexels,
  loraFactorTexels,
  loraForward,
  loraForwardCpu,
  loraForwardTexels,
  loraSavedSize,
  type LoraShape,
  loraTexels,
} from "../../src/ops/lora.ts";
import {
  bf16Round,
  matmulPackedBf16,
  matrixView,
  packBf16,
  releasePacked,
  withSpareTexels,
} from "../../src/ops/matmul.ts";
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

/** `[rows × cols]` of `x` (stored `[cols × rows]` when `transposed`) rounded to bf16 as a pack rounds it. */
function rounded(x: ArrayLike<number>, rows: number, cols: number, transposed = false): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[i * cols + j] = bf16Round(x[transposed ? j * rows + i : i * cols + j]);
  }
  return out;
}

/** C = A·Bᵀ for A `[m × k]`, B `[n × k]`, in f64. */
function productNT(a: Float64Array, b: Float64Array, m: number, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let f = 0; f < k; f++) sum += a[i * k + f] * b[j * k + f];
      c[i * n + j] = sum;
    }
  }
  return c;
}

// The base products' f32 sums of ≤ 256 bf16 products of values ≤ 1 plus the rank terms: rounding
// stays below ~1e-4 here; a missing, misplaced or unscaled rank term is off by O(1).
const PACKED_TOL = { atol: 2e-4, rtol: 1e-4 };

for (const shape of SHAPES) {
  const { rows, inFeatures: k, outFeatures: n, rank: r, scale } = shape;
  Deno.test({
    name:
      `LoRA texel passes complete the base product over spare texels for ${rows} rows, ${k} → ${n}, rank ${r}`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const pool = engine.pool;
      const x = randomArray(rows * k, 21), w = randomArray(n * k, 22);
      const a = randomArray(r * k, 23), b = randomArray(n * r, 24), dy = randomArray(rows * n, 25);
      const da0 = randomArray(r * k, 26), db0 = randomArray(n * r, 27);
      const up = (data: Float32Array) => pool.upload(data, [data.length]);
      const [tx, tw, ta, tb, tdy, tda, tdb] = [x, w, a, b, dy, da0, db0].map(up);
      const tu = pool.tensor([loraSavedSize(shape)]);
      const [ty, tdx] = [pool.tensor([rows * n]), pool.tensor([rows * k])];
      const spare = loraTexels(r);
      const rec = engine.recorder();
      // Forward: y = x·Wᵀ + u·(s·B)ᵀ, u into x's pack and s·B into W's.
      const xP = packBf16(rec, matrixView(tx, rows, k), spare);
      const wP = packBf16(rec, matrixView(tw, n, k), spare);
      loraForwardTexels(rec, shape, {
        x: tx,
        a: ta,
        b: tb,
        u: tu,
        pack: xP.texture,
        texel: Math.ceil(k / 8),
      });
      loraFactorTexels(rec, shape, "forward", { factor: tb, pack: wP.texture, texel: Math.ceil(k / 8) });
      matmulPackedBf16(rec, withSpareTexels(xP, spare)!, withSpareTexels(wP, spare)!, ty);
      // Backward: dx = dy·W + du·A, du into dy's pack and A into Wᵀ's; dA and dB as loraBackward.
      const dyP = packBf16(rec, matrixView(tdy, rows, n), spare);
      const wTP = packBf16(rec, matrixView(tw, k, n, true), spare);
      const texel = Math.ceil(n / 8);
      const factors = { dy: tdy, x: tx, u: tu, a: ta, b: tb, da: tda, db: tdb };
      loraBackwardTexels(rec, shape, { ...factors, pack: dyP.texture, xPack: xP.texture, texel });
      loraFactorTexels(rec, shape, "backward", { factor: ta, pack: wTP.texture, texel });
      matmulPackedBf16(rec, withSpareTexels(dyP, spare)!, withSpareTexels(wTP, spare)!, tdx);
      const [y, u, dx, da, db] = [ty, tu, tdx, tda, tdb].map((t) => rec.read(t));
      await rec.submit();

      const forward = loraForwardCpu(shape, x, a, b);
      const backward = loraBackwardCpu(shape, dy, x, a, b);
      const gotU = unpadRanks(await u, rows, r);
      assertClose(gotU, forward.u, TOL, "u");
      // The rank terms as the texels carry them: bf16(u) (the GPU's own u) · bf16(s·B).
      const sB = Float32Array.from(b, (v) => Math.fround(scale * v));
      const yWant = productNT(rounded(x, rows, k), rounded(w, n, k), rows, n, k);
      const rankTerms = productNT(rounded(gotU, rows, r), rounded(sB, n, r), rows, n, r);
      assertClose(await y, yWant.map((v, i) => v + rankTerms[i]), PACKED_TOL, "y");
      // du = s·dy·B is rounded to bf16 on the GPU from its own f32 sum: allow one bf16 ulp of it.
      const dxBase = productNT(rounded(dy, rows, n), rounded(w, k, n, true), rows, k, n);
      const duRounded = rounded(backward.du, rows, r);
      const dxTerms = productNT(duRounded, rounded(a, k, r, true), rows, k, r);
      const gotDx = await dx;
      for (let i = 0; i < rows; i++) {
        for (let f = 0; f < k; f++) {
          let ulps = 0;
          for (let q = 0; q < r; q++) ulps += 2 ** -8 * Math.abs(backward.du[i * r + q] * a[q * k + f]);
          const want = dxBase[i * k + f] + dxTerms[i * k + f];
          const bound = PACKED_TOL.atol + PACKED_TOL.rtol * Math.abs(want) + ulps;
          if (!(Math.abs(gotDx[i * k + f] - want) <= bound)) {
            throw new Error(
              `dx: row ${i}, feature ${f} got ${gotDx[i * k + f]}, expected ${want} ± ${bound}`,
            );
          }
        }
      }
      // dA = duᵀ·x and dB = s·dyᵀ·u read x and dy from their bf16 packs; du and u stay f32.
      const xR = rounded(x, rows, k), dyR = rounded(dy, rows, n);
      const daWant = Float64Array.from(da0), dbWant = Float64Array.from(db0);
      for (let i = 0; i < rows; i++) {
        for (let q = 0; q < r; q++) {
          for (let f = 0; f < k; f++) daWant[q * k + f] += backward.du[i * r + q] * xR[i * k + f];
          for (let j = 0; j < n; j++) dbWant[j * r + q] += scale * dyR[i * n + j] * forward.u[i * r + q];
        }
      }
      assertClose(await da, daWant, TOL, "dA");
      assertClose(await db, dbWant, TOL, "dB");
      for (const p of [xP, wP, dyP, wTP]) releasePacked(rec, p);
      for (const t of [tx, tw, ta, tb, tdy, tda, tdb, tu, ty, tdx]) pool.release(t);
    },
  });
}
