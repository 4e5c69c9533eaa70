import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import {
  filteredDistributionCpu,
  sampleTokens,
  sampleTokensCpu,
  type SamplingOptions,
  type SamplingShape,
  validateSampling,
} from "../../src/ops/sampling.ts";
import { hasGpu, randomArray } from "./check.ts";

// Tolerances: sampling is discrete. GPU and CPU draw with the same uniform u per (seed, step, row), so
// they pick the same token unless u·Z lies within the f32 rounding (~1e-6 relative) of a boundary
// between two tokens' cumulative masses: for ~1000 draws over ≤ 50 plausible tokens the expected
// number of such cases is ≪ 1, so at most 0.5 % disagreements are allowed. Frequencies are checked
// with Pearson's χ² against the CPU's filtered distribution, bounded by df + 6·√(2·df) (~6σ for
// the χ² distribution: a deterministic seed that passes once passes always, yet a wrong filter or a
// biased draw shifts χ² by hundreds).
const MAX_DISAGREEMENT = 0.005;
const chiSquareBound = (df: number) => df + 6 * Math.sqrt(2 * df);

const PLAIN: SamplingOptions = { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1, step: 0 };

/** Runs `sampleTokens` on the GPU for `[batch × vocab]` logits and returns the tokens. */
async function sampleGpu(
  logits: Float32Array,
  previous: Int32Array,
  shape: SamplingShape,
): Promise<Int32Array> {
  const engine = await getEngine();
  const pool = engine.pool;
  const history = previous.length / shape.batch;
  const tLogits = pool.upload(logits, [shape.batch, shape.vocab]);
  const tPrevious = pool.upload(previous, [shape.batch, history]);
  const out = pool.tensor([shape.batch], "i32");
  const rec = engine.recorder();
  sampleTokens(rec, tLogits, tPrevious, out, shape);
  const tokens = rec.readInt(out);
  await rec.submit();
  for (const t of [tLogits, tPrevious, out]) pool.release(t);
  return tokens;
}

/** `rows` copies of one row. */
function repeatRow(row: ArrayLike<number>, rows: number): Float32Array {
  const out = new Float32Array(rows * row.length);
  for (let r = 0; r < rows; r++) out.set(Array.from(row), r * row.length);
  return out;
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

Deno.test("validateSampling() rejects top-p outside (0, 1] and negative top-k", () => {
  assert.throws(() => validateSampling({ ...PLAIN, topP: 0 }), /topP 0 /);
  assert.throws(() => validateSampling({ ...PLAIN, topK: -1 }), /topK -1 /);
});

Deno.test("filteredDistributionCpu() keeps the smallest top-p set reaching p, and top-k ties", () => {
  const logits = [Math.log(0.6), Math.log(0.3), Math.log(0.1)];
  const support = (p: Float64Array) => Array.from(p, (v, i) => (v > 0 ? i : -1)).filter((i) => i >= 0);
  assert.deepEqual(support(filteredDistributionCpu(logits, [], { ...PLAIN, topP: 0.55 })), [0]);
  assert.deepEqual(support(filteredDistributionCpu(logits, [], { ...PLAIN, topP: 0.65 })), [0, 1]);
  assert.deepEqual(support(filteredDistributionCpu(logits, [], { ...PLAIN, topP: 0.95 })), [0, 1, 2]);
  assert.deepEqual(support(filteredDistributionCpu([1, 3, 3, 3, 0], [], { ...PLAIN, topK: 2 })), [1, 2, 3]);
  const probs = filteredDistributionCpu(logits, [], { ...PLAIN, topP: 0.65 });
  assert.ok(Math.abs(probs[0] - 2 / 3) < 1e-12 && Math.abs(probs[1] - 1 / 3) < 1e-12);
});

for (
  const { batch, vocab } of [{ batch: 1, vocab: 1 }, { batch: 3, vocab: 1000 }, { batch: 2, vocab: 151_936 }]
) {
  Deno.test({
    name: `greedy sampling returns the argmax (lowest index on ties) for ${batch}×${vocab}`,
    ignore: !hasGpu,
    async fn() {
      const logits = randomArray(batch * vocab, vocab, 10);
      if (vocab > 10) {
        logits[7] = 50; // a tie in row 0: index 7 must win over index 9
        logits[9] = 50;
      }
      const tokens = await sampleGpu(logits, new Int32Array(batch).fill(-1), {
        ...PLAIN,
        temperature: 0,
        batch,
        vocab,
      });
      const expected = Array.from(
        { length: batch },
        (_, r) => argmax(logits.subarray(r * vocab, (r + 1) * vocab)),
      );
      assert.deepEqual(Array.from(tokens), expected);
      if (vocab > 10) assert.equal(tokens[0], 7);
    },
  });
}

Deno.test({
  name: "sampling with top-k 1 equals greedy for every seed",
  ignore: !hasGpu,
  async fn() {
    const batch = 64, vocab = 777;
    const logits = randomArray(batch * vocab, 3, 4);
    const previous = new Int32Array(batch).fill(-1);
    const greedy = await sampleGpu(logits, previous, { ...PLAIN, temperature: 0, batch, vocab });
    for (const seed of [1, 2, 3]) {
      const topOne = await sampleGpu(logits, previous, {
        ...PLAIN,
        temperature: 1.3,
        topK: 1,
        seed,
        batch,
        vocab,
      });
      assert.deepEqual(Array.from(topOne), Array.from(greedy));
    }
  },
});

Deno.test({
  name: "repetition penalty moves the argmax away from a seen token, once per token",
  ignore: !hasGpu,
  async fn() {
    // Row 0: 2.0 / 1.25 = 1.6 < 1.9, so token 1 wins. Row 1: a token seen twice is penalised once:
    // 2.0 / 1.25 = 1.6 > 1.5 keeps token 0 (twice would give 1.28). Row 2: negative logits are
    // multiplied: −0.1·1.25 = −0.125 < −0.12, so token 1 wins.
    const logits = Float32Array.from([2.0, 1.9, 0, 2.0, 1.5, 0, -0.1, -0.12, -5]);
    const previous = Int32Array.from([0, -1, 0, 0, 0, -1]);
    const shape = { ...PLAIN, temperature: 0, repetitionPenalty: 1.25, batch: 3, vocab: 3 };
    assert.deepEqual(Array.from(await sampleGpu(logits, previous, shape)), [1, 0, 1]);
    assert.deepEqual(Array.from(await sampleGpu(logits, previous, { ...shape, repetitionPenalty: 1 })), [
      0,
      0,
      0,
    ]);
  },
});

const SETTINGS: (Omit<SamplingOptions, "seed" | "step"> & { name: string })[] = [
  { name: "temperature only", temperature: 0.7, topK: 0, topP: 1, repetitionPenalty: 1 },
  { name: "top-k", temperature: 1, topK: 10, topP: 1, repetitionPenalty: 1 },
  { name: "top-p", temperature: 1.2, topK: 0, topP: 0.8, repetitionPenalty: 1 },
  { name: "all filters", temperature: 0.8, topK: 12, topP: 0.9, repetitionPenalty: 1.3 },
];

for (const settings of SETTINGS) {
  Deno.test({
    name: `sampled frequencies match the CPU filtered distribution (${settings.name})`,
    ignore: !hasGpu,
    async fn() {
      const vocab = 50, rows = 4000;
      const row = randomArray(vocab, 11, 3);
      const history = Int32Array.from([argmax(row), 3, -1, 3]);
      const logits = repeatRow(row, rows);
      const previous = Int32Array.from(repeatRow(history, rows));
      const shape = { ...settings, seed: 1234, step: 5, batch: rows, vocab };
      const tokens = await sampleGpu(logits, previous, shape);
      const probs = filteredDistributionCpu(row, history, shape);
      const counts = new Float64Array(vocab);
      for (const t of tokens) counts[t]++;
      let chi = 0, df = -1;
      for (let j = 0; j < vocab; j++) {
        if (probs[j] === 0) {
          assert.equal(counts[j], 0, `token ${j} is filtered out but was drawn ${counts[j]} times`);
          continue;
        }
        chi += (counts[j] - rows * probs[j]) ** 2 / (rows * probs[j]);
        df++;
      }
      assert.ok(df >= 1, `the filters left ${df + 1} tokens`);
      assert.ok(
        chi <= chiSquareBound(df),
        `χ² ${chi.toFixed(1)} above ${chiSquareBound(df).toFixed(1)} (df ${df})`,
      );
      const cpu = sampleTokensCpu(logits, previous, shape);
      const disagreements = tokens.filter((t, i) => t !== cpu[i]).length;
      assert.ok(
        disagreements <= MAX_DISAGREEMENT * rows,
        `${disagreements} draws differ from the CPU reference`,
      );
    },
  });
}

Deno.test({
  name: "top-p edge cases: a dominant token, p = 1, and a tiny p",
  ignore: !hasGpu,
  async fn() {
    const vocab = 40, rows = 500;
    const row = randomArray(vocab, 21, 1);
    row[17] = 12; // ≈ 99.99 % of the mass
    const logits = repeatRow(row, rows);
    const previous = new Int32Array(rows).fill(-1);
    const base = { ...PLAIN, seed: 9, batch: rows, vocab };
    const dominant = await sampleGpu(logits, previous, { ...base, topP: 0.9 });
    assert.ok(dominant.every((t) => t === 17));
    const tiny = await sampleGpu(logits, previous, { ...base, temperature: 50, topP: 1e-6 });
    assert.ok(tiny.every((t) => t === 17));
    const full = await sampleGpu(logits, previous, { ...base, temperature: 50, topP: 1 });
    assert.deepEqual(
      Array.from(full),
      Array.from(sampleTokensCpu(logits, previous, { ...base, temperature: 50 })),
    );
    assert.ok(new Set(full).size > 30, "p = 1 must keep the whole vocabulary");
  },
});

Deno.test({
  name: "sampling at vocab 151936 agrees with the CPU reference",
  ignore: !hasGpu,
  async fn() {
    const batch = 3, vocab = 151_936;
    const logits = randomArray(batch * vocab, 31, 8);
    const previous = Int32Array.from([5, 77, -1, 151_935, 0, 0]);
    for (const [topK, topP] of [[0, 1], [50, 0.95], [0, 0.9], [1000, 1]]) {
      const shape = {
        temperature: 0.9,
        topK,
        topP,
        repetitionPenalty: 1.1,
        seed: 77,
        step: 12,
        batch,
        vocab,
      };
      assert.deepEqual(
        Array.from(await sampleGpu(logits, previous, shape)),
        Array.from(sampleTokensCpu(logits, previous, shape)),
        `topK ${topK}, topP ${topP}`,
      );
    }
  },
});
