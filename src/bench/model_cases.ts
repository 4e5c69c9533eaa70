/**
 * Model benchmark cases (DESIGN §9): a whole training step of the reference decoder (Qwen2-style,
 * 4 layers, d 256, 4 heads, FF 768, vocab 8192, untied head, batch 4 × seq 256, AdamW) in full and
 * LoRA modes, comparable with `../shared/tools/torch_reference_step.py`; and one KV-cache decode
 * step for batch 16 (stories260k when the fixture is present, and the reference decoder).
 *
 * A decode repetition is one step (embedding → blocks over the cache → LM head → sampling); the
 * harness amortises the per-step sync that real generation pays once per step (~12 ms here).
 *
 * @module
 */
import { existsSync } from "node:fs";
import type { Engine } from "../gpu/engine.ts";
import type { Recorder } from "../gpu/recorder.ts";
import { tinyQwen2Config } from "../model/config.ts";
import {
  type CausalLM,
  loadModel,
  modelFromTensors,
  nextTokenTargets,
  type TokenBatch,
} from "../model/decoder.ts";
import { DecodeSession } from "../model/generate.ts";
import { TrainableModel } from "../model/trainable.ts";
import type { MatmulPrecision } from "../model/linear.ts";
import { initialWeights } from "../train/fresh_model.ts";
import { type BenchCase, benchCase } from "./harness.ts";

const BATCH = 4, SEQ = 256, DECODE_BATCH = 16, DECODE_CONTEXT = 128;
const STORIES = "../shared/fixtures/stories260k";
const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

function referenceModel(): Promise<CausalLM> {
  const config = tinyQwen2Config();
  return modelFromTensors(config, initialWeights(config, 0));
}

/** Deterministic token ids in `[0, vocab)`. */
function tokens(count: number, vocab: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => (i * 7919 + 13) % vocab);
}

interface TrainState {
  trainable: TrainableModel;
  batch: TokenBatch;
  targets: Int32Array;
  weights: Float32Array;
}

function recordTrainStep(rec: Recorder, s: TrainState): void {
  const model = s.trainable.model;
  s.trainable.zeroGrad(rec);
  const pass = model.forward(rec, s.batch, { train: true });
  pass.logProbs(rec, s.targets);
  pass.backward(rec, { dLogprob: s.weights });
  s.trainable.step(rec, { lr: 3e-4, weightDecay: 0.1 });
  pass.release();
}

/**
 * Full fine-tuning or LoRA, with the linear layers' and LM head's matmul operands in bf16 (the
 * training default: mixed precision) or f32 (exact products).
 */
type TrainMode = "full" | "lora";

function trainCase(mode: TrainMode, precision: MatmulPrecision): BenchCase {
  const adapter = mode === "lora" ? ", LoRA r4 α128 q…down" : "";
  return benchCase<TrainState>({
    name: `train_step_reference.${mode}.${precision}`,
    shape:
      `4L d256 h4 kv4 ff768 V8192, ${BATCH}×${SEQ} tokens, AdamW${adapter}, ${precision} matmul operands`,
    tokens: BATCH * SEQ,
    async setup() {
      const model = await referenceModel();
      model.matmulPrecision = precision;
      const trainable = mode !== "lora"
        ? TrainableModel.full(model)
        : TrainableModel.lora(model, { rank: 4, alpha: 128, targetModules: [...LORA_TARGETS] });
      const batch = { ids: tokens(BATCH * SEQ, model.config.vocabSize), batch: BATCH, seqLen: SEQ };
      const targets = nextTokenTargets(batch);
      const count = targets.filter((t) => t >= 0).length;
      return {
        trainable,
        batch,
        targets,
        weights: Float32Array.from(targets, (t) => (t >= 0 ? -1 / count : 0)),
      };
    },
    warmup: (_engine, s) => s.trainable.warmup(),
    record: recordTrainStep,
    teardown(_engine: Engine, s) {
      s.trainable.dispose();
      s.trainable.model.dispose();
    },
  });
}

interface DecodeState {
  session: DecodeSession;
  positions: Int32Array;
}

function decodeCase(label: string, load: () => Promise<CausalLM>): BenchCase {
  return benchCase<DecodeState>({
    name: `generate_kv_cache.${label}`,
    shape:
      `batch ${DECODE_BATCH}, one decode step at context ${DECODE_CONTEXT}, greedy (per-step sync amortised)`,
    tokens: DECODE_BATCH,
    async setup(engine) {
      const model = await load();
      const session = new DecodeSession(model, DECODE_BATCH, DECODE_CONTEXT + 1, {
        temperature: 0,
        topK: 0,
        topP: 1,
        repetitionPenalty: 1,
        seed: 0,
      });
      const rec = engine.recorder();
      const prompt = Array.from(tokens(DECODE_CONTEXT, model.config.vocabSize));
      session.recordPrefill(rec, Array.from({ length: DECODE_BATCH }, () => prompt));
      await rec.submit();
      return { session, positions: new Int32Array(DECODE_BATCH).fill(DECODE_CONTEXT) };
    },
    record: (rec, s) => void s.session.recordStep(rec, s.positions, 1),
    teardown(_engine, s) {
      s.session.release();
      s.session.model.dispose();
    },
  });
}

/** The model cases; stories260k only when `../shared` is present. */
export function modelCases(): BenchCase[] {
  const cases = [
    trainCase("full", "bf16"),
    trainCase("lora", "bf16"),
    trainCase("full", "f32"),
    decodeCase("reference", referenceModel),
  ];
  if (existsSync(STORIES)) cases.push(decodeCase("stories260k", () => loadModel(STORIES)));
  return cases;
}
