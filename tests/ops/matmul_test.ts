import { Engine, getEngine } from "../../src/gpu/engine.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import {
  bf16Round,
  matmul,
  MATMUL_BF16_RTOL,
  matmulBackwardCpu,
  matmulBiasBackward,
  matmulForwardCpu,
  type MatmulOptions,
  matmulPackedBf16,
  type MatmulPath,
  matmulVia,
  matmulWarmup,
  matrixView,
  packBf16,
  packedTranspose,
  releasePacked,
} from "../../src/ops/matmul.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, weightedSum } from "./check.ts";

/**
 * Tolerance: the GPU sums k f32 products in a different order than the f64 reference, so the
 * rounding error grows like eps·sqrt(k)·|typical product| (operands are in [-1, 1], |alpha| ≤ 1).
 * 1e-5·sqrt(k) leaves ~10× headroom over that and still catches any indexing error (which is O(1)).
 */
function tolerance(k: number): { atol: number; rtol: number } {
  return { atol: 1e-5 * Math.sqrt(Math.max(k, 1)), rtol: 1e-5 };
}

type Layout = "NN" | "NT" | "TN";
const LAYOUTS: Layout[] = ["NN", "NT", "TN"];

function layoutFlags(layout: Layout): { transA: boolean; transB: boolean } {
  return { transA: layout === "TN", transB: layout === "NT" };
}

Deno.test("matmulBackwardCpu() matches central finite differences in every layout", () => {
  const [m, n, k] = [3, 4, 5];
  for (const layout of LAYOUTS) {
    const opts: MatmulOptions = { m, n, k, alpha: 0.7, ...layoutFlags(layout) };
    const a = randomArray(m * k, 1), b = randomArray(k * n, 2), bias = randomArray(n, 3);
    const w = randomArray(m * n, 4);
    const grads = matmulBackwardCpu(w, a, b, opts);
    const loss = (x: ArrayLike<number>, y: ArrayLike<number>, z: ArrayLike<number>) =>
      weightedSum(matmulForwardCpu(x, y, { ...opts, biasData: z }), w);
    const fd = { atol: 1e-7 };
    assertClose(grads.da, numericalGradient((x) => loss(x, b, bias), a), fd, `${layout} dA`);
    assertClose(grads.db, numericalGradient((x) => loss(a, x, bias), b), fd, `${layout} dB`);
    assertClose(grads.dbias, numericalGradient((x) => loss(a, b, x), bias), fd, `${layout} dbias`);
  }
});

Deno.test("matmulBackwardCpu() gradients are themselves matmuls in the linear-layer layouts", () => {
  // y = x·Wᵀ (NT) ⇒ dX = dY·W (NN) and dW = dYᵀ·X (TN): the identity the model relies on.
  const [t, out, inDim] = [5, 3, 4];
  const x = randomArray(t * inDim, 5), w = randomArray(out * inDim, 6), dy = randomArray(t * out, 7);
  const { da, db } = matmulBackwardCpu(dy, x, w, { m: t, n: out, k: inDim, transB: true });
  assertClose(da, matmulForwardCpu(dy, w, { m: t, n: inDim, k: out }), { atol: 1e-12 }, "dX");
  assertClose(db, matmulForwardCpu(dy, x, { m: out, n: inDim, k: t, transA: true }), { atol: 1e-12 }, "dW");
});

interface Case {
  m: number;
  n: number;
  k: number;
}

/** Odd sizes, size-1 edges, a tile-aligned shape and sizes on both sides of the tiles. */
const SHAPES: Case[] = [
  { m: 1, n: 1, k: 1 },
  { m: 7, n: 13, k: 5 },
  { m: 33, n: 17, k: 65 },
  { m: 100, n: 257, k: 31 },
  { m: 128, n: 256, k: 64 },
];

/**
 * General path: also single rows (k a multiple of 4 takes the NT dot-product kernel), a single
 * column and an empty inner dimension.
 */
const GENERAL_SHAPES: Case[] = [
  ...SHAPES,
  { m: 1, n: 300, k: 9 },
  { m: 1, n: 70, k: 12 },
  { m: 1, n: 1, k: 4 },
  { m: 70, n: 1, k: 0 },
];

/**
 * Texture path: k not a multiple of 4 (zero-padded texels), k a multiple of 64 (rows copied with
 * copyBufferToTexture), k = 20 (a half-filled bf16 texel), m and n off the 32 × 256 tile (the
 * last tiles clamped into C, overlapping their neighbours), n not a multiple of 4, m < 32 or
 * n < 16 (padded scratch output), single rows and columns, several tiles in both directions with
 * tails, and m or n above the 16384-row texture limit (split into blocks, into C and into the
 * scratch copy, the last one with n not a multiple of 4).
 */
const TEXTURE_SHAPES: Case[] = [
  { m: 1, n: 4, k: 1 },
  { m: 33, n: 20, k: 65 },
  { m: 33, n: 17, k: 65 },
  { m: 100, n: 257, k: 31 },
  { m: 70, n: 1, k: 8 },
  { m: 40, n: 36, k: 20 },
  { m: 5, n: 8, k: 0 },
  { m: 128, n: 256, k: 64 },
  { m: 70, n: 300, k: 128 },
  { m: 16400, n: 8, k: 64 },
  { m: 16400, n: 20, k: 8 },
  { m: 3, n: 16203, k: 9 },
];

async function runGpu(
  path: MatmulPath,
  a: Float32Array,
  b: Float32Array,
  c0: Float32Array,
  bias: Float32Array | undefined,
  opts: MatmulOptions,
): Promise<Float32Array> {
  const engine = await getEngine();
  const { pool } = engine;
  const tensors: Tensor[] = [];
  const up = (data: Float32Array, name: string) => {
    const t = pool.upload(data.length ? data : new Float32Array(1), [Math.max(data.length, 1)], name);
    tensors.push(t);
    return t;
  };
  const ta = up(a, "a"), tb = up(b, "b"), tc = up(c0, "c");
  const rec = engine.recorder();
  const withBias = { ...opts, bias: bias ? up(bias, "bias") : undefined };
  if (path === "auto") matmul(rec, ta, tb, tc, withBias);
  else matmulVia(path, rec, ta, tb, tc, withBias);
  const out = rec.read(tc, 0, c0.length);
  await rec.submit();
  for (const t of tensors) pool.release(t);
  return await out;
}

const PATH_CASES: [MatmulPath, Case][] = [
  ...GENERAL_SHAPES.map((c): [MatmulPath, Case] => ["general", c]),
  ...TEXTURE_SHAPES.map((c): [MatmulPath, Case] => ["texture", c]),
  ["auto", { m: 256, n: 256, k: 128 }],
  ["auto", { m: 7, n: 13, k: 5 }],
];

/** The kernel files each path runs, named in the test titles. */
const PATH_KERNELS: Record<MatmulPath, string> = {
  general: "matmul.wgsl",
  texture: "matmul_tex.wgsl + matmul_pack.wgsl",
  auto: "chosen by size",
};

for (const [path, { m, n, k }] of PATH_CASES) {
  Deno.test({
    name: `matmul() ${path} path (${
      PATH_KERNELS[path]
    }) matches the CPU reference at m=${m} n=${n} k=${k} in NN, NT and TN`,
    ignore: !hasGpu,
    async fn() {
      let seed = 10;
      for (const layout of LAYOUTS) {
        for (const mode of [{}, { bias: true, accumulate: true, alpha: -0.5 }, { accumulate: true }]) {
          const opts: MatmulOptions = { m, n, k, ...layoutFlags(layout), ...mode, bias: undefined };
          const a = randomArray(m * k, seed++),
            b = randomArray(k * n, seed++),
            c0 = randomArray(m * n, seed++);
          const bias = "bias" in mode ? randomArray(n, seed++) : undefined;
          const got = await runGpu(path, a, b, c0, bias, opts);
          const want = matmulForwardCpu(a, b, { ...opts, biasData: bias, c0 });
          assertClose(got, want, tolerance(k), `${layout} ${JSON.stringify(mode)} m=${m} n=${n} k=${k}`);
        }
      }
    },
  });
}

Deno.test({
  name: "matmul() keeps two same-shape accumulating products apart within one submit (shared textures)",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const [m, n, k] = [64, 256, 64];
    const opts: MatmulOptions = { m, n, k, transB: true, accumulate: true };
    const inputs = [0, 1].map((i) => ({
      a: randomArray(m * k, 50 + i),
      b: randomArray(n * k, 60 + i),
      c0: randomArray(m * n, 70 + i),
    }));
    const tensors = inputs.map(({ a, b, c0 }) => ({
      a: engine.pool.upload(a, [m, k]),
      b: engine.pool.upload(b, [n, k]),
      c: engine.pool.upload(c0, [m, n]),
    }));
    const rec = engine.recorder();
    for (const t of tensors) matmulVia("texture", rec, t.a, t.b, t.c, opts);
    const outs = tensors.map((t) => rec.read(t.c));
    await rec.submit();
    for (const [i, { a, b, c0 }] of inputs.entries()) {
      assertClose(await outs[i], matmulForwardCpu(a, b, { ...opts, c0 }), tolerance(k), `product ${i}`);
    }
    for (const t of tensors) [t.a, t.b, t.c].forEach((x) => engine.pool.release(x));
  },
});

/** Rounds like the bf16 mode: alpha is folded into A before rounding. */
function bf16Operands(a: Float32Array, b: Float32Array, alpha: number): [Float32Array, Float32Array] {
  return [a.map((x) => bf16Round(Math.fround(alpha * x))), b.map(bf16Round)];
}

for (const { m, n, k } of TEXTURE_SHAPES) {
  Deno.test({
    name: `matmul() bf16 mode at m=${m} n=${n} k=${k} equals f32 math on bf16-rounded operands`,
    ignore: !hasGpu,
    async fn() {
      let seed = 90;
      for (const layout of LAYOUTS) {
        for (const mode of [{}, { bias: true, accumulate: true, alpha: -0.5 }]) {
          const opts: MatmulOptions = { m, n, k, ...layoutFlags(layout), ...mode, bias: undefined };
          const a = randomArray(m * k, seed++),
            b = randomArray(k * n, seed++),
            c0 = randomArray(m * n, seed++);
          const bias = "bias" in mode ? randomArray(n, seed++) : undefined;
          const got = await runGpu("texture", a, b, c0, bias, { ...opts, precision: "bf16" });
          const what = `${layout} ${JSON.stringify(mode)} m=${m} n=${n} k=${k}`;
          // bf16 × bf16 products are exact in f32: only the summation order differs.
          const [ar, br] = bf16Operands(a, b, opts.alpha ?? 1);
          const rounded = matmulForwardCpu(ar, br, { ...opts, alpha: 1, biasData: bias, c0 });
          assertClose(got, rounded, tolerance(k), `${what} vs rounded operands`);
          // Against exact f32 math: each product is off by at most MATMUL_BF16_RTOL relative.
          const exact = matmulForwardCpu(a, b, { ...opts, biasData: bias, c0 });
          const magnitude = matmulForwardCpu(a.map(Math.abs), b.map(Math.abs), { ...opts, alpha: 1 });
          const alpha = Math.abs(opts.alpha ?? 1);
          exact.forEach((want, i) => {
            const bound = MATMUL_BF16_RTOL * alpha * magnitude[i] + tolerance(k).atol;
            if (!(Math.abs(got[i] - want) <= bound)) {
              throw new Error(`${what}: index ${i} got ${got[i]}, exact ${want}, bf16 bound ${bound}`);
            }
          });
        }
      }
    },
  });
}

/**
 * A linear layer's three products from packs made once: X (forward, as A), dY (dX, as A), W and
 * the transposing packs Wᵀ, dYᵀ and Xᵀ (dW = dYᵀ·X; Xᵀ kept with X's pack). Operands are on the
 * bf16 grid, so every product is exact f32 math and only the summation order differs from the f64
 * reference.
 */
for (
  const { rows, inDim, outDim } of [
    { rows: 96, inDim: 68, outDim: 36 },
    { rows: 333, inDim: 260, outDim: 516 },
    { rows: 8, inDim: 4, outDim: 4 },
  ]
) {
  Deno.test({
    name:
      `matmulPackedBf16() computes y = x·Wᵀ + b, dX = dY·W and dW += dYᵀ·X from shared packs (${rows}×${inDim}→${outDim})`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const { pool } = engine;
      const grid = (n: number, seed: number) => randomArray(n, seed).map(bf16Round);
      const x = grid(rows * inDim, 1), w = grid(outDim * inDim, 2), dy = grid(rows * outDim, 3);
      const bias = randomArray(outDim, 4), dw0 = randomArray(outDim * inDim, 5);
      const t = {
        x: pool.upload(x, [rows, inDim], "x"),
        w: pool.upload(w, [outDim, inDim], "w"),
        dy: pool.upload(dy, [rows, outDim], "dy"),
        bias: pool.upload(bias, [outDim], "bias"),
        dw: pool.upload(dw0, [outDim, inDim], "dw"),
        y: pool.zeros([rows * outDim]),
        dx: pool.zeros([rows * inDim]),
      };
      const rec = engine.recorder();
      const xP = packBf16(rec, matrixView(t.x, rows, inDim));
      const wP = packBf16(rec, matrixView(t.w, outDim, inDim));
      const wT = packBf16(rec, matrixView(t.w, inDim, outDim, true));
      const dyP = packBf16(rec, matrixView(t.dy, rows, outDim));
      const dyT = packBf16(rec, matrixView(t.dy, outDim, rows, true));
      const xT = packedTranspose(rec, xP, matrixView(t.x, inDim, rows, true));
      if (packedTranspose(rec, xP, matrixView(t.x, inDim, rows, true)) !== xT) {
        throw new Error("packedTranspose() packed the same transpose twice");
      }
      matmulPackedBf16(rec, xP, wP, t.y, { bias: t.bias });
      matmulPackedBf16(rec, dyP, wT, t.dx);
      matmulPackedBf16(rec, dyT, xT, t.dw, { accumulate: true });
      for (const p of [xP, wP, wT, dyP, dyT]) releasePacked(rec, p);
      const reads = [rec.read(t.y), rec.read(t.dx), rec.read(t.dw)];
      await rec.submit();
      const [y, dx, dw] = await Promise.all(reads);
      for (const v of Object.values(t)) pool.release(v);
      const want = {
        y: matmulForwardCpu(x, w, { m: rows, n: outDim, k: inDim, transB: true, biasData: bias }),
        dx: matmulForwardCpu(dy, w, { m: rows, n: inDim, k: outDim }),
        dw: matmulForwardCpu(dy, x, {
          m: outDim,
          n: inDim,
          k: rows,
          transA: true,
          accumulate: true,
          c0: dw0,
        }),
      };
      assertClose(y, want.y, tolerance(inDim), "y");
      assertClose(dx, want.dx, tolerance(outDim), "dx");
      assertClose(dw, want.dw, tolerance(rows), "dw");
    },
  });
}

Deno.test({
  name: "matmulPackedBf16() rejects packs whose inner sizes differ",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const a = engine.pool.zeros([64 * 8]), c = engine.pool.zeros([64 * 64]);
    const rec = engine.recorder();
    const p8 = packBf16(rec, matrixView(a, 64, 8)), p4 = packBf16(rec, matrixView(a, 64, 4));
    try {
      let message = "";
      try {
        matmulPackedBf16(rec, p8, p4, c);
      } catch (e) {
        message = (e as Error).message;
      }
      if (!message.includes("inner sizes differ")) {
        throw new Error(`expected an inner-size error, got "${message}"`);
      }
    } finally {
      releasePacked(rec, p8);
      releasePacked(rec, p4);
      await rec.submit();
      engine.pool.release(a);
      engine.pool.release(c);
    }
  },
});

Deno.test("bf16Round() rounds to nearest even on the upper 16 bits", () => {
  // 1 + 2⁻⁸ is halfway between bf16 neighbours 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
  assertClose([bf16Round(1 + 2 ** -8), bf16Round(1 + 3 * 2 ** -8), bf16Round(-2.5)], [1, 1 + 2 ** -6, -2.5], {
    atol: 0,
  }, "bf16Round");
  assertClose([bf16Round(1 + 2 ** -8 + 2 ** -20)], [1 + 2 ** -7], { atol: 0 }, "above the tie");
});

// Widths divisible by 4 take the vec4 kernel (128 columns per workgroup): 40 leaves a partial
// workgroup, 260 two full ones and one with a single vec4 column.
for (const [rows, cols] of [[1, 1], [37, 19], [300, 40], [1, 4], [65, 260]]) {
  Deno.test({
    name: `matmulBiasBackward() adds the column sums of dy for ${rows}×${cols}`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const dy = randomArray(rows * cols, 40), prev = randomArray(cols, 41);
      const tdy = engine.pool.upload(dy, [rows, cols]), tdb = engine.pool.upload(prev, [cols]);
      const rec = engine.recorder();
      matmulBiasBackward(rec, tdy, tdb, { rows, cols });
      const out = rec.read(tdb);
      await rec.submit();
      const { dbias } = matmulBackwardCpu(dy, new Float32Array(rows), new Float32Array(cols), {
        m: rows,
        n: cols,
        k: 1,
      });
      const want = dbias.map((v, j) => v + prev[j]);
      assertClose(await out, want, tolerance(rows), "dbias");
      engine.pool.release(tdy);
      engine.pool.release(tdb);
    },
  });
}

Deno.test({
  name: "matmulWarmup() compiles every pipeline that later products in each layout and path need",
  ignore: !hasGpu,
  async fn() {
    // A fresh engine on the shared device: its pipeline cache starts empty.
    const engine = new Engine((await getEngine()).gpu);
    await matmulWarmup(engine);
    const compiled = engine.kernels.size;
    const [m, n, k] = [64, 256, 96];
    const a = randomArray(m * k, 1), b = randomArray(k * n, 2);
    const ta = engine.pool.upload(a, [m * k]), tb = engine.pool.upload(b, [k * n]);
    const tc = engine.pool.tensor([m * n]), tdb = engine.pool.zeros([n]);
    for (const layout of LAYOUTS) {
      for (const path of ["texture", "general"] as const) {
        const opts = { m, n, k, ...layoutFlags(layout), accumulate: false };
        const rec = engine.recorder();
        matmulVia(path, rec, ta, tb, tc, opts);
        matmulBiasBackward(rec, tc, tdb, { rows: m, cols: n });
        const out = rec.read(tc);
        await rec.submit();
        assertClose(await out, matmulForwardCpu(a, b, opts), tolerance(k), `${layout} ${path} after warm-up`);
      }
    }
    if (engine.kernels.size !== compiled) {
      throw new Error(`products after the warm-up compiled ${engine.kernels.size - compiled} more pipelines`);
    }
    for (const t of [ta, tb, tc, tdb]) engine.pool.release(t);
  },
});
