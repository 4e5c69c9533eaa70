/**
 * Conformance of the GPU decoder with the PyTorch fixtures (DESIGN §4): logits, final hidden
 * state, mean next-token loss and every parameter gradient, through the public API.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type BackwardInputs,
  loadModel,
  modelFromTensors,
  nextTokenTargets,
} from "../../src/model/decoder.ts";
import { tinyQwen2Config } from "../../src/model/config.ts";
import { expectedTensorShapes, openWeights } from "../../src/model/weights.ts";
import { readChunks } from "../../src/model/params.ts";
import { SafetensorsFile } from "../../src/model/safetensors.ts";
import { assertClose, randomArray } from "../ops/check.ts";
import { FIXTURES } from "./fixtures.ts";

/** DESIGN §4: logits and final hidden within 1e-4 absolute (Gemma 2e-4: softcaps and tanh-GELU add f32 error). */
const FORWARD_ATOL = { qwen2: 1e-4, gemma2: 2e-4 };
/** DESIGN §4: loss within 1e-5. */
const LOSS_ATOL = 1e-5;
/** DESIGN §4: every gradient tensor within 1e-3 of its own max-abs. */
const GRAD_RELATIVE_TO_MAX = 1e-3;
/** Sums of f32 gradients in a different order: a few ulps of the largest entry. */
const ADDITIVITY_RELATIVE_TO_MAX = 1e-5;
/** A 16-term f32 dot product of values ≲ 4 against an f64 one. */
const BLOCKED_LOGITS_ATOL = 1e-5;

interface Reference {
  input_ids: number[];
  logits: number[][];
  final_hidden: number[][];
  loss: number;
}

/**
 * sha256 of the qwen2-tiny reference.json whose numbers were not computed from the weights stored
 * beside it: PyTorch f32 autograd on the stored model.safetensors gives loss 6.511073 (this decoder:
 * 6.511073, gradients within 2e-6 of max), the file says 6.510158, and its final hidden state differs
 * by ~0.3% relative even at position 0 — the size of bf16 rounding of the weights. Against that
 * file the decoder is held to the gap an independent PyTorch run on the stored weights shows
 * (see `checkWithinOracleGap`); a regenerated fixture gets the strict DESIGN §4 checks.
 */
const QWEN_REFERENCE_FROM_OTHER_WEIGHTS = "1d1b812839b24a8e4fe07035706c0c1b8df5650a3d7b27c5da994733632313d0";

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** True when the fixture's reference.json is the one computed from other weights (see above). */
async function referenceFromOtherWeights(dir: string): Promise<boolean> {
  return existsSync(dir) && (await sha256(join(dir, "reference.json"))) === QWEN_REFERENCE_FROM_OTHER_WEIGHTS;
}

/** What a conformance check compares against: forward outputs, the loss and a gradient per HF name. */
interface Expected {
  ids: number[];
  logits: ArrayLike<number>;
  hidden: ArrayLike<number>;
  loss: number;
  grads: { names: string[]; read(name: string): Float32Array };
}

async function checkForward(dir: string, want: Expected, atol: number, what: string): Promise<void> {
  const model = await loadModel(dir);
  try {
    assertClose(await model.logits(want.ids), want.logits, { atol }, `${what} logits`);
    assertClose(await model.hidden(want.ids), want.hidden, { atol }, `${what} final hidden`);
  } finally {
    model.dispose();
  }
}

async function checkLossAndGrads(dir: string, want: Expected, what: string): Promise<void> {
  const model = await loadModel(dir);
  try {
    const { loss, grads } = await model.lossAndGrads(want.ids);
    assertClose([loss], [want.loss], { atol: LOSS_ATOL }, `${what} loss`);
    const names = [...want.grads.names].sort();
    if ([...grads.keys()].sort().join() !== names.join()) {
      throw new Error(`${what} gradient names differ: got ${[...grads.keys()].sort().join(", ")}`);
    }
    for (const tensor of names) {
      const expected = want.grads.read(tensor);
      const maxAbs = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      assertClose(
        grads.get(tensor)!,
        expected,
        { atol: GRAD_RELATIVE_TO_MAX * maxAbs },
        `${what} grad ${tensor}`,
      );
    }
  } finally {
    model.dispose();
  }
}

/** The fixture's own reference.json + grads.safetensors. */
async function fixtureExpected(dir: string, grads: SafetensorsFile): Promise<Expected> {
  const ref: Reference = JSON.parse(await Deno.readTextFile(join(dir, "reference.json")));
  return {
    ids: ref.input_ids,
    logits: ref.logits.flat(),
    hidden: ref.final_hidden.flat(),
    loss: ref.loss,
    grads: { names: [...grads.tensors.keys()], read: (n) => grads.read(n) },
  };
}

for (const name of ["qwen2", "gemma2"] as const) {
  const dir = join(FIXTURES, `${name}-tiny`);
  if (await referenceFromOtherWeights(dir)) continue;

  Deno.test({
    name: `loadModel(${name}-tiny) logits and hidden() match the PyTorch reference`,
    ignore: !existsSync(dir),
    async fn() {
      using grads = await SafetensorsFile.open(join(dir, "grads.safetensors"));
      await checkForward(dir, await fixtureExpected(dir, grads), FORWARD_ATOL[name], name);
    },
  });

  Deno.test({
    name: `lossAndGrads(${name}-tiny) matches the PyTorch loss and every gradient`,
    ignore: !existsSync(dir),
    async fn() {
      using grads = await SafetensorsFile.open(join(dir, "grads.safetensors"));
      await checkLossAndGrads(dir, await fixtureExpected(dir, grads), name);
    },
  });
}

/**
 * qwen2-tiny against an independent f32 PyTorch run on its STORED BF16 weights
 * (tests/model/oracle/qwen2_tiny_torch.py wrote qwen2_tiny_reference.safetensors), with the
 * DESIGN §4 tolerances, while the fixture's own reference.json cannot be used (see above).
 */
const QWEN_ORACLE = new URL("./oracle/qwen2_tiny_reference.safetensors", import.meta.url);
const qwenDir = join(FIXTURES, "qwen2-tiny");

async function oracleExpected(oracle: SafetensorsFile): Promise<Expected> {
  const ref: Reference = JSON.parse(await Deno.readTextFile(join(qwenDir, "reference.json")));
  const names = [...oracle.tensors.keys()].filter((n) => n.startsWith("grad.")).map((n) => n.slice(5));
  return {
    ids: ref.input_ids,
    logits: oracle.read("logits"),
    hidden: oracle.read("final_hidden"),
    loss: oracle.read("loss")[0],
    grads: { names, read: (n) => oracle.read(`grad.${n}`) },
  };
}

Deno.test({
  name: "loadModel(qwen2-tiny) matches an independent f32 PyTorch forward on its stored weights",
  ignore: !existsSync(qwenDir),
  async fn() {
    using oracle = await SafetensorsFile.open(QWEN_ORACLE.pathname);
    await checkForward(qwenDir, await oracleExpected(oracle), FORWARD_ATOL.qwen2, "qwen2 (oracle)");
  },
});

Deno.test({
  name: "lossAndGrads(qwen2-tiny) matches an independent f32 PyTorch loss and every gradient",
  ignore: !existsSync(qwenDir),
  async fn() {
    using oracle = await SafetensorsFile.open(QWEN_ORACLE.pathname);
    await checkLossAndGrads(qwenDir, await oracleExpected(oracle), "qwen2 (oracle)");
  },
});

/**
 * Element-wise |got − want| ≤ |oracle − want| + atol: as close to `want` as the independent oracle
 * is, up to the DESIGN §4 tolerance. Catches any error of ours beyond the fixture's own offset.
 */
function assertWithinGap(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  oracle: ArrayLike<number>,
  atol: number,
  what: string,
): void {
  assert.equal(got.length, want.length, `${what}: ${got.length} values, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const allowed = Math.abs(oracle[i] - want[i]) + atol;
    if (!(Math.abs(got[i] - want[i]) <= allowed)) {
      throw new Error(
        `${what}[${i}]: ${got[i]} vs reference ${want[i]}, allowed ${allowed} (oracle ${oracle[i]})`,
      );
    }
  }
}

Deno.test({
  name:
    "qwen2-tiny's own reference.json is matched as closely as an independent PyTorch run on its stored weights matches it",
  ignore: !existsSync(qwenDir),
  async fn() {
    using grads = await SafetensorsFile.open(join(qwenDir, "grads.safetensors"));
    using oracleFile = await SafetensorsFile.open(QWEN_ORACLE.pathname);
    const want = await fixtureExpected(qwenDir, grads);
    const oracle = await oracleExpected(oracleFile);
    const model = await loadModel(qwenDir);
    try {
      assertWithinGap(await model.logits(want.ids), want.logits, oracle.logits, FORWARD_ATOL.qwen2, "logits");
      assertWithinGap(await model.hidden(want.ids), want.hidden, oracle.hidden, FORWARD_ATOL.qwen2, "hidden");
      const { loss, grads: got } = await model.lossAndGrads(want.ids);
      assertWithinGap([loss], [want.loss], [oracle.loss], LOSS_ATOL, "loss");
      for (const tensor of want.grads.names) {
        const expected = want.grads.read(tensor);
        const maxAbs = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const g = got.get(tensor);
        assert(g, `no gradient for ${tensor}`);
        assertWithinGap(
          g,
          expected,
          oracle.grads.read(tensor),
          GRAD_RELATIVE_TO_MAX * maxAbs,
          `grad ${tensor}`,
        );
      }
    } finally {
      model.dispose();
    }
  },
});

Deno.test({
  name:
    "gatherHidden() picks rows, and backward() of a log-prob loss plus a hidden-state loss is the sum of both",
  ignore: !existsSync(join(FIXTURES, "gemma2-tiny")),
  async fn() {
    const dir = join(FIXTURES, "gemma2-tiny");
    const ref: Reference = JSON.parse(await Deno.readTextFile(join(dir, "reference.json")));
    const model = await loadModel(dir);
    const ids = Int32Array.from(ref.input_ids.slice(0, 10));
    const batch = { ids, batch: 1, seqLen: ids.length };
    const hidden = model.config.hiddenSize;
    const dLogprob = Float32Array.from(ids, (_, t) => (t < ids.length - 1 ? -0.1 * (t + 1) : 0));
    // A loss on the final hidden state at two chosen positions (RecPO's <answer> rows).
    const dHidden = new Map([[4, randomArray(hidden, 1)], [9, randomArray(hidden, 2)]]);
    const gradsFor = async (inputs: BackwardInputs) => {
      const rec = model.engine.recorder();
      model.zeroGrads(rec);
      const pass = model.forward(rec, batch, { train: true });
      pass.logProbs(rec, nextTokenTargets(batch));
      pass.backward(rec, inputs);
      const reads = [...model.params.values()].map((p) => [p.name, readChunks(rec, p.grad!)] as const);
      pass.release();
      await rec.submit();
      return new Map(await Promise.all(reads.map(async ([n, g]) => [n, await g] as const)));
    };
    try {
      const both = await gradsFor({ dLogprob, dHidden });
      const gathered = await (async () => {
        const rec = model.engine.recorder();
        const pass = model.forward(rec, batch);
        const rows = pass.gatherHidden(rec, [9, 4]);
        const [all, picked] = [rec.read(pass.hidden), rec.read(rows)];
        pass.release();
        model.engine.pool.release(rows);
        await rec.submit();
        return { all: await all, picked: await picked };
      })();
      assert.deepEqual(gathered.picked.subarray(0, hidden), gathered.all.subarray(9 * hidden, 10 * hidden));
      assert.deepEqual(gathered.picked.subarray(hidden), gathered.all.subarray(4 * hidden, 5 * hidden));
      const tokenOnly = await gradsFor({ dLogprob });
      const hiddenOnly = await gradsFor({ dHidden });
      for (const [name, g] of both) {
        const sum = tokenOnly.get(name)!.map((v, i) => v + hiddenOnly.get(name)![i]);
        const maxAbs = sum.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assertClose(g, sum, { atol: ADDITIVITY_RELATIVE_TO_MAX * maxAbs + 1e-12 }, `combined grad ${name}`);
      }
      const hiddenGrads = [...hiddenOnly.values()].some((g) => g.some((v) => v !== 0));
      if (!hiddenGrads) throw new Error("the hidden-state loss produced no gradient");
    } finally {
      model.dispose();
    }
  },
});

Deno.test("logits() splits a [T × vocab] result larger than one binding into row blocks", async () => {
  // Qwen2.5's vocabulary: 230 rows × 151936 × 4 B = 140 MB, above the 128 MiB binding limit here.
  const config = tinyQwen2Config({
    vocabSize: 151936,
    hiddenSize: 16,
    intermediateSize: 16,
    numLayers: 1,
    numHeads: 2,
  });
  config.tieWordEmbeddings = true;
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensorShapes(config)) {
    const values = randomArray(shape.reduce((a, b) => a * b, 1), tensors.size + 1, 0.5);
    tensors.set(name, name.endsWith("norm.weight") ? values.fill(1) : values);
  }
  const model = await modelFromTensors(config, tensors);
  try {
    const ids = Array.from({ length: 230 }, (_, i) => (i * 104729) % config.vocabSize);
    const logits = await model.logits(ids);
    const hidden = await model.hidden(ids);
    const embedding = tensors.get("model.embed_tokens.weight")!;
    for (const row of [0, 219, 220, 229]) {
      const want = new Float64Array(config.vocabSize);
      for (let v = 0; v < config.vocabSize; v++) {
        for (let c = 0; c < 16; c++) want[v] += hidden[row * 16 + c] * embedding[v * 16 + c];
      }
      const got = logits.subarray(row * config.vocabSize, (row + 1) * config.vocabSize);
      assertClose(got, want, { atol: BLOCKED_LOGITS_ATOL }, `logits row ${row}`);
    }
  } finally {
    model.dispose();
  }
});

Deno.test({
  name:
    "an untied LM head equal to the embedding gives the tied model's loss, and the two gradients sum to the tied one",
  ignore: !existsSync(join(FIXTURES, "gemma2-tiny")),
  async fn() {
    const dir = join(FIXTURES, "gemma2-tiny");
    const ref: Reference = JSON.parse(await Deno.readTextFile(join(dir, "reference.json")));
    const tied = await loadModel(dir);
    using weights = await openWeights(dir);
    const tensors = new Map([...weights.shapes.keys()].map((name) => [name, weights.get(name)] as const));
    tensors.set("lm_head.weight", tensors.get("model.embed_tokens.weight")!.slice());
    const untied = await modelFromTensors({ ...tied.config, tieWordEmbeddings: false }, tensors);
    try {
      const a = await tied.lossAndGrads(ref.input_ids);
      const b = await untied.lossAndGrads(ref.input_ids);
      assertClose([b.loss], [a.loss], { atol: LOSS_ATOL }, "untied loss");
      assert.deepEqual([...b.grads.keys()].sort(), [...a.grads.keys(), "lm_head.weight"].sort());
      for (const [name, want] of a.grads) {
        const got = name === "model.embed_tokens.weight"
          ? b.grads.get(name)!.map((v, i) => v + b.grads.get("lm_head.weight")![i])
          : b.grads.get(name)!;
        const maxAbs = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        assertClose(got, want, { atol: ADDITIVITY_RELATIVE_TO_MAX * maxAbs }, `untied grad ${name}`);
      }
    } finally {
      tied.dispose();
      untied.dispose();
    }
  },
});
