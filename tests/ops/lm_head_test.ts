import { getEngine } from "../../src/gpu/engine.ts";
import type { RowChunked, TensorPool } from "../../src/gpu/tensor.ts";
import {
  lmHeadLogits,
  lmHeadLogitsCpu,
  type TokenLogProbOptions,
  tokenLogProbs,
  tokenLogProbsBackward,
  tokenLogProbsBackwardCpu,
  tokenLogProbsCpu,
} from "../../src/ops/lm_head.ts";
import { bf16Round, MATMUL_BF16_RTOL } from "../../src/ops/matmul.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, weightedSum } from "./check.ts";

// Logits are f32 dot products over ≤ 40 values of size O(1) (errors ~1e-6); logprob and lse add
// an f32 exp/log over ≤ 300 terms: 2e-5 absolute + 1e-5 relative.
const FORWARD_TOL = { atol: 2e-5, rtol: 1e-5 };
// Gradients sum ≤ 70 f32 products of (onehot − p)·W per element, plus the matmul's own
// summation order: 1e-4 absolute + 1e-4 relative.
const BACKWARD_TOL = { atol: 1e-4, rtol: 1e-4 };
// Central differences in f64 with h = 1e-6 on smooth functions: ~1e-8.
const FD_TOL = { atol: 1e-6, rtol: 1e-5 };

/** Uploads `[V × d]` as chunks of at most `rowsPerChunk` rows (forcing several chunks). */
function uploadChunks(
  pool: TensorPool,
  w: Float32Array,
  vocab: number,
  hidden: number,
  rowsPerChunk: number,
) {
  const chunks = [];
  for (let start = 0; start < vocab; start += rowsPerChunk) {
    const rows = Math.min(rowsPerChunk, vocab - start);
    chunks.push({
      start,
      rows,
      tensor: pool.upload(w.slice(start * hidden, (start + rows) * hidden), [rows, hidden]),
    });
  }
  return { rows: vocab, cols: hidden, chunks } satisfies RowChunked;
}

function readChunks(
  rec: { read: (t: RowChunked["chunks"][0]["tensor"]) => Promise<Float32Array> },
  m: RowChunked,
) {
  const parts = m.chunks.map((c) => rec.read(c.tensor));
  return async () => {
    const out = new Float32Array(m.rows * m.cols);
    for (const [i, c] of m.chunks.entries()) out.set(await parts[i], c.start * m.cols);
    return out;
  };
}

function targetsFor(tokens: number, vocab: number, seed: number): Int32Array {
  // Every third token is ignored (−1); the others cycle through the vocabulary, incl. its ends.
  return Int32Array.from({ length: tokens }, (_, t) => (t % 3 === 1 ? -1 : (t * 7 + seed) % vocab));
}

const FD_CASES: TokenLogProbOptions[] = [
  { tokens: 3, hidden: 5, vocab: 7, softcap: 0 },
  { tokens: 4, hidden: 3, vocab: 6, softcap: 1.5, temperature: 0.7 },
];

for (const o of FD_CASES) {
  Deno.test(`tokenLogProbsBackwardCpu() matches finite differences (softcap ${o.softcap}, temperature ${o.temperature ?? 1})`, () => {
    const h = randomArray(o.tokens * o.hidden, 1, 2), w = randomArray(o.vocab * o.hidden, 2, 2);
    const targets = targetsFor(o.tokens, o.vocab, 3);
    const weights = randomArray(o.tokens, 4);
    const { dh, dHead } = tokenLogProbsBackwardCpu(h, w, targets, weights, o);
    assertClose(
      dh,
      numericalGradient((x) => weightedSum(tokenLogProbsCpu(x, w, targets, o).logprob, weights), h),
      FD_TOL,
      "dh",
    );
    assertClose(
      dHead,
      numericalGradient((x) => weightedSum(tokenLogProbsCpu(h, x, targets, o).logprob, weights), w),
      FD_TOL,
      "dHead",
    );
  });
}

Deno.test("tokenLogProbsCpu() gives log-softmax of the target and 0 for ignored targets", () => {
  // h = [1], W = [[0], [ln 3]]: logits 0 and ln 3 → probabilities 1/4 and 3/4.
  const { logprob, lse } = tokenLogProbsCpu([1, 1], [0, Math.log(3)], [1, -1], {
    tokens: 2,
    hidden: 1,
    vocab: 2,
    softcap: 0,
  });
  assertClose(logprob, [Math.log(3 / 4), 0], { atol: 1e-12 }, "logprob");
  assertClose(lse, [Math.log(4), Math.log(4)], { atol: 1e-12 }, "lse");
});

interface GpuCase {
  o: TokenLogProbOptions;
  rowsPerChunk: number;
}

const GPU_CASES: GpuCase[] = [
  { o: { tokens: 1, hidden: 4, vocab: 1, softcap: 0 }, rowsPerChunk: 1 },
  { o: { tokens: 5, hidden: 8, vocab: 7, softcap: 0 }, rowsPerChunk: 3 },
  // Token blocks of 2 rows: 2 × 3 logits × 4 B = 24 bytes per block.
  { o: { tokens: 5, hidden: 8, vocab: 7, softcap: 2, temperature: 0.8, blockBytes: 24 }, rowsPerChunk: 3 },
  { o: { tokens: 70, hidden: 40, vocab: 300, softcap: 30, temperature: 1.3 }, rowsPerChunk: 128 },
  // Large enough for matmul's texture path (≥ 2 MFLOP per product).
  { o: { tokens: 256, hidden: 64, vocab: 1024, softcap: 30 }, rowsPerChunk: 512 },
];

function describe({ o, rowsPerChunk }: GpuCase): string {
  return `T${o.tokens} d${o.hidden} V${o.vocab} in chunks of ${rowsPerChunk}, softcap ${o.softcap}, ` +
    `temperature ${o.temperature ?? 1}${o.blockBytes ? `, ${o.blockBytes}-byte blocks` : ""}`;
}

for (const c of GPU_CASES) {
  const { o } = c;
  Deno.test({
    name: `LM head kernels match the CPU reference for ${describe(c)}`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const { pool } = engine;
      const h = randomArray(o.tokens * o.hidden, 11, 2), w = randomArray(o.vocab * o.hidden, 12, 2);
      const targets = targetsFor(o.tokens, o.vocab, 5);
      const weights = randomArray(o.tokens, 13);
      const previous = { dh: randomArray(h.length, 14), dHead: randomArray(w.length, 15) };
      const th = pool.upload(h, [o.tokens, o.hidden]);
      const head = uploadChunks(pool, w, o.vocab, o.hidden, c.rowsPerChunk);
      const dHead = uploadChunks(pool, previous.dHead, o.vocab, o.hidden, c.rowsPerChunk);
      const tTargets = pool.upload(targets, [o.tokens]);
      const tWeights = pool.upload(weights, [o.tokens]);
      const logits = pool.tensor([o.tokens, o.vocab]);
      const logprob = pool.tensor([o.tokens]), lse = pool.tensor([o.tokens]);
      const dh = pool.upload(previous.dh, [o.tokens, o.hidden]);
      const rec = engine.recorder();
      lmHeadLogits(rec, th, head, logits, o);
      tokenLogProbs(rec, th, head, tTargets, logprob, lse, o);
      tokenLogProbsBackward(rec, th, head, tTargets, lse, tWeights, dh, dHead, o);
      const got = {
        logits: rec.read(logits),
        logprob: rec.read(logprob),
        lse: rec.read(lse),
        dh: rec.read(dh),
      };
      const gotHead = readChunks(rec, dHead);
      await rec.submit();
      const ref = tokenLogProbsCpu(h, w, targets, o);
      const grads = tokenLogProbsBackwardCpu(h, w, targets, weights, o);
      const plus = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (x, i) => x + b[i]);
      assertClose(await got.logits, lmHeadLogitsCpu(h, w, o), FORWARD_TOL, "logits");
      assertClose(await got.logprob, ref.logprob, FORWARD_TOL, "logprob");
      assertClose(await got.lse, ref.lse, FORWARD_TOL, "lse");
      assertClose(await got.dh, plus(previous.dh, grads.dh), BACKWARD_TOL, "dh");
      assertClose(await gotHead(), plus(previous.dHead, grads.dHead), BACKWARD_TOL, "dHead");
      for (const t of [th, tTargets, tWeights, logits, logprob, lse, dh]) pool.release(t);
      for (const m of [head, dHead]) for (const ch of m.chunks) pool.release(ch.tensor);
    },
  });
}

Deno.test({
  name: "tokenLogProbsBackward() with a frozen head (null dHead) still accumulates dh",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const { pool } = engine;
    const o = { tokens: 6, hidden: 8, vocab: 20, softcap: 0 };
    const h = randomArray(o.tokens * o.hidden, 21), w = randomArray(o.vocab * o.hidden, 22);
    const targets = targetsFor(o.tokens, o.vocab, 1), weights = randomArray(o.tokens, 23);
    const th = pool.upload(h, [o.tokens, o.hidden]), head = uploadChunks(pool, w, o.vocab, o.hidden, 8);
    const tTargets = pool.upload(targets, [o.tokens]), tWeights = pool.upload(weights, [o.tokens]);
    const logprob = pool.tensor([o.tokens]), lse = pool.tensor([o.tokens]);
    const dh = pool.zeros([o.tokens, o.hidden]);
    const rec = engine.recorder();
    tokenLogProbs(rec, th, head, tTargets, logprob, lse, o);
    tokenLogProbsBackward(rec, th, head, tTargets, lse, tWeights, dh, null, o);
    const got = rec.read(dh);
    await rec.submit();
    assertClose(await got, tokenLogProbsBackwardCpu(h, w, targets, weights, o).dh, BACKWARD_TOL, "dh");
    for (const t of [th, tTargets, tWeights, logprob, lse, dh]) pool.release(t);
    for (const ch of head.chunks) pool.release(ch.tensor);
  },
});

Deno.test({
  name: "tokenLogProbsBackward() reuses the forward's logits once and recomputes them otherwise",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const { pool } = engine;
    // One chunk, one block and large enough for matmul's texture path: the reuse case.
    const o = { tokens: 256, hidden: 64, vocab: 1024, softcap: 0 };
    const w = randomArray(o.vocab * o.hidden, 31, 2);
    const [h1, h2] = [randomArray(o.tokens * o.hidden, 32, 2), randomArray(o.tokens * o.hidden, 33, 2)];
    const targets = targetsFor(o.tokens, o.vocab, 2), weights = randomArray(o.tokens, 34);
    const head = uploadChunks(pool, w, o.vocab, o.hidden, o.vocab);
    const [th1, th2] = [pool.upload(h1, [o.tokens, o.hidden]), pool.upload(h2, [o.tokens, o.hidden])];
    const tTargets = pool.upload(targets, [o.tokens]), tWeights = pool.upload(weights, [o.tokens]);
    const logprob = pool.tensor([o.tokens]);
    const [lse1, lse2] = [pool.tensor([o.tokens]), pool.tensor([o.tokens])];
    const [dh1, dh2] = [pool.zeros([o.tokens, o.hidden]), pool.zeros([o.tokens, o.hidden])];
    const rec = engine.recorder();
    // h1: forward, then two backwards (the second finds the logits consumed by the first).
    tokenLogProbs(rec, th1, head, tTargets, logprob, lse1, o);
    tokenLogProbsBackward(rec, th1, head, tTargets, lse1, tWeights, dh1, null, o);
    tokenLogProbsBackward(rec, th1, head, tTargets, lse1, tWeights, dh1, null, o);
    // h2: its forward's logits are replaced by the forward of h1 before its backward.
    tokenLogProbs(rec, th2, head, tTargets, logprob, lse2, o);
    tokenLogProbs(rec, th1, head, tTargets, logprob, lse1, o);
    tokenLogProbsBackward(rec, th2, head, tTargets, lse2, tWeights, dh2, null, o);
    const got = { dh1: rec.read(dh1), dh2: rec.read(dh2) };
    await rec.submit();
    const g1 = tokenLogProbsBackwardCpu(h1, w, targets, weights, o).dh;
    assertClose(await got.dh1, g1.map((x) => 2 * x), BACKWARD_TOL, "dh of h1 after two backwards");
    assertClose(
      await got.dh2,
      tokenLogProbsBackwardCpu(h2, w, targets, weights, o).dh,
      BACKWARD_TOL,
      "dh of h2",
    );
    for (const t of [th1, th2, tTargets, tWeights, logprob, lse1, lse2, dh1, dh2]) pool.release(t);
    for (const ch of head.chunks) pool.release(ch.tensor);
  },
});

for (
  const { o, rowsPerChunk } of [
    {
      o: { tokens: 256, hidden: 64, vocab: 1024, softcap: 0, precision: "bf16" as const },
      rowsPerChunk: 1024,
    },
    // Rows not a multiple of 8; chunks of 128, 128 and 44 columns (the last texel half filled).
    { o: { tokens: 70, hidden: 40, vocab: 300, softcap: 30, precision: "bf16" as const }, rowsPerChunk: 128 },
  ]
) {
  Deno.test({
    name:
      `LM head with bf16 products is exact on bf16 inputs and within the bf16 bound in the backward, frozen head too (T${o.tokens} d${o.hidden} V${o.vocab} in chunks of ${rowsPerChunk})`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const { pool } = engine;
      // Inputs already on the bf16 grid: the forward products are exact f32 dot products.
      const h = randomArray(o.tokens * o.hidden, 41, 2).map(bf16Round);
      const w = randomArray(o.vocab * o.hidden, 42, 2).map(bf16Round);
      const targets = targetsFor(o.tokens, o.vocab, 4), weights = randomArray(o.tokens, 43);
      const th = pool.upload(h, [o.tokens, o.hidden]);
      const head = uploadChunks(pool, w, o.vocab, o.hidden, rowsPerChunk);
      const dHead = uploadChunks(pool, new Float32Array(w.length), o.vocab, o.hidden, rowsPerChunk);
      const tTargets = pool.upload(targets, [o.tokens]), tWeights = pool.upload(weights, [o.tokens]);
      const logprob = pool.tensor([o.tokens]), lse = pool.tensor([o.tokens]);
      const dh = pool.zeros([o.tokens, o.hidden]), dhFrozen = pool.zeros([o.tokens, o.hidden]);
      const rec = engine.recorder();
      tokenLogProbs(rec, th, head, tTargets, logprob, lse, o);
      tokenLogProbsBackward(rec, th, head, tTargets, lse, tWeights, dh, dHead, o);
      tokenLogProbsBackward(rec, th, head, tTargets, lse, tWeights, dhFrozen, null, o);
      const got = { logprob: rec.read(logprob), dh: rec.read(dh), dhFrozen: rec.read(dhFrozen) };
      const gotHead = readChunks(rec, dHead);
      await rec.submit();
      assertClose(await got.logprob, tokenLogProbsCpu(h, w, targets, o).logprob, FORWARD_TOL, "logprob");
      // The logit gradient dl (Σ_v |dl_tv| ≤ 2|weight_t|) is rounded to bf16 in the backward
      // products: each dh element is off by ≤ MATMUL_BF16_RTOL·Σ_v |dl_tv|·|W_vc|, each dHead
      // element by ≤ MATMUL_BF16_RTOL·Σ_t |dl_tv|·|h_tc|.
      const maxAbs = (x: Float32Array) => x.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      const weightSum = weights.reduce((a, v) => a + Math.abs(v), 0);
      const grads = tokenLogProbsBackwardCpu(h, w, targets, weights, o);
      const f32 = BACKWARD_TOL.atol;
      const dhTol = { atol: MATMUL_BF16_RTOL * 2 * maxAbs(weights) * maxAbs(w) + f32 };
      assertClose(await got.dh, grads.dh, dhTol, "dh");
      assertClose(await got.dhFrozen, grads.dh, dhTol, "dh with a frozen head");
      assertClose(
        await gotHead(),
        grads.dHead,
        { atol: MATMUL_BF16_RTOL * 2 * weightSum * maxAbs(h) + f32 },
        "dHead",
      );
      for (const t of [th, tTargets, tWeights, logprob, lse, dh, dhFrozen]) pool.release(t);
      for (const m of [head, dHead]) for (const ch of m.chunks) pool.release(ch.tensor);
    },
  });
}
