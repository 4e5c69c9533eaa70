/**
 * The GPU decoder for `Qwen2ForCausalLM`, `Gemma2ForCausalLM` and `LlamaForCausalLM`, with the
 * public `CausalLM` API of DESIGN §4.
 *
 * Autograd choice: explicit, llm.c-style backward rather than a generic tape. The three
 * architectures share one block structure, so a hand-written backward per block
 * (`layers.ts`) is short, has no per-op bookkeeping, and makes the memory plan obvious: the
 * forward saves exactly the activations the backward reads ({@linkcode ForwardPass}), the backward
 * walks the blocks in reverse and accumulates (`+=`) into parameter gradients. Several losses
 * combine by handing their gradients to one {@linkcode ForwardPass.backward}: per-token weights on
 * log-probabilities (∂L/∂logprob) and a gradient on the final hidden state (∂L/∂h), as RecPO needs.
 * A whole step (forward, backward, optimizer) is recorded into one `Recorder` and submitted once.
 *
 * @example
 * ```ts
 * const model = await loadModel("../shared/fixtures/qwen2-tiny");
 * const logits = await model.logits([1, 2, 3]); // 3 × vocab
 * const { loss, grads } = await model.lossAndGrads([1, 2, 3]);
 * model.dispose();
 * ```
 *
 * @module
 */
import type { Engine } from "../gpu/engine.ts";
import { getEngine } from "../gpu/engine.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import {
  embeddingBackward,
  embeddingForward,
  type EmbeddingGradIndex,
  embeddingGradIndex,
} from "../ops/embedding.ts";
import { lmHeadLogits, tokenLogProbs, tokenLogProbsBackward } from "../ops/lm_head.ts";
import { rmsnormBackward, rmsnormForward } from "../ops/rmsnorm.ts";
import { type ModelConfig, readModelConfig } from "./config.ts";
import {
  type BlockActivations,
  blockBackward,
  type BlockCache,
  type BlockDims,
  blockForward,
  type DecoderBlock,
  releaseActivations,
  type RowLayout,
} from "./layers.ts";
import type { Linear, MatmulPrecision } from "./linear.ts";
import {
  clearChunks,
  ensureGrad,
  type Param,
  readChunks,
  releaseChunks,
  uploadParam,
  whole,
} from "./params.ts";
import { ropeInverseFrequencies } from "./rope_frequencies.ts";
import { chunkPacks, releaseWeightPacks } from "./weight_packs.ts";
import { expectedTensorShapes, type LinearModule, linearModulePath, openWeights } from "./weights.ts";

/** `batch` token sequences of `seqLen` ids each, row-major (right-padded when lengths differ). */
export interface TokenBatch {
  ids: Int32Array;
  batch: number;
  seqLen: number;
}

/** Gradients handed to {@linkcode ForwardPass.backward}; each part is optional and they add up. */
export interface BackwardInputs {
  /** ∂L/∂logprob per row (`[batch·seqLen]`); needs {@linkcode ForwardPass.logProbs} first. */
  dLogprob?: Float32Array | Tensor;
  /** ∂L/∂h of the final hidden state: per row index, or a dense `[batch·seqLen × hidden]` tensor. */
  dHidden?: Map<number, Float32Array> | Tensor;
}

/** The linear layers of a {@linkcode DecoderBlock}, by HF module name, in checkpoint order. */
type BlockLinear = "q" | "k" | "v" | "o" | "gate" | "up" | "down";
const BLOCK_FIELD: Record<LinearModule, BlockLinear> = {
  q_proj: "q",
  k_proj: "k",
  v_proj: "v",
  o_proj: "o",
  gate_proj: "gate",
  up_proj: "up",
  down_proj: "down",
};

function blockDims(config: ModelConfig): BlockDims {
  return {
    hidden: config.hiddenSize,
    heads: config.numHeads,
    kvHeads: config.numKvHeads,
    headDim: config.headDim,
    ff: config.intermediateSize,
    eps: config.rmsNormEps,
    normOffset: config.normWeightOffset,
    ropeTheta: config.ropeTheta,
    invFreq: ropeInverseFrequencies(config),
    attentionScale: config.attentionScale,
    softcap: config.attnLogitSoftcap ?? 0,
    gelu: config.activation === "gelu_pytorch_tanh",
    matmulPrecision: "f32",
  };
}

/** A causal LM on the GPU: parameters, forward, backward, and the DESIGN §4 convenience API. */
export class CausalLM {
  /** Every parameter in checkpoint order; the tied LM head is the embedding itself. */
  readonly params: Map<string, Param>;
  readonly blocks: DecoderBlock[];
  readonly embed: Param;
  readonly finalNorm: Param;
  /** `lm_head.weight`, or the embedding when tied. */
  readonly head: Param;
  readonly dims: BlockDims;
  #disposed = false;

  constructor(
    readonly engine: Engine,
    readonly config: ModelConfig,
    params: Map<string, Param>,
    /** The folder the model was loaded from ("" for a model made in memory). */
    readonly dir = "",
  ) {
    this.params = params;
    const get = (name: string) => {
      const p = params.get(name);
      if (!p) throw new Error(`Model ${dir || config.architecture} has no tensor "${name}"`);
      return p;
    };
    this.dims = blockDims(config);
    this.embed = get("model.embed_tokens.weight");
    this.finalNorm = get("model.norm.weight");
    this.head = config.tieWordEmbeddings ? this.embed : get("lm_head.weight");
    const linear = (layer: number, module: LinearModule): Linear => {
      const path = linearModulePath(layer, module);
      const weight = get(`${path}.weight`);
      return {
        weight,
        bias: params.get(`${path}.bias`) ?? null,
        lora: null,
        outFeatures: weight.shape[0],
        inFeatures: weight.shape[1],
      };
    };
    this.blocks = config.layerWindows.map((window, i) => {
      const norm = (name: string) => get(`model.layers.${i}.${name}.weight`);
      const gemma = config.sandwichNorms;
      return {
        index: i,
        window: window ?? 0,
        inputNorm: norm("input_layernorm"),
        postAttnNorm: gemma ? norm("post_attention_layernorm") : null,
        preMlpNorm: gemma ? norm("pre_feedforward_layernorm") : norm("post_attention_layernorm"),
        postMlpNorm: gemma ? norm("post_feedforward_layernorm") : null,
        q: linear(i, "q_proj"),
        k: linear(i, "k_proj"),
        v: linear(i, "v_proj"),
        o: linear(i, "o_proj"),
        gate: linear(i, "gate_proj"),
        up: linear(i, "up_proj"),
        down: linear(i, "down_proj"),
      };
    });
  }

  /**
   * Operand precision of the matmuls of the blocks' linear layers and of the LM head. `"f32"`
   * (default) is exact f32; the opt-in `"bf16"` rounds both operands of each product to bf16 and
   * accumulates in f32 (DESIGN §3 "Precision": master weights, activations and gradients stay f32),
   * ~1.4–1.5× faster matmuls on llvmpipe at a relative error per product of up to 2⁻⁷. Attention
   * and the small LoRA products stay f32.
   */
  get matmulPrecision(): MatmulPrecision {
    return this.dims.matmulPrecision;
  }

  set matmulPrecision(precision: MatmulPrecision) {
    this.dims.matmulPrecision = precision;
  }

  /** Every linear layer of every block, in order, with its HF module path. */
  linears(): { path: string; linear: Linear }[] {
    const fields = Object.entries(BLOCK_FIELD) as [LinearModule, BlockLinear][];
    return this.blocks.flatMap((block) =>
      fields.map(([module, field]) => ({ path: linearModulePath(block.index, module), linear: block[field] }))
    );
  }

  /**
   * Records the forward of `input` and returns the pass. With `train`, the activations the
   * backward needs are kept until {@linkcode ForwardPass.release}; without, they are released as
   * soon as the next block is recorded.
   */
  forward(rec: Recorder, input: TokenBatch, { train = false }: { train?: boolean } = {}): ForwardPass {
    this.#checkAlive();
    const { batch, seqLen, ids } = input;
    const rows = batch * seqLen;
    if (ids.length !== rows) {
      throw new RangeError(`Token batch has ${ids.length} ids, expected ${batch}×${seqLen}`);
    }
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < this.config.vocabSize)) {
        throw new RangeError(
          `Token id ${ids[i]} at position ${i} is outside the vocabulary (${this.config.vocabSize})`,
        );
      }
    }
    const pool = this.engine.pool;
    const gradIndex = train && this.embed.trainable
      ? embeddingGradIndex(rec, pool, ids, this.embed.value)
      : null;
    const positions = new Int32Array(rows);
    for (let i = 0; i < rows; i++) positions[i] = i % seqLen;
    const layout: RowLayout = {
      batch,
      tq: seqLen,
      tmax: seqLen,
      positions: rec.upload(pool, positions, [rows], "positions"),
      qOffset: rec.upload(pool, new Int32Array(batch), [batch], "q_offset"),
      kvLen: rec.upload(pool, new Int32Array(batch).fill(seqLen), [batch], "kv_len"),
    };
    const idsTensor = rec.upload(pool, ids, [rows], "ids");
    const x0 = pool.tensor([rows, this.config.hiddenSize], "f32", "embedded");
    embeddingForward(rec, idsTensor, this.embed.value, x0, { scale: this.config.embeddingScale });
    const { x, acts } = this.runBlocks(rec, x0, layout, null, train);
    const pass = new ForwardPass(this, rec, input, layout, idsTensor, gradIndex, acts, x, train);
    return pass;
  }

  /**
   * Records the blocks over `x` (consumed). Returns the last block's output and, when `keep`, the
   * saved activations of every block.
   */
  runBlocks(
    rec: Recorder,
    x: Tensor,
    layout: RowLayout,
    caches: BlockCache[] | null,
    keep: boolean,
  ): { x: Tensor; acts: BlockActivations[] } {
    const pool = this.engine.pool;
    const acts: BlockActivations[] = [];
    for (const block of this.blocks) {
      const step = blockForward(rec, pool, this.dims, block, x, layout, caches?.[block.index] ?? null, keep);
      if (keep) acts.push(step.acts);
      else {
        releaseActivations(pool, step.acts);
        pool.release(x);
      }
      x = step.out;
    }
    return { x, acts };
  }

  /** Records the final norm of `x [rows × hidden]` into a new tensor; returns it and its rstd. */
  finalNormForward(rec: Recorder, x: Tensor, rows: number): { h: Tensor; rstd: Tensor } {
    const pool = this.engine.pool;
    const h = pool.tensor([rows, this.config.hiddenSize], "f32", "final_hidden");
    const rstd = pool.tensor([rows], "f32", "final_rstd");
    rmsnormForward(rec, x, whole(this.finalNorm.value), h, rstd, {
      rows,
      cols: this.config.hiddenSize,
      eps: this.config.rmsNormEps,
      offset: this.config.normWeightOffset,
    });
    return { h, rstd };
  }

  /** Records `logits [rows × vocab]` of final hidden states `h` (after the final softcap). */
  logitsOf(rec: Recorder, h: Tensor, rows: number): Tensor {
    const logits = this.engine.pool.tensor([rows, this.config.vocabSize], "f32", "logits");
    lmHeadLogits(rec, h, this.head.value, logits, {
      tokens: rows,
      hidden: this.config.hiddenSize,
      vocab: this.config.vocabSize,
      softcap: this.config.finalLogitSoftcap ?? 0,
      precision: this.matmulPrecision,
      headPacks: chunkPacks(rec, this.head),
    });
    return logits;
  }

  /** Records clearing of every trainable parameter's gradient (allocating them on first use). */
  zeroGrads(rec: Recorder): void {
    for (const p of this.params.values()) if (p.trainable) clearChunks(rec, ensureGrad(this.engine.pool, p));
    for (const { linear } of this.linears()) {
      for (const p of linear.lora ? [linear.lora.a, linear.lora.b] : []) {
        if (p.trainable) clearChunks(rec, ensureGrad(this.engine.pool, p));
      }
    }
  }

  /**
   * Next-token logits of one sequence, `[ids.length × vocab]` row-major (after Gemma's final
   * softcap).
   */
  async logits(ids: number[] | Int32Array): Promise<Float32Array> {
    const rec = this.engine.recorder();
    const pool = this.engine.pool;
    const pass = this.forward(rec, single(ids));
    const { vocabSize: vocab, hiddenSize: hidden } = this.config;
    // A [T × vocab] block must fit one binding (128 MiB here: 220 rows of Qwen2.5's vocabulary).
    const limit = this.engine.gpu.device.limits.maxStorageBufferBindingSize;
    const blockRows = Math.max(1, Math.floor(limit / (vocab * 4)));
    const parts: { start: number; values: Promise<Float32Array> }[] = [];
    for (let start = 0; start < ids.length; start += blockRows) {
      const rows = Math.min(blockRows, ids.length - start);
      let h = pass.hidden;
      if (rows !== ids.length) {
        h = pool.tensor([rows, hidden], "f32", "hidden_block");
        rec.copy(pass.hidden, h, rows * hidden * 4, start * hidden * 4, 0);
      }
      const logits = this.logitsOf(rec, h, rows);
      parts.push({ start, values: rec.read(logits) });
      pool.release(logits);
      if (h !== pass.hidden) pool.release(h);
    }
    pass.release();
    await rec.submit();
    if (parts.length === 1) return parts[0].values;
    const out = new Float32Array(ids.length * vocab);
    for (const { start, values } of parts) out.set(await values, start * vocab);
    return out;
  }

  /** Output of the final norm for one sequence, `[ids.length × hidden]` row-major. */
  async hidden(ids: number[] | Int32Array): Promise<Float32Array> {
    const rec = this.engine.recorder();
    const pass = this.forward(rec, single(ids));
    const out = rec.read(pass.hidden);
    pass.release();
    await rec.submit();
    return out;
  }

  /**
   * Mean next-token cross-entropy of one sequence (logits[t] predicts ids[t+1], t = 0..T−2) and
   * its gradient for every parameter, keyed by HF tensor name, laid out like the checkpoint.
   */
  async lossAndGrads(
    ids: number[] | Int32Array,
  ): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    if (ids.length < 2) throw new RangeError(`lossAndGrads needs at least 2 tokens, got ${ids.length}`);
    const rec = this.engine.recorder();
    const trainable = [...this.params.values()].filter((p) => p.trainable);
    this.zeroGrads(rec);
    const input = single(ids);
    const pass = this.forward(rec, input, { train: true });
    const { logprob } = pass.logProbs(rec, nextTokenTargets(input));
    const count = ids.length - 1;
    const weights = new Float32Array(ids.length).fill(-1 / count);
    weights[ids.length - 1] = 0;
    pass.backward(rec, { dLogprob: weights });
    const logprobRead = rec.read(logprob);
    const reads = trainable.map((p) => [p.name, readChunks(rec, p.grad!)] as const);
    pass.release();
    await rec.submit();
    const lp = await logprobRead;
    let sum = 0;
    for (let t = 0; t < count; t++) sum += lp[t];
    const grads = new Map<string, Float32Array>();
    for (const [name, value] of reads) grads.set(name, await value);
    return { loss: -sum / count, grads };
  }

  /** Releases every GPU buffer of the model; the object cannot be used afterwards. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const pool = this.engine.pool;
    const all = [...this.params.values()];
    for (const { linear } of this.linears()) {
      if (!linear.lora) continue;
      all.push(linear.lora.a, linear.lora.b);
    }
    for (const p of all) {
      releaseWeightPacks(pool, p);
      releaseChunks(pool, p.value);
      if (p.grad) releaseChunks(pool, p.grad);
      p.grad = null;
    }
  }

  #checkAlive(): void {
    if (this.#disposed) throw new Error("CausalLM used after dispose()");
  }
}

function single(ids: number[] | Int32Array): TokenBatch {
  if (ids.length === 0) throw new RangeError("A token sequence needs at least one id");
  return { ids: Int32Array.from(ids), batch: 1, seqLen: ids.length };
}

/** Targets for next-token prediction: ids[t+1] within each sequence, −1 (ignored) on its last row. */
export function nextTokenTargets(input: TokenBatch): Int32Array {
  const { ids, batch, seqLen } = input;
  const targets = new Int32Array(ids.length).fill(-1);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t + 1 < seqLen; t++) targets[b * seqLen + t] = ids[b * seqLen + t + 1];
  }
  return targets;
}

/** A recorded forward: the final hidden state, and what the backward needs. */
export class ForwardPass {
  /** Output of the final norm, `[batch·seqLen × hidden]`. */
  readonly hidden: Tensor;
  readonly #rstd: Tensor;
  #targets: Tensor | null = null;
  #lse: Tensor | null = null;
  #logprob: Tensor | null = null;
  #released = false;

  constructor(
    readonly model: CausalLM,
    rec: Recorder,
    readonly input: TokenBatch,
    readonly layout: RowLayout,
    readonly ids: Tensor,
    readonly gradIndex: EmbeddingGradIndex | null,
    readonly acts: BlockActivations[],
    /** Input of the final norm (the last block's output). */
    readonly xLast: Tensor,
    readonly train: boolean,
  ) {
    const { h, rstd } = model.finalNormForward(rec, xLast, this.rows);
    this.hidden = h;
    this.#rstd = rstd;
  }

  get rows(): number {
    return this.input.batch * this.input.seqLen;
  }

  /**
   * Records the log-probability of `targets[t]` (−1 = ignored, gives 0) under the logits of row t,
   * without materialising all logits. Returns the `[rows]` log-probs and log-sum-exps.
   */
  logProbs(rec: Recorder, targets: Int32Array, temperature = 1): { logprob: Tensor; lse: Tensor } {
    const pool = this.model.engine.pool;
    const config = this.model.config;
    this.#targets = rec.upload(pool, targets, [this.rows], "targets");
    this.#logprob = pool.tensor([this.rows], "f32", "logprob");
    this.#lse = pool.tensor([this.rows], "f32", "lse");
    this.#temperature = temperature;
    tokenLogProbs(rec, this.hidden, this.model.head.value, this.#targets, this.#logprob, this.#lse, {
      tokens: this.rows,
      hidden: config.hiddenSize,
      vocab: config.vocabSize,
      softcap: config.finalLogitSoftcap ?? 0,
      temperature,
      precision: this.model.matmulPrecision,
      headPacks: chunkPacks(rec, this.model.head),
    });
    return { logprob: this.#logprob, lse: this.#lse };
  }

  #temperature = 1;

  /**
   * Records a copy of the final hidden state at `rows` (row indices into `batch·seqLen`, e.g. the
   * `<answer>` token of each sequence) into a new `[rows.length × hidden]` tensor the caller releases.
   */
  gatherHidden(rec: Recorder, rows: readonly number[]): Tensor {
    const hidden = this.model.config.hiddenSize;
    const out = this.model.engine.pool.tensor([rows.length, hidden], "f32", "gathered_hidden");
    rows.forEach((row, i) => {
      if (!(Number.isInteger(row) && row >= 0 && row < this.rows)) {
        throw new RangeError(`Hidden row ${row} is outside the ${this.rows} rows of this forward`);
      }
      rec.copy(this.hidden, out, hidden * 4, row * hidden * 4, i * hidden * 4);
    });
    return out;
  }

  /** Records the backward of the whole model for the given loss gradients (accumulating). */
  backward(rec: Recorder, inputs: BackwardInputs): void {
    if (!this.train) throw new Error("backward() needs a forward recorded with { train: true }");
    const model = this.model;
    const pool = model.engine.pool;
    const { hiddenSize: hidden, vocabSize: vocab } = model.config;
    const rows = this.rows;
    const dh = pool.tensor([rows, hidden], "f32", "d_hidden");
    if (inputs.dHidden instanceof Map) {
      const dense = new Float32Array(rows * hidden);
      for (const [row, g] of inputs.dHidden) {
        if (!(row >= 0 && row < rows) || g.length !== hidden) {
          throw new RangeError(`dHidden row ${row} must be in [0, ${rows}) with ${hidden} values`);
        }
        dense.set(g, row * hidden);
      }
      rec.write(dh, dense);
    } else if (inputs.dHidden) rec.copy(inputs.dHidden, dh);
    else rec.clear(dh);

    if (inputs.dLogprob) {
      if (!this.#targets || !this.#lse) throw new Error("backward({ dLogprob }) needs logProbs() first");
      const weights = inputs.dLogprob instanceof Float32Array
        ? rec.upload(pool, inputs.dLogprob, [rows], "d_logprob")
        : inputs.dLogprob;
      const dHead = model.head.trainable ? ensureGrad(pool, model.head) : null;
      tokenLogProbsBackward(
        rec,
        this.hidden,
        model.head.value,
        this.#targets,
        this.#lse,
        weights,
        dh,
        dHead,
        {
          tokens: rows,
          hidden,
          vocab,
          softcap: model.config.finalLogitSoftcap ?? 0,
          temperature: this.#temperature,
          precision: model.matmulPrecision,
          headPacks: chunkPacks(rec, model.head),
        },
      );
      if (weights !== inputs.dLogprob) pool.release(weights);
    }

    const dRes = pool.tensor([rows, hidden], "f32", "d_residual");
    rec.clear(dRes);
    const dwFinal = model.finalNorm.trainable ? whole(ensureGrad(pool, model.finalNorm)) : null;
    rmsnormBackward(rec, dh, this.xLast, whole(model.finalNorm.value), this.#rstd, dRes, dwFinal, {
      rows,
      cols: hidden,
      offset: model.config.normWeightOffset,
    });
    pool.release(dh);
    for (let i = model.blocks.length - 1; i >= 0; i--) {
      // ∂L/∂(embedding output) is read only by the embedding's own gradient.
      const inputGrad = i > 0 || this.gradIndex !== null;
      blockBackward(rec, pool, model.dims, model.blocks[i], this.acts[i], this.layout, dRes, inputGrad);
    }
    if (this.gradIndex) {
      embeddingBackward(rec, this.gradIndex, dRes, ensureGrad(pool, model.embed), {
        scale: model.config.embeddingScale,
      });
    }
    pool.release(dRes);
  }

  /** Returns every tensor of the pass to the pool (after the last command using them was recorded). */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const pool = this.model.engine.pool;
    for (const a of this.acts) {
      releaseActivations(pool, a);
      pool.release(a.xIn);
    }
    const rest = [
      this.hidden,
      this.#rstd,
      this.xLast,
      this.ids,
      this.layout.positions,
      this.layout.qOffset,
      this.layout.kvLen,
    ];
    for (const t of [...rest, this.#targets, this.#lse, this.#logprob]) if (t) pool.release(t);
    this.gradIndex?.release();
  }
}

/**
 * Loads a model folder (config.json + safetensors weights, BF16/F16/F32 converted to f32) onto
 * the GPU.
 *
 * @example
 * ```ts
 * const model = await loadModel("../shared/fixtures/stories260k");
 * model.config.architecture; // "LlamaForCausalLM"
 * ```
 */
export async function loadModel(dir: string): Promise<CausalLM> {
  const config = await readModelConfig(dir);
  const engine = await getEngine();
  using weights = await openWeights(dir, config);
  const params = new Map<string, Param>();
  for (const [name, shape] of weights.shapes) {
    params.set(name, uploadParam(engine.pool, name, shape, weights.get(name)));
  }
  return new CausalLM(engine, config, params, dir);
}

/**
 * A model from in-memory tensors (HF names, checkpoint layouts), e.g. a freshly initialised one.
 *
 * @example
 * ```ts
 * const model = await modelFromTensors(config, tensors);
 * ```
 */
export async function modelFromTensors(
  config: ModelConfig,
  tensors: ReadonlyMap<string, Float32Array>,
): Promise<CausalLM> {
  const engine = await getEngine();
  const params = new Map<string, Param>();
  for (const [name, shape] of expectedTensorShapes(config)) {
    const data = tensors.get(name);
    if (!data) throw new Error(`Missing tensor "${name}" for a ${config.architecture} model`);
    params.set(name, uploadParam(engine.pool, name, shape, data));
  }
  return new CausalLM(engine, config, params);
}
