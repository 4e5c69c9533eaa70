/**
 * A fresh tiny model made from local text alone: a byte-level BPE tokenizer trained on the
 * training text (cached in the run directory under the text's SHA-256, so a second run reuses
 * it), a Qwen2-style config sized by the run config, and seeded random weights initialised as
 * transformers does for Qwen2 (normal with std `initializer_range`, norms 1, biases 0).
 *
 * @example
 * ```ts
 * const tokenizerDir = await prepareTokenizer("data/sample/corpus.txt", docs, "runs/tiny/tokenizer", 2048);
 * const tokenizer = await loadTokenizer(tokenizerDir);
 * const config = freshModelConfig(tokenizer, PRETRAIN_DEFAULTS);
 * const tensors = initialWeights(config, 1337);
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { SeededRng } from "../data/rng.ts";
import { type ModelConfig, tinyQwen2Config } from "../model/config.ts";
import { expectedTensorShapes } from "../model/weights.ts";
import { trainBpeTokenizer, writeTokenizer } from "../text/bpe_trainer.ts";
import type { Tokenizer } from "../text/tokenizer.ts";
import { writeTextAtomic } from "../io/files.ts";
import type { PretrainConfig } from "./pretrain_config.ts";

/** Written beside the tokenizer files: what they were trained on. */
const SOURCE_FILE = "tokenizer_source.json";

/** Hex SHA-256 of a file's bytes. */
export async function fileSha256(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Makes sure `dir` holds a BPE tokenizer trained on `docs` (read from `dataPath`) with at most
 * `vocabSize` tokens; an existing one trained on the same bytes with the same size is kept.
 * Returns whether it was trained now. With `mayTrain` false (a resumed run, whose model was made
 * for the cached tokenizer), a missing or different cache is an error instead.
 */
export async function prepareTokenizer(
  dataPath: string,
  docs: readonly string[],
  dir: string,
  vocabSize: number,
  mayTrain = true,
): Promise<{ trained: boolean }> {
  const source = { data_sha256: await fileSha256(dataPath), vocab_size: vocabSize };
  try {
    const cached = JSON.parse(await Deno.readTextFile(join(dir, SOURCE_FILE)));
    await Deno.stat(join(dir, "tokenizer.json"));
    if (cached.data_sha256 === source.data_sha256 && cached.vocab_size === vocabSize) {
      return { trained: false };
    }
  } catch {
    // No usable cache: train below.
  }
  if (!mayTrain) {
    throw new Error(
      `Tokenizer in ${dir} was not trained on ${dataPath} with vocab_size ${vocabSize}: the text or size changed`,
    );
  }
  await writeTokenizer(dir, trainBpeTokenizer(docs, { vocabSize }));
  // Written last: its presence vouches for the files beside it.
  await writeTextAtomic(
    join(dir, SOURCE_FILE),
    JSON.stringify({ data: dataPath, ...source }, null, 2) + "\n",
  );
  return { trained: true };
}

/** Vocabulary rows are padded to a multiple of this, as HF models commonly do. */
const VOCAB_MULTIPLE = 64;

/** The Qwen2-style config of a fresh model for `tokenizer`, sized by the run config. */
export function freshModelConfig(tokenizer: Tokenizer, c: PretrainConfig): ModelConfig {
  return tinyQwen2Config({
    vocabSize: Math.ceil(tokenizer.vocabSize / VOCAB_MULTIPLE) * VOCAB_MULTIPLE,
    hiddenSize: c.d_model,
    intermediateSize: c.ff,
    numLayers: c.layers,
    numHeads: c.heads,
    numKvHeads: c.kv_heads,
    maxPositionEmbeddings: Math.max(2048, c.seq_len),
    bosTokenId: tokenizer.bosId,
    eosTokenIds: [...tokenizer.eosIds],
    padTokenId: tokenizer.padId,
  });
}

/**
 * Seeded initial weights for `config`: norm weights 1 (0 for Gemma's `(1+w)` norms), biases 0,
 * everything else normal with std `initializerRange` (Box–Muller over a mulberry32 stream).
 */
export function initialWeights(config: ModelConfig, seed: number, std = 0.02): Map<string, Float32Array> {
  const rng = new SeededRng(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of expectedTensorShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith("norm.weight")) data.fill(1 - config.normWeightOffset);
    else if (!name.endsWith(".bias")) {
      for (let i = 0; i < data.length; i += 2) {
        const radius = std * Math.sqrt(-2 * Math.log(1 - rng.next()));
        const angle = 2 * Math.PI * rng.next();
        data[i] = radius * Math.cos(angle);
        if (i + 1 < data.length) data[i + 1] = radius * Math.sin(angle);
      }
    }
    out.set(name, data);
  }
  return out;
}
