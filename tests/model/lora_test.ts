/**
 * LoRA and full fine-tuning through `TrainableModel` on the qwen2-tiny fixture: what trains, what
 * stays frozen, merged vs unmerged forwards, adapter and checkpoint round trips, and the LoRA
 * gradients against the chain rule applied to the full-weight gradient.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readLoraAdapter } from "../../src/model/checkpoint.ts";
import { type CausalLM, loadModel, nextTokenTargets, type TokenBatch } from "../../src/model/decoder.ts";
import { adaptedLinears, attachLoraAdapter, mergeLora, unmergeLora } from "../../src/model/lora.ts";
import { ensureGrad, readChunks } from "../../src/model/params.ts";
import { TrainableModel } from "../../src/model/trainable.ts";
import { assertClose } from "../ops/check.ts";
import { FIXTURES } from "./fixtures.ts";

const DIR = join(FIXTURES, "qwen2-tiny");
const ignore = !existsSync(DIR);
const TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
/** Folding s·B·A into W changes the f32 summation order of the forward: a few ulps of the logits. */
const MERGE_ATOL = 2e-5;
/** LoRA grads computed through the adapter path vs from dW: f32 sums over 24 rows in another order. */
const CHAIN_RULE_RTOL_OF_MAX = 1e-4;

const IDS = [5, 17, 42, 42, 8, 250, 3, 99, 120, 7, 64, 11];
const batch: TokenBatch = { ids: Int32Array.from(IDS), batch: 1, seqLen: IDS.length };

async function snapshot(model: CausalLM): Promise<Map<string, Float32Array>> {
  const rec = model.engine.recorder();
  const reads = [...model.params.values()].map((p) => [p.name, readChunks(rec, p.value)] as const);
  await rec.submit();
  return new Map(await Promise.all(reads.map(async ([n, v]) => [n, await v] as const)));
}

/** Logits of IDS under the checkpoint saved in `dir`. */
async function logitsOfSaved(dir: string): Promise<Float32Array> {
  const reloaded = await loadModel(dir);
  try {
    return await reloaded.logits(IDS);
  } finally {
    reloaded.dispose();
  }
}

Deno.test({
  name: "LoRA training changes only adapter tensors, and merged logits equal unmerged ones",
  ignore,
  async fn() {
    const model = await loadModel(DIR);
    const trainable = TrainableModel.lora(model, { rank: 4, alpha: 8, targetModules: [...TARGETS], seed: 1 });
    try {
      const before = await snapshot(model);
      const first = await trainable.trainStep(batch, { lr: 1e-2 });
      let last = first;
      for (let i = 0; i < 4; i++) last = await trainable.trainStep(batch, { lr: 1e-2 });
      assert(last.loss < first.loss, `loss ${first.loss} → ${last.loss} should fall`);
      const after = await snapshot(model);
      for (const [name, values] of before) assert.deepEqual(after.get(name), values, `${name} changed`);
      const adapter = await (async () => {
        const rec = model.engine.recorder();
        const reads = adaptedLinears(model).map(({ linear }) => readChunks(rec, linear.lora!.b.value));
        await rec.submit();
        return Promise.all(reads);
      })();
      assert(adapter.every((b) => b.some((v) => v !== 0)), "every lora_B should have moved from zero");

      const unmerged = await model.logits(IDS);
      await mergeLora(model);
      const merged = await model.logits(IDS);
      await unmergeLora(model);
      assertClose(merged, unmerged, { atol: MERGE_ATOL }, "merged vs unmerged logits");
    } finally {
      trainable.dispose();
      model.dispose();
    }
  },
});

Deno.test({
  name: "a saved PEFT adapter reloads onto the base model with identical logits",
  ignore,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "r2ec-lora-" });
    const model = await loadModel(DIR);
    const trainable = TrainableModel.lora(model, {
      rank: 2,
      alpha: 16,
      targetModules: ["q_proj", "down_proj"],
    });
    const fresh = await loadModel(DIR);
    try {
      await trainable.trainStep(batch, { lr: 1e-2 });
      const want = await model.logits(IDS);
      await trainable.saveAdapter(join(out, "adapter"));
      attachLoraAdapter(fresh, await readLoraAdapter(join(out, "adapter"), fresh.config));
      assert.deepEqual(await fresh.logits(IDS), want);
    } finally {
      trainable.dispose();
      model.dispose();
      fresh.dispose();
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "full fine-tuning lowers the loss and a saved checkpoint reloads with identical logits",
  ignore,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "r2ec-full-" });
    const model = await loadModel(DIR);
    const trainable = TrainableModel.full(model);
    try {
      const first = await trainable.trainStep(batch, { lr: 3e-3, maxGradNorm: 1 });
      const second = await trainable.trainStep(batch, { lr: 3e-3, maxGradNorm: 1 });
      assert(second.loss < first.loss, `loss ${first.loss} → ${second.loss} should fall`);
      assert(first.gradNorm > 0);
      await trainable.save(join(out, "model"));
      assert.deepEqual(await logitsOfSaved(join(out, "model")), await model.logits(IDS));
    } finally {
      trainable.dispose();
      model.dispose();
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "LoRA gradients equal the chain rule on the merged weight gradient: dB = s·dW·Aᵀ, dA = s·Bᵀ·dW",
  ignore,
  async fn() {
    const model = await loadModel(DIR);
    const trainable = TrainableModel.lora(model, {
      rank: 3,
      alpha: 6,
      targetModules: ["v_proj", "up_proj"],
      seed: 3,
    });
    try {
      // Give B non-zero values so dA is non-zero, then compare at this point.
      await trainable.trainStep(batch, { lr: 5e-2 });
      const grads = async (lora: boolean) => {
        if (!lora) {
          await mergeLora(model);
          for (const p of model.params.values()) p.trainable = true;
        }
        const rec = model.engine.recorder();
        model.zeroGrads(rec);
        const pass = model.forward(rec, batch, { train: true });
        pass.logProbs(rec, nextTokenTargets(batch));
        pass.backward(rec, {
          dLogprob: new Float32Array(IDS.length).fill(-1 / (IDS.length - 1)).fill(0, -1),
        });
        const reads = adaptedLinears(model).map(({ linear }) => ({
          linear,
          dW: lora ? null : readChunks(rec, ensureGrad(model.engine.pool, linear.weight)),
          dA: lora ? readChunks(rec, linear.lora!.a.grad!) : null,
          dB: lora ? readChunks(rec, linear.lora!.b.grad!) : null,
          a: readChunks(rec, linear.lora!.a.value),
          b: readChunks(rec, linear.lora!.b.value),
        }));
        pass.release();
        await rec.submit();
        return reads;
      };
      const viaLora = await grads(true);
      const viaFull = await grads(false);
      for (let i = 0; i < viaLora.length; i++) {
        const { linear } = viaLora[i];
        const { rank, scale } = linear.lora!;
        const [n, k] = [linear.outFeatures, linear.inFeatures];
        const [a, b, dW] = [await viaLora[i].a, await viaLora[i].b, await viaFull[i].dW!];
        const wantB = new Float64Array(n * rank);
        const wantA = new Float64Array(rank * k);
        for (let o = 0; o < n; o++) {
          for (let j = 0; j < k; j++) {
            for (let r = 0; r < rank; r++) {
              wantB[o * rank + r] += scale * dW[o * k + j] * a[r * k + j];
              wantA[r * k + j] += scale * b[o * rank + r] * dW[o * k + j];
            }
          }
        }
        for (
          const [got, want, what] of [[await viaLora[i].dB!, wantB, "dB"], [
            await viaLora[i].dA!,
            wantA,
            "dA",
          ]] as const
        ) {
          const max = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          assert(max > 0, `${linear.weight.name} ${what} is all zero`);
          assertClose(got, want, { atol: CHAIN_RULE_RTOL_OF_MAX * max }, `${linear.weight.name} ${what}`);
        }
      }
    } finally {
      trainable.dispose();
      model.dispose();
    }
  },
});

/** Counts `queue.submit` calls (each is one CPU↔GPU round trip here) while `body` runs. */
async function countSubmits(model: CausalLM, body: () => Promise<unknown>): Promise<number> {
  const queue = model.engine.gpu.device.queue;
  const submit = queue.submit;
  let count = 0;
  queue.submit = (buffers) => {
    count++;
    submit.call(queue, buffers);
  };
  try {
    await body();
  } finally {
    queue.submit = submit;
  }
  return count;
}

Deno.test({
  name: "a training step (forward, backward, AdamW) and a LoRA training step each submit once",
  ignore,
  async fn() {
    for (const mode of ["full", "lora"] as const) {
      const model = await loadModel(DIR);
      const trainable = mode === "full"
        ? TrainableModel.full(model)
        : TrainableModel.lora(model, { rank: 2, alpha: 4, targetModules: ["q_proj", "up_proj"] });
      try {
        assert.equal(
          await countSubmits(model, () => trainable.trainStep(batch, { lr: 1e-3, maxGradNorm: 1 })),
          1,
          mode,
        );
      } finally {
        trainable.dispose();
        model.dispose();
      }
    }
  },
});

Deno.test({
  name:
    "a merged HF checkpoint of a LoRA model reloads with its logits, and saving leaves the base weights untouched",
  ignore,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "r2ec-merged-" });
    const model = await loadModel(DIR);
    const trainable = TrainableModel.lora(model, { rank: 4, alpha: 8, targetModules: [...TARGETS], seed: 2 });
    try {
      await trainable.trainStep(batch, { lr: 1e-2 });
      const before = await snapshot(model);
      await trainable.save(join(out, "merged"));
      assert.deepEqual(await snapshot(model), before);
      const want = await model.logits(IDS);
      assertClose(
        await logitsOfSaved(join(out, "merged")),
        want,
        { atol: MERGE_ATOL },
        "merged checkpoint logits",
      );
    } finally {
      trainable.dispose();
      model.dispose();
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a frozen embedding skips the first block's input products, and every adapter gradient stays bit-identical",
  ignore,
  async fn() {
    // With adapters on q/k/v their dy packs still serve du = s·dy·B; without, they go too.
    const mlpOnly: (typeof TARGETS)[number][] = ["gate_proj", "up_proj", "down_proj"];
    for (const targets of [[...TARGETS], mlpOnly]) {
      const model = await loadModel(DIR);
      model.matmulPrecision = "bf16";
      const trainable = TrainableModel.lora(model, { rank: 4, alpha: 8, targetModules: targets, seed: 5 });
      // 2 × 40 rows: enough for the packed bf16 path, where the adapter's up-projection rides on the
      // products that are skipped.
      const ids = Int32Array.from({ length: 80 }, (_, i) => (i * 37 + 11) % 256);
      const rows: TokenBatch = { ids, batch: 2, seqLen: 40 };
      try {
        // Non-zero B, so that dA is non-zero.
        await trainable.trainStep(rows, { lr: 5e-2 });
        const run = async (embeddingTrains: boolean) => {
          model.embed.trainable = embeddingTrains;
          const rec = model.engine.recorder();
          const labels: string[] = [];
          const dispatch = rec.dispatch.bind(rec);
          rec.dispatch = (kernel, ...rest) => {
            labels.push(kernel.label);
            dispatch(kernel, ...rest);
          };
          model.zeroGrads(rec);
          const pass = model.forward(rec, rows, { train: true });
          pass.logProbs(rec, nextTokenTargets(rows));
          pass.backward(rec, { dLogprob: new Float32Array(ids.length).fill(-1 / ids.length) });
          const grads = adaptedLinears(model).flatMap(({ linear }) => [
            readChunks(rec, linear.lora!.a.grad!),
            readChunks(rec, linear.lora!.b.grad!),
          ]);
          pass.release();
          await rec.submit();
          const count = (prefix: string) => labels.filter((l) => l.startsWith(prefix)).length;
          return {
            products: count("matmul_tex:"),
            dyPacks: count("matmul_pack:matmul_pack_bf16_rows"),
            grads,
          };
        };
        const frozen = await run(false);
        const training = await run(true);
        // A trainable embedding also trains a tied LM head: one weight-gradient product more.
        const tiedHead = model.head === model.embed ? 1 : 0;
        assert.equal(frozen.products, training.products - 3 - tiedHead, `${targets}: q, k, v input products`);
        const skippedDyPacks = targets === mlpOnly ? 3 : 0;
        assert.equal(frozen.dyPacks, training.dyPacks - skippedDyPacks, `${targets}: q, k, v dy packs`);
        assert.equal(frozen.grads.length, 2 * targets.length * model.blocks.length);
        for (let i = 0; i < frozen.grads.length; i++) {
          const [got, want] = [await frozen.grads[i], await training.grads[i]];
          assert(got.some((v) => v !== 0), `${targets}: adapter gradient ${i} is all zero`);
          assert.deepEqual(got, want, `${targets}: adapter gradient ${i}`);
        }
      } finally {
        model.embed.trainable = false;
        trainable.dispose();
        model.dispose();
      }
    }
  },
});
