import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import {
  attentionBackward,
  attentionBackwardCpu,
  attentionBackwardVia,
  type AttentionCpuOptions,
  attentionForward,
  attentionForwardCpu,
  attentionForwardVia,
  attentionWarmup,
  kvCacheWrite,
} from "../../src/ops/attention.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, weightedSum } from "./check.ts";

// Forward: f32 dot products of ≤ 64 terms and an online softmax over ≤ 70 keys; values are O(1),
// so errors stay ~1e-6; 2e-5 absolute + 1e-4 relative leaves margin yet catches any mask bug.
const FORWARD_TOL = { atol: 2e-5, rtol: 1e-4 };
// Backward: gradients are sums over up to 70 rows (× grouped heads) of products of f32
// probabilities and dot products, and P·(dP − Δ) cancels; 1e-4 absolute + 1e-3 relative.
const BACKWARD_TOL = { atol: 1e-4, rtol: 1e-3 };
// Finite differences in f64 with h = 1e-6 are accurate to ~1e-8 on these smooth functions.
const FD_TOL = { atol: 1e-6, rtol: 1e-5 };

type Shape = Omit<AttentionCpuOptions, "qOffset" | "kvLen" | "scale"> & {
  qOffset?: number[];
  kvLen?: number[];
};

function options(s: Shape): AttentionCpuOptions {
  const qOffset = s.qOffset ?? Array(s.batch).fill(0);
  return {
    ...s,
    scale: 1 / Math.sqrt(s.headDim),
    qOffset,
    kvLen: s.kvLen ?? qOffset.map((o) => o + s.tq),
  };
}

function inputs(o: AttentionCpuOptions, seed: number) {
  const qn = o.batch * o.tq * o.heads * o.headDim;
  const kn = o.batch * o.tmax * o.kvHeads * o.headDim;
  return {
    q: randomArray(qn, seed, 2),
    k: randomArray(kn, seed + 1, 2),
    v: randomArray(kn, seed + 2),
    dout: randomArray(qn, seed + 3),
  };
}

function describe(s: Shape): string {
  const extras = [
    s.window ? `window ${s.window}` : "",
    s.softcap ? `softcap ${s.softcap}` : "",
    s.qOffset ? `qOffset ${s.qOffset.join(",")}` : "",
  ].filter(Boolean);
  return `B${s.batch} Tq${s.tq} Tmax${s.tmax} H${s.heads} KVH${s.kvHeads} D${s.headDim}` +
    (extras.length ? ` (${extras.join(", ")})` : "");
}

const FD_SHAPES: Shape[] = [
  { batch: 2, tq: 5, tmax: 5, heads: 4, kvHeads: 2, headDim: 4, softcap: 0, window: 0 },
  { batch: 2, tq: 6, tmax: 6, heads: 2, kvHeads: 1, headDim: 4, softcap: 1.5, window: 3 },
  { batch: 2, tq: 2, tmax: 7, heads: 2, kvHeads: 2, headDim: 4, softcap: 0, window: 4, qOffset: [1, 4] },
];

for (const shape of FD_SHAPES) {
  Deno.test(`attentionBackwardCpu() matches finite differences for ${describe(shape)}`, () => {
    const o = options(shape);
    const { q, k, v, dout } = inputs(o, 11);
    const { dq, dk, dv } = attentionBackwardCpu(dout, q, k, v, o);
    const loss = (qq: ArrayLike<number>, kk: ArrayLike<number>, vv: ArrayLike<number>) =>
      weightedSum(attentionForwardCpu(qq, kk, vv, o).out, dout);
    assertClose(dq, numericalGradient((x) => loss(x, k, v), q), FD_TOL, "dq");
    assertClose(dk, numericalGradient((x) => loss(q, x, v), k), FD_TOL, "dk");
    assertClose(dv, numericalGradient((x) => loss(q, k, x), v), FD_TOL, "dv");
  });
}

Deno.test("attentionForwardCpu() gives a single visible key all the weight", () => {
  const o = options({ batch: 1, tq: 1, tmax: 1, heads: 1, kvHeads: 1, headDim: 4, softcap: 0, window: 0 });
  const { out, lse } = attentionForwardCpu([1, 2, 3, 4], [1, 0, 0, 1], [5, 6, 7, 8], o);
  assertClose(out, [5, 6, 7, 8], { atol: 1e-12 }, "out");
  assertClose(lse, [(1 + 4) / 2], { atol: 1e-12 }, "lse");
});

async function uploadCommon(o: AttentionCpuOptions, data: ReturnType<typeof inputs>) {
  const { pool } = await getEngine();
  return {
    q: pool.upload(data.q, [data.q.length]),
    k: pool.upload(data.k, [data.k.length]),
    v: pool.upload(data.v, [data.v.length]),
    qOffset: pool.upload(Int32Array.from(o.qOffset), [o.batch]),
    kvLen: pool.upload(Int32Array.from(o.kvLen), [o.batch]),
  };
}

/** out, lse, delta, the upstream gradient and zeroed dq, dk, dv for a forward plus backward. */
async function uploadBackward(o: AttentionCpuOptions, data: ReturnType<typeof inputs>) {
  const { pool } = await getEngine();
  const rows = o.batch * o.heads * o.tq;
  const out = pool.tensor([data.q.length]), lse = pool.tensor([rows]), delta = pool.tensor([rows]);
  const dout = pool.upload(data.dout, [data.dout.length]);
  const grads = [pool.zeros([data.q.length]), pool.zeros([data.k.length]), pool.zeros([data.k.length])];
  return { out, lse, delta, dout, grads, all: [out, lse, delta, dout, ...grads] };
}

/** The inputs, GPU buffers and launch options of a backward test of `shape` (release `all`). */
async function backwardCase(shape: Shape, seed: number) {
  const o = options(shape);
  const data = inputs(o, seed);
  const t = await uploadCommon(o, data);
  const b = await uploadBackward(o, data);
  const launch = { ...o, qOffset: t.qOffset, kvLen: t.kvLen };
  return { o, data, t, ...b, launch, all: [...Object.values(t), ...b.all] };
}

const GPU_FORWARD_SHAPES: Shape[] = [
  { batch: 1, tq: 1, tmax: 1, heads: 1, kvHeads: 1, headDim: 8, softcap: 0, window: 0 },
  { batch: 2, tq: 7, tmax: 7, heads: 4, kvHeads: 2, headDim: 8, softcap: 0, window: 0 },
  { batch: 3, tq: 33, tmax: 33, heads: 2, kvHeads: 1, headDim: 16, softcap: 50, window: 5 },
  { batch: 2, tq: 70, tmax: 70, heads: 2, kvHeads: 2, headDim: 64, softcap: 0, window: 0 },
  // Decoding: one new token per sequence at different positions of a 12-row cache.
  { batch: 3, tq: 1, tmax: 12, heads: 4, kvHeads: 2, headDim: 8, softcap: 0, window: 0, qOffset: [0, 4, 11] },
  { batch: 2, tq: 3, tmax: 12, heads: 2, kvHeads: 1, headDim: 8, softcap: 20, window: 4, qOffset: [2, 9] },
  // A KV group of 6 query heads: the decoding kernels take 4 heads at a time, the last chunk half-full.
  { batch: 2, tq: 1, tmax: 9, heads: 12, kvHeads: 2, headDim: 8, softcap: 0, window: 0, qOffset: [3, 8] },
];

for (const shape of GPU_FORWARD_SHAPES) {
  for (const path of ["tiled", "decode", "chunked"] as const) {
    Deno.test({
      name: `attentionForward() (${path} kernels) matches the CPU reference for ${describe(shape)}`,
      ignore: !hasGpu,
      async fn() {
        const engine = await getEngine();
        const o = options(shape);
        const data = inputs(o, 21);
        const t = await uploadCommon(o, data);
        const out = engine.pool.tensor([data.q.length]);
        const lse = engine.pool.tensor([o.batch * o.heads * o.tq]);
        const rec = engine.recorder();
        attentionForwardVia(path, rec, t.q, t.k, t.v, out, lse, { ...o, qOffset: t.qOffset, kvLen: t.kvLen });
        const [gotOut, gotLse] = [rec.read(out), rec.read(lse)];
        await rec.submit();
        const ref = attentionForwardCpu(data.q, data.k, data.v, o);
        assertClose(await gotOut, ref.out, FORWARD_TOL, "out");
        assertClose(await gotLse, ref.lse, FORWARD_TOL, "lse");
        for (const x of [...Object.values(t), out, lse]) engine.pool.release(x);
      },
    });
  }
}

const GPU_BACKWARD_SHAPES: Shape[] = [
  { batch: 1, tq: 1, tmax: 1, heads: 1, kvHeads: 1, headDim: 8, softcap: 0, window: 0 },
  { batch: 2, tq: 7, tmax: 7, heads: 4, kvHeads: 2, headDim: 8, softcap: 0, window: 0 },
  { batch: 3, tq: 33, tmax: 33, heads: 2, kvHeads: 1, headDim: 16, softcap: 50, window: 5 },
  { batch: 1, tq: 70, tmax: 70, heads: 4, kvHeads: 2, headDim: 64, softcap: 3, window: 0 },
];

for (const shape of GPU_BACKWARD_SHAPES) {
  for (const path of ["auto", "chunked", "recompute"] as const) {
    Deno.test({
      name: `attentionBackward() (${path} path) accumulates the CPU reference gradients for ${
        describe(shape)
      }`,
      ignore: !hasGpu,
      async fn() {
        const engine = await getEngine();
        const { pool } = engine;
        const o = options(shape);
        const data = inputs(o, 31);
        const t = await uploadCommon(o, data);
        const out = pool.tensor([data.q.length]);
        const lse = pool.tensor([o.batch * o.heads * o.tq]);
        const delta = pool.tensor([o.batch * o.heads * o.tq]);
        const dout = pool.upload(data.dout, [data.dout.length]);
        // Start from non-zero gradients to check that the launchers accumulate.
        const previous = { dq: randomArray(data.q.length, 41), dk: randomArray(data.k.length, 42) };
        const dq = pool.upload(previous.dq, [data.q.length]);
        const dk = pool.upload(previous.dk, [data.k.length]);
        const dv = pool.upload(data.v, [data.v.length]);
        const launch = { ...o, qOffset: t.qOffset, kvLen: t.kvLen };
        const rec = engine.recorder();
        attentionForward(rec, t.q, t.k, t.v, out, lse, launch);
        attentionBackwardVia(path, rec, dout, t.q, t.k, t.v, out, lse, dq, dk, dv, { ...launch, delta });
        const got = [rec.read(dq), rec.read(dk), rec.read(dv)];
        await rec.submit();
        const ref = attentionBackwardCpu(data.dout, data.q, data.k, data.v, o);
        const plus = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (x, i) => x + b[i]);
        assertClose(await got[0], plus(previous.dq, ref.dq), BACKWARD_TOL, "dq");
        assertClose(await got[1], plus(previous.dk, ref.dk), BACKWARD_TOL, "dk");
        assertClose(await got[2], plus(data.v, ref.dv), BACKWARD_TOL, "dv");
        const all: Tensor[] = [...Object.values(t), out, lse, delta, dout, dq, dk, dv];
        for (const x of all) pool.release(x);
      },
    });
  }
}

Deno.test({
  name: "attentionBackward() uses the scores of the latest forward into its lse, not an older kept one",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const shape = { batch: 2, tq: 33, tmax: 33, heads: 2, kvHeads: 1, headDim: 16, softcap: 0, window: 0 };
    const { o, data, t, out, lse, delta, dout, grads, launch, all } = await backwardCase(shape, 71);
    const rec = engine.recorder();
    // The first forward (of other queries in the same buffer) keeps its scores for lse; the second
    // (in chunks) writes lse without keeping any.
    rec.write(t.q, randomArray(data.q.length, 72, 2));
    attentionForward(rec, t.q, t.k, t.v, out, lse, launch);
    rec.write(t.q, data.q);
    attentionForwardVia("chunked", rec, t.q, t.k, t.v, out, lse, launch);
    attentionBackward(rec, dout, t.q, t.k, t.v, out, lse, grads[0], grads[1], grads[2], { ...launch, delta });
    const got = grads.map((g) => rec.read(g));
    await rec.submit();
    const ref = attentionBackwardCpu(data.dout, data.q, data.k, data.v, o);
    assertClose(await got[0], ref.dq, BACKWARD_TOL, "dq");
    assertClose(await got[1], ref.dk, BACKWARD_TOL, "dk");
    assertClose(await got[2], ref.dv, BACKWARD_TOL, "dv");
    for (const x of all) engine.pool.release(x);
  },
});

Deno.test({
  name: "attentionBackward() reads its forward's kept scores after earlier forwards filled other lse buffers",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const { pool } = engine;
    // S of this shape takes ~12.5 MiB with the margin: five fit in the 64 MiB budget.
    const shape = { batch: 2, tq: 512, tmax: 512, heads: 4, kvHeads: 4, headDim: 16, softcap: 0, window: 0 };
    const { o, t, out, lse, delta, dout, grads, launch, all } = await backwardCase(shape, 5);
    const earlierLses = Array.from({ length: 23 }, () => pool.tensor([o.batch * o.heads * o.tq]));
    const earlier = engine.recorder();
    for (const other of earlierLses) attentionForward(earlier, t.q, t.k, t.v, out, other, launch);
    await earlier.submit();
    const rec = engine.recorder();
    attentionForward(rec, t.q, t.k, t.v, out, lse, launch);
    const before = rec.dispatches;
    attentionBackward(rec, dout, t.q, t.k, t.v, out, lse, grads[0], grads[1], grads[2], { ...launch, delta });
    // With the kept S: the delta pass, then dS, dq and dk/dv in one chunk (recomputing adds two).
    assert.equal(rec.dispatches - before, 4, "the backward recomputed S");
    await rec.submit();
    for (const x of [...all, ...earlierLses]) pool.release(x);
  },
});

// Shorter kvLen than positions, a window and a KV group: every edge of the key ranges.
const [EDGES_SHAPE]: Shape[] = [
  { batch: 2, tq: 37, tmax: 37, heads: 4, kvHeads: 2, headDim: 8, softcap: 0, window: 9, kvLen: [37, 30] },
];

for (const path of ["auto", "chunked"] as const) {
  Deno.test({
    name:
      `attention (${path} path) reads no scratch entry that an earlier call of the same shape left behind`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const { o, data, t, out, lse, delta, dout, grads, launch, all } = await backwardCase(EDGES_SHAPE, 81);
      const nan = (n: number) => new Float32Array(n).fill(NaN);
      const run = (rec: ReturnType<typeof engine.recorder>) => {
        attentionForwardVia(path === "auto" ? "tiled" : "chunked", rec, t.q, t.k, t.v, out, lse, launch);
        attentionBackwardVia(path, rec, dout, t.q, t.k, t.v, out, lse, grads[0], grads[1], grads[2], {
          ...launch,
          delta,
        });
      };
      // The first call fills the scratch textures with NaN wherever it writes them.
      const rec = engine.recorder();
      for (const x of [t.q, t.k, t.v, dout]) rec.write(x, nan(x.size));
      run(rec);
      rec.write(t.q, data.q);
      rec.write(t.k, data.k);
      rec.write(t.v, data.v);
      rec.write(dout, data.dout);
      for (const g of grads) rec.encoder().clearBuffer(g.buffer, 0, g.size * 4);
      run(rec);
      const got = [rec.read(out), ...grads.map((g) => rec.read(g))];
      await rec.submit();
      const fwd = attentionForwardCpu(data.q, data.k, data.v, o);
      const ref = attentionBackwardCpu(data.dout, data.q, data.k, data.v, o);
      assertClose(await got[0], fwd.out, FORWARD_TOL, "out");
      assertClose(await got[1], ref.dq, BACKWARD_TOL, "dq");
      assertClose(await got[2], ref.dk, BACKWARD_TOL, "dk");
      assertClose(await got[3], ref.dv, BACKWARD_TOL, "dv");
      for (const x of all) engine.pool.release(x);
    },
  });
}

Deno.test({
  name: "kvCacheWrite() places new rows at each sequence's offset and leaves other rows alone",
  ignore: !hasGpu,
  async fn() {
    const { pool, recorder } = await getEngine().then((e) => ({
      pool: e.pool,
      recorder: () => e.recorder(),
    }));
    const batch = 3, tq = 2, tmax = 5, kvHeads = 2, headDim = 4, row = kvHeads * headDim;
    const offsets = [0, 3, 2];
    const fresh = randomArray(batch * tq * row, 51);
    const old = randomArray(batch * tmax * row, 52);
    const expected = Float32Array.from(old);
    for (let b = 0; b < batch; b++) {
      for (let i = 0; i < tq; i++) {
        expected.set(
          fresh.subarray((b * tq + i) * row, (b * tq + i + 1) * row),
          (b * tmax + offsets[b] + i) * row,
        );
      }
    }
    const tFresh = pool.upload(fresh, [fresh.length]), cache = pool.upload(old, [old.length]);
    const qOffset = pool.upload(Int32Array.from(offsets), [batch]);
    const rec = recorder();
    kvCacheWrite(rec, tFresh, cache, { batch, tq, tmax, kvHeads, headDim, qOffset });
    const got = rec.read(cache);
    await rec.submit();
    assertClose(await got, expected, { atol: 0 }, "cache");
    for (const x of [tFresh, cache, qOffset]) pool.release(x);
  },
});

Deno.test({
  name: "attentionWarmup() compiles every pipeline a training step and a decoding step use",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const headDim = 12;
    await attentionWarmup(engine, headDim);
    const compiled = engine.kernels.size;
    const o = options({ batch: 2, tq: 3, tmax: 3, heads: 2, kvHeads: 1, headDim, softcap: 0, window: 0 });
    const data = inputs(o, 61);
    const t = await uploadCommon(o, data);
    const { pool } = engine;
    const b = await uploadBackward(o, data);
    const { out, lse, delta, grads } = b;
    const launch = { ...o, qOffset: t.qOffset, kvLen: t.kvLen };
    const rec = engine.recorder();
    for (const path of ["tiled", "decode"] as const) {
      attentionForwardVia(path, rec, t.q, t.k, t.v, out, lse, launch);
    }
    attentionBackward(rec, out, t.q, t.k, t.v, out, lse, grads[0], grads[1], grads[2], { ...launch, delta });
    kvCacheWrite(rec, t.k, t.v, {
      batch: o.batch,
      tq: o.tq,
      tmax: o.tmax,
      kvHeads: 1,
      headDim,
      qOffset: t.qOffset,
    });
    await rec.submit();
    assert.equal(engine.kernels.size, compiled, "no pipeline compiled after the warm-up");
    for (const x of [...Object.values(t), ...b.all]) pool.release(x);
  },
});
