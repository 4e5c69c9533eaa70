/**
 * A trainer-agnostic view of a {@linkcode CausalLM} being fine-tuned, fully or with LoRA: the
 * trainable tensors with their gradients, an AdamW step (global-norm clipping on the GPU), and
 * saving as an HF checkpoint (optionally with LoRA merged) or a PEFT adapter. A trainer records
 * its own forward/backward into a `Recorder`, then {@linkcode TrainableModel.step} into the same
 * recorder, and submits once.
 *
 * @example
 * ```ts
 * const trainable = TrainableModel.lora(model, { rank: 4, alpha: 128, targetModules: ["q_proj", "v_proj"] });
 * const { loss } = await trainable.trainStep(batch, { lr: 1e-4 });
 * await trainable.saveAdapter("out/adapter");
 * ```
 *
 * @module
 */
import type { Recorder } from "../gpu/recorder.ts";
import { compiledByWorker, compileMatmulsInWorker, RecorderWithout } from "./parallel_warmup.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { type AdamwGroup, adamwStep } from "../ops/adamw.ts";
import { allocatePacked, matmulWarmup, releasePacked } from "../ops/matmul.ts";
import { type SaveCheckpointOptions, saveHfCheckpoint, saveLoraAdapter } from "./checkpoint.ts";
import { type CausalLM, nextTokenTargets, type TokenBatch } from "./decoder.ts";
import { attachLora, loraAdapterOf, type LoraConfig, loraParams, readBaseWeights } from "./lora.ts";
import {
  clearChunks,
  ensureGrad,
  markWritten,
  type Param,
  readChunks,
  releaseChunks,
  writeChunks,
} from "./params.ts";
import { allocRowChunked, type RowChunked } from "../gpu/tensor.ts";
import { rowPackForUpdate } from "./weight_packs.ts";

/** AdamW settings (torch.optim.AdamW names in camelCase). */
export interface OptimizerConfig {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient L2 norm to this; 0 turns clipping off. */
  maxGradNorm?: number;
}

/** AdamW moments of every trained tensor (HF or PEFT names) and the step count, for resuming. */
export interface OptimizerSnapshot {
  step: number;
  moments: Map<string, { shape: readonly number[]; m: Float32Array; v: Float32Array }>;
}

/** Tokens of the warm-up sequence. */
const WARMUP_TOKENS = 32;

interface Moments {
  m: RowChunked;
  v: RowChunked;
}

/** A model plus the parameters being trained and their optimizer state. */
export class TrainableModel {
  readonly #moments = new Map<Param, Moments>();
  readonly #gradNorm: Tensor;
  /** Optimizer steps taken. */
  stepCount = 0;

  private constructor(readonly model: CausalLM, readonly mode: "full" | "lora") {
    this.#gradNorm = model.engine.pool.tensor([1], "f32", "grad_norm");
  }

  /** Trains every parameter. */
  static full(model: CausalLM): TrainableModel {
    for (const p of model.params.values()) p.trainable = true;
    return new TrainableModel(model, "full");
  }

  /** Attaches LoRA adapters and trains only them (the base model is frozen). */
  static lora(model: CausalLM, config: LoraConfig): TrainableModel {
    attachLora(model, config);
    return new TrainableModel(model, "lora");
  }

  /** The tensors being trained (HF or PEFT module names). */
  get parameters(): Param[] {
    return this.mode === "lora" ? loraParams(this.model) : [...this.model.params.values()];
  }

  /** Records clearing of every trainable gradient. */
  zeroGrad(rec: Recorder): void {
    for (const p of this.parameters) clearChunks(rec, ensureGrad(this.model.engine.pool, p));
  }

  /**
   * Records one AdamW update of every trainable tensor from its accumulated gradient and returns
   * the `[1]` tensor holding the global gradient norm before clipping (read it in the same submit).
   */
  step(rec: Recorder, config: OptimizerConfig): Tensor {
    const pool = this.model.engine.pool;
    const groups = this.parameters.flatMap((p) => {
      const grad = ensureGrad(pool, p);
      markWritten(p);
      let moments = this.#moments.get(p);
      if (!moments) {
        moments = this.#allocMoments(p);
        clearChunks(rec, moments.m);
        clearChunks(rec, moments.v);
      }
      return p.value.chunks.map((chunk, i) => ({
        param: chunk.tensor,
        grad: grad.chunks[i].tensor,
        m: moments.m.chunks[i].tensor,
        v: moments.v.chunks[i].tensor,
        rowPack: rowPackForUpdate(rec, p, i) ?? undefined,
      }));
    });
    this.stepCount++;
    adamwStep(rec, groups, {
      lr: config.lr,
      beta1: config.beta1 ?? 0.9,
      beta2: config.beta2 ?? 0.999,
      eps: config.eps ?? 1e-8,
      weightDecay: config.weightDecay ?? 0,
      step: this.stepCount,
      maxGradNorm: config.maxGradNorm ?? 0,
    }, this.#gradNorm);
    return this.#gradNorm;
  }

  /**
   * Compiles every pipeline of this model's training step (llvmpipe JITs a pipeline at its first
   * dispatch: seconds for the big tiled kernels without Mesa's disk cache) so that the first real
   * step runs at full speed, on two threads: a worker compiles the texture matmul kernel and its
   * packs while this thread runs a warm-up step without them (see `parallel_warmup.ts`); then the
   * texture kernels' warm-up and a whole warm-up step find everything compiled or in Mesa's cache.
   * A warm-up step is the forward, log-probs and backward of a short sequence with zero loss
   * weights, AdamW on scratch tensors, and a clear of the gradients it touched. Weights and
   * optimizer state are unchanged. Returns the milliseconds it took (three syncs on this thread).
   */
  async warmup(): Promise<number> {
    const start = performance.now();
    const { engine } = this.model;
    const precision = this.model.matmulPrecision;
    const matmuls = compileMatmulsInWorker(precision);
    await this.#warmupStep(new RecorderWithout(engine, compiledByWorker));
    await matmuls;
    await matmulWarmup(engine, precision, "texture");
    await this.#warmupStep(engine.recorder());
    return performance.now() - start;
  }

  /** A step of a short sequence with zero loss weights, AdamW on scratch tensors, zeroed grads. */
  async #warmupStep(rec: Recorder): Promise<void> {
    const { engine } = this.model;
    // 32 rows: enough for the training (tiled) attention path, which starts at 16 query rows.
    const input: TokenBatch = { ids: new Int32Array(WARMUP_TOKENS), batch: 1, seqLen: WARMUP_TOKENS };
    const pass = this.model.forward(rec, input, { train: true });
    pass.logProbs(rec, nextTokenTargets(input));
    pass.backward(rec, { dLogprob: new Float32Array(WARMUP_TOKENS) });
    pass.release();
    const pool = engine.pool;
    const sizes = new Set<number>(this.parameters.map((p) => (p.value.cols % 4 === 0 ? 4 : 1)));
    // A bf16 full step's update also rewrites the weights' row packs (8 values: one texel).
    if (this.mode === "full" && this.model.matmulPrecision === "bf16") sizes.add(8);
    const scratch: AdamwGroup[] = [...sizes].map((n) => ({
      param: pool.zeros([n]),
      grad: pool.zeros([n]),
      m: pool.zeros([n]),
      v: pool.zeros([n]),
      rowPack: n === 8 ? allocatePacked(rec, 1, 8, "warmup_row_pack") : undefined,
    }));
    const norm = pool.tensor([1], "f32", "warmup_grad_norm");
    adamwStep(rec, scratch, {
      lr: 0,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0,
      step: 1,
      maxGradNorm: 1,
    }, norm);
    this.zeroGrad(rec);
    await rec.submit();
    for (const { param, grad, m, v, rowPack } of scratch) {
      for (const t of [param, grad, m, v]) pool.release(t);
      if (rowPack) releasePacked(pool, rowPack);
    }
    pool.release(norm);
  }

  /**
   * One causal-LM training step in one submit: zero grads, forward, mean next-token loss over
   * the targets (default: next tokens, −1 ignored), backward, AdamW. Returns the loss and the
   * gradient norm.
   */
  async trainStep(
    batch: TokenBatch,
    config: OptimizerConfig,
    targets: Int32Array = nextTokenTargets(batch),
  ): Promise<{ loss: number; gradNorm: number }> {
    const rec = this.model.engine.recorder();
    this.zeroGrad(rec);
    const pass = this.model.forward(rec, batch, { train: true });
    const { logprob } = pass.logProbs(rec, targets);
    const count = targets.reduce((n, t) => n + (t >= 0 ? 1 : 0), 0);
    if (count === 0) throw new Error("Training batch has no target tokens");
    const weights = Float32Array.from(targets, (t) => (t >= 0 ? -1 / count : 0));
    pass.backward(rec, { dLogprob: weights });
    const norm = this.step(rec, config);
    const logprobs = rec.read(logprob);
    const gradNorm = rec.read(norm);
    pass.release();
    await rec.submit();
    const lp = await logprobs;
    let sum = 0;
    for (let i = 0; i < lp.length; i++) if (targets[i] >= 0) sum += lp[i];
    return { loss: -sum / count, gradNorm: (await gradNorm)[0] };
  }

  /** Saves an HF-layout checkpoint; LoRA adapters are merged into it unless `merged` is false. */
  async save(dir: string, options: SaveCheckpointOptions & { merged?: boolean } = {}): Promise<void> {
    const tensors = await readBaseWeights(this.model, options.merged ?? true);
    await saveHfCheckpoint(dir, this.model.config, tensors, {
      tokenizerDir: options.tokenizerDir ?? (this.model.dir || undefined),
      dtype: options.dtype,
    });
  }

  /** Saves the LoRA adapters as a PEFT adapter folder. */
  async saveAdapter(dir: string, baseModel = this.model.dir): Promise<void> {
    await saveLoraAdapter(dir, this.model.config, await loraAdapterOf(this.model, baseModel));
  }

  #allocMoments(p: Param): Moments {
    const pool = this.model.engine.pool;
    const { rows, cols } = p.value;
    const moments = {
      m: allocRowChunked(pool, rows, cols, `${p.name}.adam_m`),
      v: allocRowChunked(pool, rows, cols, `${p.name}.adam_v`),
    };
    this.#moments.set(p, moments);
    return moments;
  }

  /** Reads the AdamW state back (one submit); tensors not stepped yet get zero moments. */
  async optimizerState(): Promise<OptimizerSnapshot> {
    const rec = this.model.engine.recorder();
    const reads = this.parameters.map((p) => {
      const moments = this.#moments.get(p);
      return { p, m: moments && readChunks(rec, moments.m), v: moments && readChunks(rec, moments.v) };
    });
    await rec.submit();
    const snapshot: OptimizerSnapshot = { step: this.stepCount, moments: new Map() };
    for (const { p, m, v } of reads) {
      const size = p.value.rows * p.value.cols;
      snapshot.moments.set(p.name, {
        shape: p.shape,
        m: m ? await m : new Float32Array(size),
        v: v ? await v : new Float32Array(size),
      });
    }
    return snapshot;
  }

  /** Restores a state saved by {@linkcode optimizerState} (names must match the trained tensors). */
  loadOptimizerState(snapshot: OptimizerSnapshot): void {
    const pool = this.model.engine.pool;
    for (const p of this.parameters) {
      const saved = snapshot.moments.get(p.name);
      if (!saved) throw new Error(`Optimizer state has no moments for ${p.name}`);
      if (saved.m.length !== p.value.rows * p.value.cols || saved.v.length !== saved.m.length) {
        throw new Error(
          `Optimizer state for ${p.name} has ${saved.m.length} values, expected ${
            p.value.rows * p.value.cols
          }`,
        );
      }
      const moments = this.#moments.get(p) ?? this.#allocMoments(p);
      writeChunks(pool, moments.m, saved.m);
      writeChunks(pool, moments.v, saved.v);
    }
    this.stepCount = snapshot.step;
  }

  /** Releases the optimizer state (the model stays). */
  dispose(): void {
    const pool = this.model.engine.pool;
    for (const { m, v } of this.#moments.values()) {
      releaseChunks(pool, m);
      releaseChunks(pool, v);
    }
    this.#moments.clear();
    pool.release(this.#gradNorm);
  }
}
