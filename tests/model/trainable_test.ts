import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import { tinyQwen2Config } from "../../src/model/config.ts";
import { type CausalLM, modelFromTensors, nextTokenTargets } from "../../src/model/decoder.ts";
import { readChunks, writeChunks } from "../../src/model/params.ts";
import { TrainableModel } from "../../src/model/trainable.ts";
import { initialWeights } from "../../src/train/fresh_model.ts";
import { hasGpu, randomArray } from "../ops/check.ts";

/**
 * bf16 operands in the linear layers' and the LM head's matmuls vs exact f32. Each product carries
 * a relative error up to 2⁻⁷ (MATMUL_BF16_RTOL) of Σ|a||b|, ~2⁻⁹ typically; the residual stream
 * and attention stay f32. Measured on this model: loss 0.8–1.7e-4 relative; gradients 0.7–3 %
 * relative L2 error, up to 5 % for q/k (their gradient passes the softmax derivative P⊙(dP − δ),
 * whose cancellation magnifies the rounding of dP). Tolerances are about 5× / 2× those.
 */
const BF16_LOSS_RTOL = 1e-3;
const BF16_GRAD_RTOL = 0.1;

// Large enough for every block matmul to take the texture path, where bf16 applies.
const config = tinyQwen2Config({
  vocabSize: 512,
  hiddenSize: 128,
  intermediateSize: 384,
  numLayers: 2,
  numKvHeads: 2,
});
const ids = Array.from({ length: 96 }, (_, i) => (i * 37 + 5) % 512);

function freshModel(): Promise<CausalLM> {
  // std 0.2: activations far from zero, so bf16 rounding is visible in every product.
  return modelFromTensors(config, initialWeights(config, 7, 0.2));
}

/** Relative L2 error of `got` against `want`. */
function relativeL2(got: Float32Array, want: Float32Array): number {
  let error = 0, norm = 0;
  for (let i = 0; i < want.length; i++) {
    error += (got[i] - want[i]) ** 2;
    norm += want[i] ** 2;
  }
  return Math.sqrt(error / norm);
}

function maxAbs(x: Float32Array): number {
  return x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

Deno.test({
  name: "bf16 matmul precision keeps loss and every gradient close to f32, and is really used",
  ignore: !hasGpu,
  async fn() {
    const model = await freshModel();
    try {
      const exact = await model.lossAndGrads(ids);
      model.matmulPrecision = "bf16";
      const rounded = await model.lossAndGrads(ids);
      assert(
        Math.abs(rounded.loss - exact.loss) <= BF16_LOSS_RTOL * Math.abs(exact.loss),
        `loss ${rounded.loss} vs ${exact.loss}`,
      );
      let differs = false;
      for (const [name, g] of exact.grads) {
        const relative = relativeL2(rounded.grads.get(name)!, g);
        differs ||= relative > 0;
        assert(relative <= BF16_GRAD_RTOL, `${name}: relative L2 error ${relative}`);
      }
      assert(differs, "bf16 gradients equal the f32 ones bit for bit: the bf16 path was not taken");
    } finally {
      model.dispose();
    }
  },
});

Deno.test({
  name: "bf16 base products keep every LoRA adapter gradient close to f32",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const model = await freshModel();
    const trainable = TrainableModel.lora(model, {
      rank: 4,
      alpha: 8,
      targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    });
    try {
      // B starts at zero (PEFT init): a random B makes every LoRA product matter (dA, LoRA's dx).
      // The down-projections (u, du) are f32; the up-projections ride on the bf16 base products
      // and dA, dB read x and dy from their bf16 packs (src/model/linear.ts). Measured: 2.3–6.7 %
      // relative error (q/k the largest, as in full mode).
      let seed = 11;
      for (const p of trainable.parameters) {
        if (p.name.includes("lora_B")) {
          writeChunks(engine.pool, p.value, randomArray(p.value.rows * p.value.cols, seed++, 0.1));
        }
      }
      const batch = { ids: Int32Array.from(ids), batch: 1, seqLen: ids.length };
      const targets = nextTokenTargets(batch);
      const dLogprob = Float32Array.from(targets, (t) => (t >= 0 ? -1 / (ids.length - 1) : 0));
      const gradients = async () => {
        const rec = engine.recorder();
        trainable.zeroGrad(rec);
        const pass = model.forward(rec, batch, { train: true });
        pass.logProbs(rec, targets);
        pass.backward(rec, { dLogprob });
        const reads = trainable.parameters.map((p) => readChunks(rec, p.grad!));
        pass.release();
        await rec.submit();
        return await Promise.all(reads);
      };
      const exact = await gradients();
      model.matmulPrecision = "bf16";
      const rounded = await gradients();
      let differs = false;
      trainable.parameters.forEach((p, i) => {
        const relative = relativeL2(rounded[i], exact[i]);
        differs ||= relative > 0;
        assert(relative <= BF16_GRAD_RTOL, `${p.name}: relative L2 error ${relative}`);
      });
      assert(differs, "bf16 LoRA gradients equal the f32 ones bit for bit: the bf16 path was not taken");
    } finally {
      trainable.dispose();
      model.dispose();
    }
  },
});

for (const mode of ["full f32", "full bf16", "LoRA bf16"] as const) {
  Deno.test({
    name:
      `TrainableModel.warmup() compiles every pipeline of a ${mode} step and changes no weight or gradient`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const model = await freshModel();
      const lora = mode === "LoRA bf16";
      if (mode.endsWith("bf16")) model.matmulPrecision = "bf16";
      const trainable = lora
        ? TrainableModel.lora(model, { rank: 4, alpha: 8, targetModules: ["q_proj", "up_proj"] })
        : TrainableModel.full(model);
      try {
        const weight = model.params.get("model.layers.0.self_attn.q_proj.weight")!;
        const before = await engine.read(weight.value.chunks[0].tensor);
        await trainable.warmup();
        const compiled = engine.kernels.size;
        assertEquals(await engine.read(weight.value.chunks[0].tensor), before);
        for (const p of trainable.parameters) {
          assertEquals(maxAbs(await readGrad(trainable, p.name)), 0, p.name);
        }
        assertEquals(trainable.stepCount, 0);
        const batch = { ids: Int32Array.from(ids), batch: 1, seqLen: ids.length };
        await trainable.trainStep(batch, { lr: 1e-3 });
        assertEquals(engine.kernels.size, compiled, "the first step compiled a pipeline the warm-up missed");
      } finally {
        trainable.dispose();
        model.dispose();
      }
    },
  });
}

async function readGrad(trainable: TrainableModel, name: string): Promise<Float32Array> {
  const p = trainable.parameters.find((q) => q.name === name)!;
  const rec = trainable.model.engine.recorder();
  const values = readChunks(rec, p.grad!);
  await rec.submit();
  return values;
}
