/**
 * AdamW benchmark case: one clipped step over the reference decoder's 7.6 M parameters in its real
 * tensor list (51 tensors: embedding, LM head, final norm, and per layer q/k/v weights and biases,
 * o, gate/up/down, two norms), so per-tensor dispatch overhead is counted as in training.
 * GB/s counts the norm pass (read g) and the update (read p, g, m, v; write p, m, v): 32 B/param.
 *
 * @module
 */
import type { Tensor } from "../gpu/tensor.ts";
import { adamwStep } from "../ops/adamw.ts";
import { benchCase } from "./harness.ts";

const D = 256, FF = 768, VOCAB = 8192, LAYERS = 4;

/** Element counts of the reference decoder's parameter tensors (DESIGN §9). */
export function referenceDecoderParamSizes(): number[] {
  const layer = [D * D, D, D * D, D, D * D, D, D * D, FF * D, FF * D, D * FF, D, D];
  return [VOCAB * D, VOCAB * D, D, ...Array.from({ length: LAYERS }, () => layer).flat()];
}

/** One AdamW step with clipping active. */
export function adamwCases() {
  const sizes = referenceDecoderParamSizes();
  const total = sizes.reduce((a, b) => a + b, 0);
  return [
    benchCase({
      name: "adamw.step",
      shape: `${(total / 1e6).toFixed(2)} M params in ${sizes.length} tensors`,
      bytes: 32 * total,
      setup: (engine) => ({
        groups: sizes.map((n) => ({
          param: engine.pool.zeros([n]),
          grad: engine.pool.zeros([n]),
          m: engine.pool.zeros([n]),
          v: engine.pool.zeros([n]),
        })),
        gradNorm: engine.pool.zeros([1]),
      }),
      record: (rec, s) =>
        adamwStep(rec, s.groups, {
          lr: 1e-4,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: 0.01,
          step: 1,
          maxGradNorm: 1,
        }, s.gradNorm),
      teardown: (engine, s) => {
        const tensors: Tensor[] = s.groups.flatMap((g) => [g.param, g.grad, g.m, g.v]);
        [...tensors, s.gradNorm].forEach((t) => engine.pool.release(t));
      },
    }),
  ];
}
