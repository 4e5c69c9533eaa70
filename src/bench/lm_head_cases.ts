/**
 * LM-head cross-entropy benchmark at the reference decoder's shape (1024 tokens × d 256 × V 8192):
 * token log-probs forward (one NT matmul + the log-sum-exp pass), backward alone (logit
 * recompute, gradient pass, dh and dHead matmuls) and forward + backward as a training step
 * records them (the backward then reuses the forward's logits), with f32 and bf16 matmul
 * operands. GFLOP/s counts the matmuls, 2·T·d·V each.
 *
 * @module
 */
import type { Engine } from "../gpu/engine.ts";
import { allocRowChunked } from "../gpu/tensor.ts";
import { tokenLogProbs, tokenLogProbsBackward } from "../ops/lm_head.ts";
import { type BenchCase, benchCase } from "./harness.ts";

const [TOKENS, HIDDEN, VOCAB] = [1024, 256, 8192];

/** Forward and backward of the token log-prob loss, with f32 and (`.bf16`) bf16 matmul operands. */
export function lmHeadCases(): BenchCase[] {
  return (["f32", "bf16"] as const).flatMap((precision) => casesFor(precision));
}

function casesFor(precision: "f32" | "bf16"): BenchCase[] {
  const o = { tokens: TOKENS, hidden: HIDDEN, vocab: VOCAB, softcap: 0, precision };
  const suffix = precision === "bf16" ? ".bf16" : "";
  const setup = async (engine: Engine) => {
    const { pool } = engine;
    const head = allocRowChunked(pool, VOCAB, HIDDEN, "bench.head");
    const dHead = allocRowChunked(pool, VOCAB, HIDDEN, "bench.d_head");
    const rec = engine.recorder();
    for (const c of [...head.chunks, ...dHead.chunks]) rec.clear(c.tensor);
    await rec.submit();
    return {
      head,
      dHead,
      h: pool.zeros([TOKENS, HIDDEN]),
      dh: pool.zeros([TOKENS, HIDDEN]),
      targets: pool.upload(Int32Array.from({ length: TOKENS }, (_, t) => (t * 37) % VOCAB), [TOKENS]),
      weights: pool.upload(new Float32Array(TOKENS).fill(-1 / TOKENS), [TOKENS]),
      logprob: pool.zeros([TOKENS]),
      lse: pool.zeros([TOKENS]),
    };
  };
  type State = Awaited<ReturnType<typeof setup>>;
  const teardown = (engine: Engine, s: State) => {
    for (const t of [s.h, s.dh, s.targets, s.weights, s.logprob, s.lse]) engine.pool.release(t);
    for (const c of [...s.head.chunks, ...s.dHead.chunks]) engine.pool.release(c.tensor);
  };
  const matmulFlops = 2 * TOKENS * HIDDEN * VOCAB;
  const label = `T${TOKENS} d${HIDDEN} V${VOCAB}`;
  return [
    benchCase({
      name: `lm_head.logprob.forward${suffix}`,
      shape: label,
      flops: matmulFlops,
      setup,
      record: (rec, s: State) => tokenLogProbs(rec, s.h, s.head, s.targets, s.logprob, s.lse, o),
      teardown,
    }),
    benchCase({
      name: `lm_head.logprob.backward${suffix}`,
      shape: label,
      flops: 3 * matmulFlops,
      setup,
      record: (rec, s: State) =>
        tokenLogProbsBackward(rec, s.h, s.head, s.targets, s.lse, s.weights, s.dh, s.dHead, o),
      teardown,
    }),
    benchCase({
      name: `lm_head.logprob.forward+backward${suffix}`,
      shape: label,
      flops: 3 * matmulFlops,
      setup,
      record: (rec, s: State) => {
        tokenLogProbs(rec, s.h, s.head, s.targets, s.logprob, s.lse, o);
        tokenLogProbsBackward(rec, s.h, s.head, s.targets, s.lse, s.weights, s.dh, s.dHead, o);
      },
      teardown,
    }),
  ];
}
