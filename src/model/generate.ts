/**
 * Batched generation with a KV cache: prompts of different lengths in one batch, greedy or
 * sampled (temperature, top-k, top-p, repetition penalty; HF semantics, seeded), stop strings kept
 * in the output (R²ec stops at `<answer>`, rrec-spec §B.5), EOS ids and a token budget, with the
 * reason each sequence stopped.
 *
 * Prompts are right-padded for the prefill, and every sequence keeps its own positions: its first
 * new token goes to cache row `len(prompt)`, over the padding, and a query never sees keys past its
 * own position, so a batched sequence gets exactly the tokens it would get alone. Each decode step
 * is one submit: the sampled ids stay on the GPU as the next step's input and only the `batch`
 * ids are read back.
 *
 * @module
 */
import type { Tokenizer } from "../text/tokenizer.ts";
import { findStopString, IncrementalDecoder } from "../text/incremental_decoder.ts";
import type { Recorder } from "../gpu/recorder.ts";
import type { Tensor } from "../gpu/tensor.ts";
import { embeddingForward } from "../ops/embedding.ts";
import { sampleTokens, type SamplingOptions as OpSamplingOptions } from "../ops/sampling.ts";
import type { CausalLM } from "./decoder.ts";
import { KvCache } from "./kv_cache.ts";

/** Why a sequence stopped. */
export type FinishReason = "stop" | "length" | "eos";

/** Sampling settings of a whole generation; the per-step counter is generate's own. */
export type SamplingOptions = Omit<OpSamplingOptions, "step">;

/** Options of {@linkcode generate}. */
export interface GenerateOptions extends Partial<SamplingOptions> {
  /** New tokens per sequence at most. */
  maxNewTokens: number;
  /** Ids that end a sequence (kept in `tokens`, not in `text`). */
  eosIds?: readonly number[];
  /** Strings that end a sequence; the text is cut right after the stop string, which is kept. */
  stopStrings?: readonly string[];
  /** Needed for `text`, streaming and stop strings. */
  tokenizer?: Pick<Tokenizer, "decode">;
  /** Called with each piece of final text of sequence `index` as it is produced. */
  onText?: (index: number, delta: string) => void;
}

/** One generated continuation. */
export interface Generation {
  /** New token ids (the EOS id included when that ended the sequence). */
  tokens: number[];
  /** Decoded continuation (special tokens skipped), cut after a stop string. */
  text: string;
  finishReason: FinishReason;
}

/** HF `GenerationConfig` defaults for what a caller leaves out: greedy unless a temperature is given. */
const DEFAULT_SAMPLING: SamplingOptions = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };

/** Per-sequence host state while generating. */
class SequenceState {
  readonly tokens: number[] = [];
  text = "";
  finish: FinishReason | null = null;
  readonly decoder: IncrementalDecoder | null;

  constructor(tokenizer: GenerateOptions["tokenizer"], readonly promptLength: number) {
    this.decoder = tokenizer ? new IncrementalDecoder(tokenizer, { skipSpecialTokens: true }) : null;
  }

  /** Position of the newest token (the one fed to the next decode step). */
  get position(): number {
    return this.promptLength + this.tokens.length - 1;
  }
}

/**
 * Generates continuations of `prompts` (token ids; each non-empty: start from BOS for "no prompt").
 *
 * @example
 * ```ts
 * const [out] = await generate(model, [[1]], { maxNewTokens: 200, temperature: 0, tokenizer });
 * out.text; // "Once upon a time, …"
 * ```
 */
export async function generate(
  model: CausalLM,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
): Promise<Generation[]> {
  const sampling = { ...DEFAULT_SAMPLING, ...definedOnly(options) };
  const stops = options.stopStrings ?? [];
  if (stops.length > 0 && !options.tokenizer) throw new Error("Stop strings need a tokenizer to decode with");
  const batch = prompts.length;
  if (batch === 0) return [];
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new RangeError(`Prompt ${i} is empty: start it with the BOS id`);
  });
  const { engine } = model;
  const maxNew = options.maxNewTokens;
  if (!(Number.isInteger(maxNew) && maxNew >= 1)) {
    throw new RangeError(`maxNewTokens must be ≥ 1, got ${maxNew}`);
  }
  const promptLen = Math.max(...prompts.map((p) => p.length));
  const capacity = promptLen + maxNew;
  const eos = new Set(options.eosIds ?? []);
  const states = prompts.map((p) => new SequenceState(options.tokenizer, p.length));

  const session = new DecodeSession(model, batch, capacity, sampling);
  const usePenalty = sampling.repetitionPenalty !== 1;
  if (usePenalty) prompts.forEach((p, b) => session.history.set(p, b * capacity));
  try {
    let rec = engine.recorder();
    let ids = session.recordPrefill(rec, prompts);
    await rec.submit();
    for (let step = 1;; step++) {
      const got = await ids;
      states.forEach((s, b) => {
        if (s.finish) return;
        accept(s, got[b], b, { eos, stops, maxNew, onText: options.onText });
        if (usePenalty) session.history[b * capacity + s.position] = got[b];
      });
      if (states.every((s) => s.finish)) break;
      rec = engine.recorder();
      ids = session.recordStep(rec, Int32Array.from(states, (s) => Math.min(s.position, capacity - 1)), step);
      await rec.submit();
    }
  } finally {
    session.release();
  }
  return states.map((s) => ({ tokens: s.tokens, text: s.text, finishReason: s.finish! }));
}

/**
 * The GPU side of generating for a batch: the KV cache, the sampled ids (kept on the GPU as the
 * next step's input) and the token history for the repetition penalty. Each `record*` call
 * records one step that ends with sampling and schedules the read of the `batch` new ids.
 */
export class DecodeSession {
  readonly cache: KvCache;
  /** Token history per sequence (`[batch × capacity]`, −1 padded) for the repetition penalty. */
  readonly history: Int32Array;
  readonly #sampled: Tensor;
  readonly #prevTokens: Tensor;
  readonly #position: Tensor;
  readonly #kvLen: Tensor;
  readonly #historyWidth: number;

  constructor(
    readonly model: CausalLM,
    readonly batch: number,
    readonly capacity: number,
    readonly sampling: SamplingOptions,
  ) {
    const pool = model.engine.pool;
    this.cache = new KvCache(pool, model.config, batch, capacity);
    this.#historyWidth = sampling.repetitionPenalty !== 1 ? capacity : 1;
    this.history = new Int32Array(batch * this.#historyWidth).fill(-1);
    this.#sampled = pool.tensor([batch], "i32", "sampled_ids");
    this.#prevTokens = pool.tensor([batch, this.#historyWidth], "i32", "prev_tokens");
    this.#position = pool.tensor([batch], "i32", "decode_position");
    this.#kvLen = pool.tensor([batch], "i32", "decode_kv_len");
  }

  /** Records the prefill of `prompts` (right-padded to the longest) and the first sampling. */
  recordPrefill(rec: Recorder, prompts: readonly (readonly number[])[]): Promise<Int32Array> {
    const { model, batch } = this;
    const pool = model.engine.pool;
    const hidden = model.config.hiddenSize;
    const promptLen = Math.max(...prompts.map((p) => p.length));
    const padded = new Int32Array(batch * promptLen);
    prompts.forEach((p, b) => padded.set(p, b * promptLen));
    const positions = Int32Array.from({ length: batch * promptLen }, (_, i) => i % promptLen);
    const layout = {
      batch,
      tq: promptLen,
      tmax: this.capacity,
      positions: rec.upload(pool, positions, [batch * promptLen], "positions"),
      qOffset: rec.upload(pool, new Int32Array(batch), [batch], "q_offset"),
      kvLen: rec.upload(pool, new Int32Array(batch).fill(promptLen), [batch], "kv_len"),
    };
    const ids = rec.upload(pool, padded, [batch * promptLen], "prompt_ids");
    const x0 = pool.tensor([batch * promptLen, hidden], "f32", "embedded");
    embeddingForward(rec, ids, model.embed.value, x0, { scale: model.config.embeddingScale });
    const { x } = model.runBlocks(rec, x0, layout, this.cache.blocks, false);
    const last = pool.tensor([batch, hidden], "f32", "last_rows");
    prompts.forEach((p, b) =>
      rec.copy(x, last, hidden * 4, (b * promptLen + p.length - 1) * hidden * 4, b * hidden * 4)
    );
    for (const t of [x, ids, layout.positions, layout.qOffset, layout.kvLen]) pool.release(t);
    return this.#sample(rec, last, 0);
  }

  /**
   * Records one decode step: the ids sampled last step enter at `positions[b]` (cache row and
   * RoPE position) of each sequence.
   */
  recordStep(rec: Recorder, positions: Int32Array, step: number): Promise<Int32Array> {
    const { model, batch } = this;
    const pool = model.engine.pool;
    rec.write(this.#position, positions);
    rec.write(this.#kvLen, positions.map((p) => p + 1));
    const layout = {
      batch,
      tq: 1,
      tmax: this.capacity,
      positions: this.#position,
      qOffset: this.#position,
      kvLen: this.#kvLen,
    };
    const x0 = pool.tensor([batch, model.config.hiddenSize], "f32", "embedded");
    embeddingForward(rec, this.#sampled, model.embed.value, x0, { scale: model.config.embeddingScale });
    const { x } = model.runBlocks(rec, x0, layout, this.cache.blocks, false);
    return this.#sample(rec, x, step);
  }

  /** Final norm, LM head and sampling of `last [batch × hidden]` (consumed). */
  #sample(rec: Recorder, last: Tensor, step: number): Promise<Int32Array> {
    const { model, batch, sampling } = this;
    const pool = model.engine.pool;
    rec.write(this.#prevTokens, this.history);
    const { h, rstd } = model.finalNormForward(rec, last, batch);
    const logits = model.logitsOf(rec, h, batch);
    sampleTokens(rec, logits, this.#prevTokens, this.#sampled, {
      batch,
      vocab: model.config.vocabSize,
      ...sampling,
      step,
    });
    for (const t of [h, rstd, logits, last]) pool.release(t);
    return rec.readInt(this.#sampled);
  }

  /** Returns the cache and step tensors to the pool. */
  release(): void {
    this.cache.release();
    const pool = this.model.engine.pool;
    for (const t of [this.#sampled, this.#prevTokens, this.#position, this.#kvLen]) pool.release(t);
  }
}

/** Takes one sampled token for a running sequence and decides whether it ends there. */
function accept(
  s: SequenceState,
  token: number,
  index: number,
  o: { eos: Set<number>; stops: readonly string[]; maxNew: number; onText?: (i: number, d: string) => void },
): void {
  s.tokens.push(token);
  if (o.eos.has(token)) {
    s.finish = "eos";
    emit(s, index, s.decoder?.flush() ?? "", o);
    return;
  }
  const atLimit = s.tokens.length >= o.maxNew;
  let delta = s.decoder?.push(token) ?? "";
  if (atLimit) delta += s.decoder?.flush() ?? "";
  const checkedUpTo = s.text.length;
  const match = findStopString(s.text + delta, o.stops, checkedUpTo);
  if (match) {
    emit(s, index, (s.text + delta).slice(checkedUpTo, match.end), o);
    s.finish = "stop";
    return;
  }
  emit(s, index, delta, o);
  if (atLimit) s.finish = "length";
}

function emit(
  s: SequenceState,
  index: number,
  delta: string,
  o: { onText?: (i: number, d: string) => void },
): void {
  if (delta.length === 0) return;
  s.text += delta;
  o.onText?.(index, delta);
}

function definedOnly(options: Partial<SamplingOptions>): Partial<SamplingOptions> {
  const out: Partial<SamplingOptions> = {};
  for (const key of ["temperature", "topK", "topP", "repetitionPenalty", "seed"] as const) {
    if (options[key] !== undefined) out[key] = options[key];
  }
  return out;
}
