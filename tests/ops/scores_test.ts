import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import { rankMetrics, targetRank } from "../../src/ops/ranking.ts";
import {
  type CosineScoreOptions,
  cosineScores,
  cosineScoresBackward,
  cosineScoresBackwardCpu,
  cosineScoresCpu,
  normalizeRows,
  scoreSoftmaxCE,
  scoreSoftmaxCEBackward,
  scoreSoftmaxCEBackwardCpu,
  scoreSoftmaxCECpu,
} from "../../src/ops/scores.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, rng, weightedSum } from "./check.ts";

// Scores are cosines (f32 error ~1e-7 over ≤ 65 terms) divided by τ = 0.02, i.e. ×50: 2e-5.
const SCORE_TOL = { atol: 2e-5, rtol: 1e-5 };
// Probabilities and losses from f32 exp/log over ≤ 130 entries of scores up to ±50: 2e-5.
const CE_TOL = { atol: 2e-5, rtol: 1e-4 };
// Gradients: ×1/τ = 50 amplification of f32 sums of ≤ 130 terms, through the normalisation.
const GRAD_TOL = { atol: 2e-4, rtol: 1e-4 };
// Central differences in f64, h = 1e-6, functions of curvature up to ~1/τ²: 1e-5 relative.
const FD_TOL = { atol: 1e-5, rtol: 1e-5 };

/** A 0/1 mask that always masks the pad item 0 and masks ~20 % of the rest. */
function maskFor(b: number, m: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: b * m }, (_, i) => (i % m === 0 || r() < 0.2 ? 0 : 1));
}

Deno.test("cosineScoresBackwardCpu() matches finite differences", () => {
  const o: CosineScoreOptions = { b: 3, m: 4, d: 5, tau: 0.5 };
  const u = randomArray(o.b * o.d, 1), items = randomArray(o.m * o.d, 2), w = randomArray(o.b * o.m, 3);
  const { du, dItems } = cosineScoresBackwardCpu(w, u, items, o);
  assertClose(du, numericalGradient((x) => weightedSum(cosineScoresCpu(x, items, o), w), u), FD_TOL, "du");
  assertClose(
    dItems,
    numericalGradient((x) => weightedSum(cosineScoresCpu(u, x, o), w), items),
    FD_TOL,
    "dItems",
  );
});

Deno.test("scoreSoftmaxCEBackwardCpu() matches finite differences with masks and skipped rows", () => {
  const o = { b: 4, m: 6 };
  const scores = randomArray(o.b * o.m, 4, 3), dLoss = randomArray(o.b, 5);
  const mask = maskFor(o.b, o.m, 6);
  // Row 2 ignores its target; row 3's target is masked (a repeat purchase).
  const target = Int32Array.from([1, 5, -1, 0]);
  const { probs } = scoreSoftmaxCECpu(scores, target, mask, o);
  const grad = scoreSoftmaxCEBackwardCpu(probs, target, mask, dLoss, o);
  const numeric = numericalGradient(
    (x) => weightedSum(scoreSoftmaxCECpu(x, target, mask, o).loss, dLoss),
    scores,
  );
  assertClose(grad, numeric, FD_TOL, "dScores");
});

Deno.test("scoreSoftmaxCECpu() gives zero probability to masked items and −log p of the target", () => {
  const { loss, probs } = scoreSoftmaxCECpu([0, Math.log(3), 7], [1], [1, 1, 0], { b: 1, m: 3 });
  assertClose(probs, [0.25, 0.75, 0], { atol: 1e-12 }, "probs");
  assertClose(loss, [-Math.log(0.75)], { atol: 1e-12 }, "loss");
});

Deno.test("targetRank() counts higher kept scores, breaks ties by item id and skips masked items", () => {
  const scores = [5, 9, 7, 7, 1];
  assert.equal(targetRank(scores, 3), 3, "tie after item 2");
  assert.equal(targetRank(scores, 2), 2, "tie before item 3");
  assert.equal(targetRank(scores, 3, [1, 0, 1, 1, 1]), 2, "masked better item");
  assert.equal(targetRank(scores, 1, [1, 0, 1, 1, 1]), Infinity, "masked target");
});

Deno.test("rankMetrics() gives HR and NDCG of one relevant item", () => {
  assertClose(Object.values(rankMetrics(1, 10)), [1, 1], { atol: 0 }, "rank 1");
  assertClose(Object.values(rankMetrics(3, 10)), [1, 0.5], { atol: 1e-15 }, "rank 3");
  assertClose(Object.values(rankMetrics(11, 10)), [0, 0], { atol: 0 }, "rank 11");
});

const GPU_SHAPES: CosineScoreOptions[] = [
  { b: 1, m: 1, d: 1, tau: 0.02 },
  { b: 4, m: 4, d: 8, tau: 0.02 },
  { b: 3, m: 130, d: 20, tau: 0.02 },
  { b: 5, m: 70, d: 65, tau: 0.5 },
];

for (const o of GPU_SHAPES) {
  Deno.test({
    name: `score kernels match the CPU reference for b${o.b} m${o.m} d${o.d} τ ${o.tau}`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const { pool } = engine;
      const ce = { b: o.b, m: o.m };
      const u = randomArray(o.b * o.d, 11), items = randomArray(o.m * o.d, 12);
      const mask = o.m === 1 ? new Float32Array([1]) : maskFor(o.b, o.m, 13);
      const target = Int32Array.from({ length: o.b }, (_, r) => (r === 2 ? -1 : (r * 5 + 1) % o.m));
      const dLoss = randomArray(o.b, 14);
      const previous = { du: randomArray(u.length, 15), dItems: randomArray(items.length, 16) };
      const t = {
        u: pool.upload(u, [o.b, o.d]),
        items: pool.upload(items, [o.m, o.d]),
        mask: pool.upload(mask, [o.b, o.m]),
        target: pool.upload(target, [o.b]),
        dLoss: pool.upload(dLoss, [o.b]),
        scores: pool.tensor([o.b, o.m]),
        probs: pool.tensor([o.b, o.m]),
        loss: pool.tensor([o.b]),
        dScores: pool.zeros([o.b, o.m]),
        du: pool.upload(previous.du, [o.b, o.d]),
        dItems: pool.upload(previous.dItems, [o.m, o.d]),
      };
      const rec = engine.recorder();
      cosineScores(rec, t.u, t.items, t.scores, o);
      scoreSoftmaxCE(rec, t.scores, t.target, t.mask, t.loss, t.probs, ce);
      scoreSoftmaxCEBackward(rec, t.probs, t.target, t.mask, t.dLoss, t.dScores, ce);
      cosineScoresBackward(rec, t.dScores, t.u, t.items, t.du, t.dItems, o);
      const got = {
        scores: rec.read(t.scores),
        probs: rec.read(t.probs),
        loss: rec.read(t.loss),
        dScores: rec.read(t.dScores),
        du: rec.read(t.du),
        dItems: rec.read(t.dItems),
      };
      await rec.submit();
      const scores = cosineScoresCpu(u, items, o);
      assertClose(await got.scores, scores, SCORE_TOL, "scores");
      // The CE and backward references start from the GPU's scores, so each stage is checked alone.
      const gpuScores = await got.scores;
      const ref = scoreSoftmaxCECpu(gpuScores, target, mask, ce);
      assertClose(await got.probs, ref.probs, CE_TOL, "probs");
      assertClose(await got.loss, ref.loss, CE_TOL, "loss");
      const dScores = scoreSoftmaxCEBackwardCpu(await got.probs, target, mask, dLoss, ce);
      assertClose(await got.dScores, dScores, CE_TOL, "dScores");
      const grads = cosineScoresBackwardCpu(await got.dScores, u, items, o);
      const plus = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (x, i) => x + b[i]);
      assertClose(await got.du, plus(previous.du, grads.du), GRAD_TOL, "du");
      assertClose(await got.dItems, plus(previous.dItems, grads.dItems), GRAD_TOL, "dItems");
      for (const x of Object.values(t)) pool.release(x);
    },
  });
}

Deno.test({
  name: "cosineScores() with a pre-normalised catalogue (itemsNormalized) gives the same scores",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const { pool } = engine;
    const o = { b: 3, m: 50, d: 12, tau: 0.02 };
    const u = randomArray(o.b * o.d, 31), items = randomArray(o.m * o.d, 32, 3);
    const tu = pool.upload(u, [o.b, o.d]), tItems = pool.upload(items, [o.m, o.d]);
    const unit = pool.tensor([o.m, o.d]), scores = pool.tensor([o.b, o.m]);
    const rec = engine.recorder();
    normalizeRows(rec, tItems, unit, { rows: o.m, d: o.d });
    cosineScores(rec, tu, unit, scores, { ...o, itemsNormalized: true });
    const got = rec.read(scores);
    await rec.submit();
    assertClose(await got, cosineScoresCpu(u, items, o), SCORE_TOL, "scores");
    for (const t of [tu, tItems, unit, scores]) pool.release(t);
  },
});
