/**
 * Attention benchmark cases at the reference decoder's shape (B 4, T 256, H 4 = KVH 4, D 64):
 * forward and backward of a training step, and one decoding step (1 new token per sequence
 * against 256 cached keys). GFLOP/s counts the nominal causal work, 2·B·H·(T²/2)·D per product
 * (2 products forward, 5 backward; 2·B·H·T·D per product when decoding).
 *
 * @module
 */
import type { Engine } from "../gpu/engine.ts";
import { attentionBackward, attentionForward } from "../ops/attention.ts";
import { type BenchCase, benchCase } from "./harness.ts";

const [B, T, H, D] = [4, 256, 4, 64];

/** Forward and backward of one attention layer, and one decoding step. */
export function attentionCases(): BenchCase[] {
  const shape = {
    batch: B,
    tq: T,
    tmax: T,
    heads: H,
    kvHeads: H,
    headDim: D,
    scale: 1 / Math.sqrt(D),
    softcap: 0,
    window: 0,
  };
  const rows = B * T * H * D;
  const setup = (engine: Engine) => ({
    q: engine.pool.zeros([rows]),
    k: engine.pool.zeros([rows]),
    v: engine.pool.zeros([rows]),
    out: engine.pool.zeros([rows]),
    dq: engine.pool.zeros([rows]),
    dk: engine.pool.zeros([rows]),
    dv: engine.pool.zeros([rows]),
    lse: engine.pool.zeros([B * H * T]),
    delta: engine.pool.zeros([B * H * T]),
    qOffset: engine.pool.zeros([B], "i32"),
    kvLen: engine.pool.upload(new Int32Array(B).fill(T), [B]),
  });
  type State = ReturnType<typeof setup>;
  const teardown = (engine: Engine, s: State) => Object.values(s).forEach((t) => engine.pool.release(t));
  const product = 2 * B * H * (T * T / 2) * D;
  const label = `B${B} T${T} H${H} D${D}`;
  return [
    benchCase({
      name: "attention.forward",
      shape: label,
      flops: 2 * product,
      setup,
      record: (rec, s: State) => attentionForward(rec, s.q, s.k, s.v, s.out, s.lse, { ...shape, ...s }),
      teardown,
    }),
    benchCase({
      name: "attention.backward",
      shape: label,
      flops: 5 * product,
      setup,
      record: (rec, s: State) =>
        attentionBackward(rec, s.out, s.q, s.k, s.v, s.out, s.lse, s.dq, s.dk, s.dv, { ...shape, ...s }),
      teardown,
    }),
    benchCase({
      name: "attention.decode",
      shape: `B${B} Tq1 keys${T} H${H} D${D}`,
      flops: 2 * 2 * B * H * T * D,
      setup: (engine: Engine) => {
        const s = setup(engine);
        engine.pool.release(s.qOffset);
        return { ...s, qOffset: engine.pool.upload(new Int32Array(B).fill(T - 1), [B]) };
      },
      record: (rec, s: State) =>
        attentionForward(rec, s.q, s.k, s.v, s.out, s.lse, { ...shape, ...s, tq: 1 }),
      teardown,
    }),
  ];
}
