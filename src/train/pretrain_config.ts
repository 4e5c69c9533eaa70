/**
 * The flat configuration of `r2ec pretrain` (nanoGPT style): every key with its default and a
 * one-line description in one table, from which the help text is built, plus the checks a resolved
 * config must pass before a run starts.
 *
 * @example
 * ```ts
 * const config = resolveConfig(PRETRAIN_DEFAULTS, undefined, { max_steps: "50" }, "pretrain");
 * checkPretrainConfig(config);
 * ```
 *
 * @module
 */
import { isLinearModule, type LinearModule } from "../model/weights.ts";

/** Defaults of every pretraining key; the run's `config.json` holds the resolved values. */
export const PRETRAIN_DEFAULTS = {
  data: "data/sample/corpus.txt",
  out: "runs/pretrain-tiny",
  model: "",
  max_steps: 200,
  batch_size: 8,
  seq_len: 128,
  grad_accum_steps: 1,
  lr: 2e-3,
  schedule: "cosine",
  warmup_steps: 20,
  min_lr_ratio: 0.1,
  weight_decay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  max_grad_norm: 1.0,
  eval_interval: 50,
  eval_batches: 4,
  eval_fraction: 0.05,
  save_interval: 50,
  seed: 1337,
  vocab_size: 2048,
  d_model: 128,
  layers: 4,
  heads: 4,
  kv_heads: 2,
  ff: 384,
  lora_r: 0,
  lora_alpha: 16,
  lora_targets: "q,k,v,o,gate,up,down",
  matmul_precision: "bf16",
};

/** A resolved pretraining config. */
export type PretrainConfig = typeof PRETRAIN_DEFAULTS;

/** What each key means, for the help text. */
export const PRETRAIN_KEY_HELP: Record<keyof PretrainConfig, string> = {
  data:
    "training text: .jsonl (field text) or plain text (documents split by <|endoftext|> lines or blank lines)",
  out: "run directory: config.json, log.jsonl, tokenizer/, checkpoint-N/, model/",
  model:
    'HF model folder to continue from; "" = a fresh tiny Qwen2 model with a BPE tokenizer trained on data',
  max_steps: "optimizer steps",
  batch_size: "sequences per micro-batch",
  seq_len: "tokens per sequence",
  grad_accum_steps: "micro-batches summed into one optimizer step",
  lr: "peak learning rate",
  schedule: "constant | cosine (both with linear warm-up)",
  warmup_steps: "linear warm-up steps",
  min_lr_ratio: "cosine decays to lr × this at max_steps",
  weight_decay: "AdamW decoupled weight decay, on every trained tensor",
  beta1: "AdamW β1",
  beta2: "AdamW β2",
  eps: "AdamW ε",
  max_grad_norm: "clip the global gradient norm to this (0 = no clipping)",
  eval_interval: "steps between eval losses on the held-out tail (0 = only at the start and end)",
  eval_batches: "batches of batch_size windows per eval",
  eval_fraction: "share of the token stream held out for eval (its tail)",
  save_interval: "steps between checkpoints (0 = only at the end)",
  seed: "seed of the initial weights and of the batch order",
  vocab_size: "largest BPE vocabulary for a fresh model",
  d_model: "hidden size of a fresh model",
  layers: "decoder layers of a fresh model",
  heads: "attention heads of a fresh model",
  kv_heads: "key/value heads of a fresh model (GQA)",
  ff: "MLP intermediate size of a fresh model",
  lora_r: "LoRA rank (0 = full fine-tuning; needs --model)",
  lora_alpha: "LoRA alpha (the update is scaled by alpha / r)",
  lora_targets: "comma-separated LoRA targets among q,k,v,o,gate,up,down",
  matmul_precision:
    "bf16 | f32: operands of the linear layers' and LM head's matmuls (bf16, the default: faster, mixed precision with f32 accumulation, weights, gradients and optimizer; f32: exact products)",
};

const SHORT_TARGETS: Record<string, LinearModule> = {
  q: "q_proj",
  k: "k_proj",
  v: "v_proj",
  o: "o_proj",
  gate: "gate_proj",
  up: "up_proj",
  down: "down_proj",
};

/** The LoRA target modules of `lora_targets` (short names or HF names). */
export function loraTargets(config: PretrainConfig): LinearModule[] {
  return config.lora_targets.split(",").map((raw) => {
    const name = raw.trim();
    const module = SHORT_TARGETS[name] ?? (isLinearModule(name) ? name : undefined);
    if (!module) {
      throw new Error(
        `Config key "lora_targets" has unknown target "${name}" (known: ${
          Object.keys(SHORT_TARGETS).join(", ")
        })`,
      );
    }
    return module;
  });
}

/** Rejects values no run could use, naming the key. */
export function checkPretrainConfig(c: PretrainConfig): void {
  const positiveIntegers = [
    "max_steps",
    "batch_size",
    "seq_len",
    "grad_accum_steps",
    "eval_batches",
    "vocab_size",
    "d_model",
    "layers",
    "heads",
    "kv_heads",
    "ff",
  ] as const;
  for (const key of positiveIntegers) {
    if (!Number.isInteger(c[key]) || c[key] < 1) {
      throw new Error(`Config key "${key}" must be a positive integer, got ${c[key]}`);
    }
  }
  for (const key of ["warmup_steps", "eval_interval", "save_interval", "lora_r", "seed"] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 0) {
      throw new Error(`Config key "${key}" must be an integer ≥ 0, got ${c[key]}`);
    }
  }
  if (c.seq_len < 2) throw new Error(`Config key "seq_len" must be at least 2, got ${c.seq_len}`);
  if (c.schedule !== "constant" && c.schedule !== "cosine") {
    throw new Error(`Config key "schedule" must be "constant" or "cosine", got "${c.schedule}"`);
  }
  if (c.matmul_precision !== "f32" && c.matmul_precision !== "bf16") {
    throw new Error(`Config key "matmul_precision" must be "f32" or "bf16", got "${c.matmul_precision}"`);
  }
  if (!(c.lr > 0)) throw new Error(`Config key "lr" must be > 0, got ${c.lr}`);
  for (const key of ["beta1", "beta2", "min_lr_ratio"] as const) {
    if (!(c[key] >= 0 && c[key] < 1.0000001)) {
      throw new Error(`Config key "${key}" must be in [0, 1], got ${c[key]}`);
    }
  }
  for (const key of ["weight_decay", "max_grad_norm", "eps"] as const) {
    if (!(c[key] >= 0)) throw new Error(`Config key "${key}" must be ≥ 0, got ${c[key]}`);
  }
  if (!(c.eval_fraction > 0 && c.eval_fraction < 1)) {
    throw new Error(`Config key "eval_fraction" must be in (0, 1), got ${c.eval_fraction}`);
  }
  if (c.d_model % c.heads !== 0) {
    throw new Error(`Config key "d_model" (${c.d_model}) must be a multiple of heads (${c.heads})`);
  }
  if (c.heads % c.kv_heads !== 0) {
    throw new Error(`Config key "heads" (${c.heads}) must be a multiple of kv_heads (${c.kv_heads})`);
  }
  if (c.lora_r > 0) {
    if (c.model === "") throw new Error(`Config key "lora_r" needs "model": LoRA adapts an existing model`);
    loraTargets(c);
  }
}
