/**
 * Kept bf16 weight packs: reused while the weight is unchanged, rebuilt after every kind of write
 * (a host write, an AdamW step, a LoRA merge and unmerge), never kept when the recorder dropped
 * the packing dispatch. Each product is checked against values the test computes itself, so a
 * stale pack (missing invalidation) fails.
 */
import assert, { deepEqual as assertEquals } from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import type { Recorder } from "../../src/gpu/recorder.ts";
import { tinyQwen2Config } from "../../src/model/config.ts";
import { type CausalLM, modelFromTensors } from "../../src/model/decoder.ts";
import {
  adaptedLinears,
  attachLora,
  loraAdapterOf,
  mergeLora,
  readBaseWeights,
  unmergeLora,
} from "../../src/model/lora.ts";
import { compiledByWorker, RecorderWithout } from "../../src/model/parallel_warmup.ts";
import { type Param, uploadParam, writeParam } from "../../src/model/params.ts";
import { TrainableModel } from "../../src/model/trainable.ts";
import { type PackOrientation, weightPack } from "../../src/model/weight_packs.ts";
import { bf16Round, matmulPackedBf16, matrixView, packBf16, releasePacked } from "../../src/ops/matmul.ts";
import { initialWeights } from "../../src/train/fresh_model.ts";
import { assertClose, hasGpu, randomArray } from "../ops/check.ts";

const [OUT, IN, ROWS] = [48, 40, 32];
/** bf16 operands, f32 sums of 40–48 products of values ≤ 1: the f32 summation error only. */
const PRODUCT_ATOL = 1e-5;

/**
 * `x·Wᵀ` (`"rows"`: x [ROWS × IN]) or `x·W` (`"transposed"`: x [ROWS × OUT]) of W [OUT × IN],
 * both operands rounded to bf16, in f64.
 */
function productCpu(x: Float32Array, w: Float32Array, orientation: PackOrientation): Float64Array {
  const [k, n] = orientation === "rows" ? [IN, OUT] : [OUT, IN];
  const out = new Float64Array(ROWS * n);
  for (let r = 0; r < ROWS; r++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let i = 0; i < k; i++) {
        const wValue = orientation === "rows" ? w[j * IN + i] : w[i * IN + j];
        sum += bf16Round(x[r * k + i]) * bf16Round(wValue);
      }
      out[r * n + j] = sum;
    }
  }
  return out;
}

/** Records `x·Wᵀ` or `x·W` through the kept pack of W and reads it back (one submit). */
async function productOnGpu(rec: Recorder, p: Param, x: Float32Array, orientation: PackOrientation) {
  const engine = await getEngine();
  const k = orientation === "rows" ? IN : OUT;
  const xT = rec.upload(engine.pool, x, [ROWS, k], "x");
  const y = engine.pool.tensor([ROWS, orientation === "rows" ? OUT : IN], "f32", "y");
  const xP = packBf16(rec, matrixView(xT, ROWS, k));
  matmulPackedBf16(rec, xP, weightPack(rec, p, orientation), y);
  releasePacked(rec, xP);
  const values = rec.read(y);
  await rec.submit();
  engine.pool.release(xT);
  engine.pool.release(y);
  return await values;
}

for (const orientation of ["rows", "transposed"] as const) {
  Deno.test({
    name: `weightPack(${orientation}) is kept until the weight is written, then packs the new values`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const first = randomArray(OUT * IN, 1), second = randomArray(OUT * IN, 2);
      const p = uploadParam(engine.pool, "w", [OUT, IN], first);
      const x = randomArray(ROWS * (orientation === "rows" ? IN : OUT), 3);
      const got = await productOnGpu(engine.recorder(), p, x, orientation);
      assertClose(got, productCpu(x, first, orientation), { atol: PRODUCT_ATOL }, "first product");

      const rec = engine.recorder();
      const pack = weightPack(rec, p, orientation);
      assertEquals(rec.dispatches, 0, "an unchanged weight was packed again");
      assert(weightPack(rec, p, orientation) === pack);

      writeParam(engine.pool, p, second);
      const again = await productOnGpu(engine.recorder(), p, x, orientation);
      assertClose(again, productCpu(x, second, orientation), { atol: PRODUCT_ATOL }, "after the write");
    },
  });
}

Deno.test({
  name: "weightPack() does not keep a pack whose packing dispatch the recorder dropped",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const w = randomArray(OUT * IN, 4);
    const p = uploadParam(engine.pool, "w", [OUT, IN], w);
    const dropping = new RecorderWithout(engine, compiledByWorker);
    weightPack(dropping, p, "rows");
    await dropping.submit();
    const x = randomArray(ROWS * IN, 5);
    const got = await productOnGpu(engine.recorder(), p, x, "rows");
    assertClose(got, productCpu(x, w, "rows"), { atol: PRODUCT_ATOL }, "product after a dropped pack");
  },
});

Deno.test({
  name: "weightPack() packs again for a new recorder when the recorder that packed it was never submitted",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const w = randomArray(OUT * IN, 6);
    const p = uploadParam(engine.pool, "w", [OUT, IN], w);
    const abandoned = engine.recorder();
    weightPack(abandoned, p, "rows");
    const rec = engine.recorder();
    const x = randomArray(ROWS * IN, 7);
    const dispatches = rec.dispatches;
    weightPack(rec, p, "rows");
    assert(rec.dispatches > dispatches, "a pack that was never submitted was reused");
    const got = await productOnGpu(rec, p, x, "rows");
    assertClose(got, productCpu(x, w, "rows"), { atol: PRODUCT_ATOL }, "product after an abandoned recorder");
    const after = engine.recorder();
    weightPack(after, p, "rows");
    assertEquals(after.dispatches, 0, "a submitted pack was not kept");
  },
});

// 96 rows: every block matmul and the LM head take the packed bf16 path.
const config = tinyQwen2Config({ vocabSize: 256, hiddenSize: 128, intermediateSize: 256, numLayers: 1 });
const ids = Array.from({ length: 96 }, (_, i) => (i * 37 + 5) % 256);

async function bf16Model(tensors: ReadonlyMap<string, Float32Array>): Promise<CausalLM> {
  const model = await modelFromTensors(config, tensors);
  model.matmulPrecision = "bf16";
  return model;
}

/** bf16 logits of `ids` under a model freshly made from `tensors` (no kept packs). */
async function freshLogits(tensors: ReadonlyMap<string, Float32Array>): Promise<Float32Array> {
  const model = await bf16Model(tensors);
  try {
    return await model.logits(ids);
  } finally {
    model.dispose();
  }
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

Deno.test({
  name: "bf16 logits after an AdamW step equal those of a model loaded with the stepped weights",
  ignore: !hasGpu,
  async fn() {
    const model = await bf16Model(initialWeights(config, 7, 0.2));
    const trainable = TrainableModel.full(model);
    try {
      const before = await model.logits(ids);
      await trainable.trainStep({ ids: Int32Array.from(ids), batch: 1, seqLen: ids.length }, { lr: 1e-2 });
      const after = await model.logits(ids);
      assert(maxDifference(after, before) > 1e-2, "the step did not change the logits");
      assertEquals(after, await freshLogits(await readBaseWeights(model, false)));
    } finally {
      trainable.dispose();
      model.dispose();
    }
  },
});

Deno.test({
  name: "bf16 logits follow a LoRA merge and unmerge of the base weights",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const model = await bf16Model(initialWeights(config, 7, 0.2));
    const trainable = TrainableModel.lora(model, {
      rank: 4,
      alpha: 8,
      targetModules: ["q_proj", "v_proj", "up_proj", "down_proj"],
    });
    try {
      let seed = 20;
      for (const { linear } of adaptedLinears(model)) {
        const b = linear.lora!.b;
        writeParam(engine.pool, b, randomArray(b.value.rows * b.value.cols, seed++, 0.1));
      }
      await model.logits(ids);
      await mergeLora(model);
      const merged = await model.logits(ids);
      assertEquals(merged, await freshLogits(await readBaseWeights(model, true)));
      // The adapter moves the logits far more than bf16 rounding does: stale packs would show.
      assert(maxDifference(merged, await freshLogits(await readBaseWeights(model, false))) > 0.1);
      await unmergeLora(model);
      const unmerged = await model.logits(ids);
      const reference = await bf16Model(await readBaseWeights(model, false));
      try {
        const { rank, alpha, targetModules, factors } = await loraAdapterOf(model);
        attachLora(reference, { rank, alpha, targetModules }, factors);
        assertEquals(unmerged, await reference.logits(ids));
      } finally {
        reference.dispose();
      }
    } finally {
      trainable.dispose();
      model.dispose();
    }
  },
});
