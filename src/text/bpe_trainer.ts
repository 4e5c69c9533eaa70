/**
 * A byte-level BPE trainer (GPT-2 / Qwen2 style) that writes a standard Hugging Face `tokenizer.json`
 * and a `tokenizer_config.json` with a ChatML chat template, so a fresh tiny model can be made from
 * local text alone (issue 3, item 7).
 *
 * Pre-tokenization is the one written into the file (Qwen2's split regex, then the byte-to-unicode
 * map) and is run by `@huggingface/tokenizers` itself, so training sees exactly the words encoding
 * will see. Merges are learned over the unique words with their counts, updating only the pairs of
 * the words a merge touches, with a lazily updated max-heap of pair counts.
 *
 * @module
 */
import { SplitPreTokenizer } from "@huggingface/tokenizers";
import { join } from "node:path";
import { writeTextAtomic } from "../io/files.ts";
import type { JsonObject } from "./json_file.ts";

/** The parsed contents of the two files {@linkcode writeTokenizer} writes. */
export interface TokenizerFiles {
  /** `tokenizer.json`. */
  tokenizer: JsonObject;
  /** `tokenizer_config.json`. */
  config: JsonObject;
}

/** Options of {@linkcode trainBpeTokenizer}. */
export interface BpeTrainingOptions {
  /** Largest vocabulary wanted, special and added tokens included (fewer if merges run out). */
  vocabSize: number;
  /** Special tokens beyond the ChatML ones (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`). */
  specialTokens?: readonly string[];
  /** Non-special single tokens kept by `skipSpecialTokens` decoding; default `<answer>`, `</answer>`. */
  addedTokens?: readonly string[];
  /** A pair seen fewer times than this is never merged; default 2. */
  minFrequency?: number;
}

/** ChatML special tokens, the roles the config gives them, and the template that uses them. */
const CHATML_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
const CHATML_TEMPLATE = "{%- for message in messages %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
const DEFAULT_ADDED_TOKENS = ["<answer>", "</answer>"];

/** Qwen2's pre-tokenizer split (letters, single digits, punctuation runs, newlines, spaces). */
const SPLIT_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|" +
  " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const SPLIT_CONFIG = {
  type: "Split" as const,
  pattern: { Regex: SPLIT_REGEX },
  behavior: "Isolated" as const,
  invert: false,
};
const BYTE_LEVEL_CONFIG = {
  type: "ByteLevel",
  add_prefix_space: false,
  trim_offsets: false,
  use_regex: false,
};

/** Pair keys pack two token ids; vocabularies stay below this. */
const PAIR_BASE = 1 << 20;

/**
 * Learns byte-level BPE merges from `texts` up to `vocabSize` tokens.
 *
 * Ids: the special tokens first (`<|endoftext|>` 0, `<|im_start|>` 1, `<|im_end|>` 2, then
 * `specialTokens`), the added tokens, the 256 byte symbols, then one id per merge.
 *
 * @example
 * ```ts
 * const files = trainBpeTokenizer(["Once upon a time", "there was a cat"], { vocabSize: 512 });
 * await writeTokenizer("models/tiny", files);
 * const tokenizer = await loadTokenizer("models/tiny");
 * tokenizer.encode("<answer>", { addSpecialTokens: false }).length; // 1
 * ```
 */
export function trainBpeTokenizer(texts: Iterable<string>, options: BpeTrainingOptions): TokenizerFiles {
  const special = unique([...CHATML_TOKENS, ...(options.specialTokens ?? [])]);
  const added = unique(options.addedTokens ?? DEFAULT_ADDED_TOKENS).filter((token) =>
    !special.includes(token)
  );
  const reserved = special.length + added.length;
  const minFrequency = options.minFrequency ?? 2;
  if (
    !Number.isInteger(options.vocabSize) || options.vocabSize < reserved + 256 ||
    options.vocabSize >= PAIR_BASE
  ) {
    throw new Error(
      `BPE vocabSize must be an integer from ${reserved + 256} (special, added and 256 byte tokens) to ${
        PAIR_BASE - 1
      }, got ${options.vocabSize}`,
    );
  }
  for (const token of [...special, ...added]) {
    if (token.length === 0) throw new Error("BPE special and added tokens must not be empty");
  }

  const symbols = [...special, ...added, ...BYTE_SYMBOLS];
  const merges = learnMerges(countWords(texts, [...special, ...added]), reserved, {
    maxMerges: options.vocabSize - symbols.length,
    minFrequency,
  });
  for (const [left, right] of merges) symbols.push(symbols[left] + symbols[right]);

  const vocab: Record<string, number> = {};
  symbols.forEach((symbol, id) => vocab[symbol] = id);
  const addedTokenEntries = [...special, ...added].map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: id < special.length,
  }));
  const tokenizer: JsonObject = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokenEntries,
    normalizer: null,
    pre_tokenizer: { type: "Sequence", pretokenizers: [SPLIT_CONFIG, BYTE_LEVEL_CONFIG] },
    post_processor: BYTE_LEVEL_CONFIG,
    decoder: BYTE_LEVEL_CONFIG,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([left, right]) => [symbols[left], symbols[right]]),
    },
  };
  const config: JsonObject = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(
      addedTokenEntries.map(({ id, ...entry }) => [String(id), entry]),
    ),
    additional_special_tokens: special.slice(1),
    bos_token: CHATML_TOKENS[0],
    eos_token: CHATML_TOKENS[2],
    pad_token: CHATML_TOKENS[0],
    unk_token: null,
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    errors: "replace",
    split_special_tokens: false,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
  return { tokenizer, config };
}

/**
 * Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (created if needed), each through a
 * temporary file and a rename.
 *
 * @example
 * ```ts
 * await writeTokenizer("models/tiny", trainBpeTokenizer(lines, { vocabSize: 2048 }));
 * ```
 */
export async function writeTokenizer(dir: string, files: TokenizerFiles): Promise<void> {
  await writeTextAtomic(join(dir, "tokenizer.json"), JSON.stringify(files.tokenizer, null, 1) + "\n");
  await writeTextAtomic(join(dir, "tokenizer_config.json"), JSON.stringify(files.config, null, 2) + "\n");
}

/** GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest move to U+0100 on. */
const BYTE_SYMBOLS: readonly string[] = (() => {
  const printable = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  let shifted = 0;
  return Array.from(
    { length: 256 },
    (_, byte) => String.fromCharCode(printable(byte) ? byte : 256 + shifted++),
  );
})();

/** Unique pre-tokenized words (as UTF-8 bytes) with how often each occurs. */
interface WordCounts {
  words: Uint8Array[];
  counts: number[];
}

function countWords(texts: Iterable<string>, reservedTokens: readonly string[]): WordCounts {
  const splitter = new SplitPreTokenizer(SPLIT_CONFIG);
  const reserved = new RegExp(
    [...reservedTokens].sort((a, b) => b.length - a.length).map((token) =>
      token.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    )
      .join("|"),
    "g",
  );
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const segment of text.split(reserved)) {
      if (segment.length === 0) continue;
      for (const word of splitter.pre_tokenize_text(segment)) counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  const encoder = new TextEncoder();
  const result: WordCounts = { words: [], counts: [] };
  for (const [word, count] of counts) {
    result.words.push(encoder.encode(word));
    result.counts.push(count);
  }
  return result;
}

/** Returns the merges in order, each as the ids of its two parts; merge i creates id `firstByteId + 256 + i`. */
function learnMerges(
  { words: wordBytes, counts }: WordCounts,
  firstByteId: number,
  { maxMerges, minFrequency }: { maxMerges: number; minFrequency: number },
): [number, number][] {
  const words = wordBytes.map((bytes) => Array.from(bytes, (byte) => byte + firstByteId));
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const heap = new PairHeap();
  const addPairs = (w: number, sign: 1 | -1, changed: Set<number>) => {
    const symbols = words[w];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = symbols[i] * PAIR_BASE + symbols[i + 1];
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * counts[w]);
      changed.add(key);
      if (sign > 0) {
        let holders = pairWords.get(key);
        if (holders === undefined) pairWords.set(key, holders = new Set());
        holders.add(w);
      }
    }
  };
  const pushChanged = (changed: Set<number>) => {
    for (const key of changed) {
      const count = pairCounts.get(key)!;
      if (count > 0) heap.push(count, key);
      else pairCounts.delete(key);
    }
  };

  const initial = new Set<number>();
  for (let w = 0; w < words.length; w++) addPairs(w, 1, initial);
  pushChanged(initial);

  const merges: [number, number][] = [];
  let nextId = firstByteId + 256;
  while (merges.length < maxMerges) {
    const best = heap.popValid(pairCounts);
    if (best === undefined || best.count < Math.max(1, minFrequency)) break;
    const left = Math.floor(best.key / PAIR_BASE);
    const right = best.key % PAIR_BASE;
    const merged = nextId++;
    merges.push([left, right]);
    const changed = new Set<number>();
    for (const w of pairWords.get(best.key) ?? []) {
      const symbols = words[w];
      if (!containsPair(symbols, left, right)) continue;
      addPairs(w, -1, changed);
      words[w] = mergePair(symbols, left, right, merged);
      addPairs(w, 1, changed);
    }
    pairWords.delete(best.key);
    pushChanged(changed);
  }
  return merges;
}

function containsPair(symbols: number[], left: number, right: number): boolean {
  for (let i = 0; i + 1 < symbols.length; i++) {
    if (symbols[i] === left && symbols[i + 1] === right) return true;
  }
  return false;
}

/** Replaces non-overlapping occurrences of (left, right), scanning left to right as BPE encoding does. */
function mergePair(symbols: number[], left: number, right: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
      out.push(merged);
      i++;
    } else {
      out.push(symbols[i]);
    }
  }
  return out;
}

/**
 * Max-heap of (count, pair key) with stale entries skipped on pop; equal counts go to the smaller key,
 * so training is deterministic.
 */
class PairHeap {
  #counts: number[] = [];
  #keys: number[] = [];

  push(count: number, key: number): void {
    this.#counts.push(count);
    this.#keys.push(key);
    let i = this.#counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(i, parent)) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  /** The largest entry whose count is still current, or undefined when none is left. */
  popValid(current: ReadonlyMap<number, number>): { count: number; key: number } | undefined {
    while (this.#counts.length > 0) {
      const count = this.#counts[0];
      const key = this.#keys[0];
      this.#popTop();
      if (current.get(key) === count) return { count, key };
    }
    return undefined;
  }

  #popTop(): void {
    const last = this.#counts.length - 1;
    this.#swap(0, last);
    this.#counts.pop();
    this.#keys.pop();
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let top = i;
      if (left < last && this.#before(left, top)) top = left;
      if (right < last && this.#before(right, top)) top = right;
      if (top === i) return;
      this.#swap(i, top);
      i = top;
    }
  }

  #before(a: number, b: number): boolean {
    return this.#counts[a] > this.#counts[b] ||
      (this.#counts[a] === this.#counts[b] && this.#keys[a] < this.#keys[b]);
  }

  #swap(a: number, b: number): void {
    [this.#counts[a], this.#counts[b]] = [this.#counts[b], this.#counts[a]];
    [this.#keys[a], this.#keys[b]] = [this.#keys[b], this.#keys[a]];
  }
}

function unique(tokens: readonly string[]): string[] {
  return [...new Set(tokens)];
}
