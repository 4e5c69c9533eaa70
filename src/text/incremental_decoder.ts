/**
 * Streaming detokenization for generation: text is released only once it is final, so a character
 * whose UTF-8 bytes span several byte-level BPE tokens is never shown half-decoded, and stop strings
 * are looked for in the released text.
 *
 * @module
 */
import type { DecodeOptions, Tokenizer } from "./tokenizer.ts";

/** U+FFFD, what a decoder yields for an unfinished UTF-8 sequence. */
const REPLACEMENT = "\uFFFD";
/** A UTF-8 character has at most 4 bytes and every byte-level token at least one. */
const MAX_TOKENS_PER_CHARACTER = 4;

/**
 * Turns a growing list of token ids into text deltas.
 *
 * It decodes a short window of recent tokens twice (with and without the newest ones) and releases the
 * difference, the method of HF `TextStreamer` and vLLM: decoding a window rather than every token alone
 * keeps word-boundary spaces right for SentencePiece-style decoders, and a window ending in U+FFFD is
 * held back until the character completes.
 *
 * @example
 * ```ts
 * const decoder = new IncrementalDecoder(tokenizer, { skipSpecialTokens: true });
 * for (const id of generatedIds) process.stdout.write(decoder.push(id));
 * process.stdout.write(decoder.flush());
 * decoder.text; // the whole decoded continuation
 * ```
 */
export class IncrementalDecoder {
  #ids: number[] = [];
  /** Start of the window that is decoded again for context. */
  #prefixOffset = 0;
  /** End of the text already released. */
  #readOffset = 0;
  #text = "";

  constructor(
    private readonly tokenizer: Pick<Tokenizer, "decode">,
    private readonly options: DecodeOptions = {},
  ) {}

  /** All text released so far. */
  get text(): string {
    return this.#text;
  }

  /** Every id pushed so far. */
  get ids(): readonly number[] {
    return this.#ids;
  }

  /** Adds one generated id; returns the text it completes ("" while a character is unfinished). */
  push(id: number): string {
    this.#ids.push(id);
    return this.#release(false);
  }

  /** Releases whatever is held back (an unfinished character becomes U+FFFD) at the end of generation. */
  flush(): string {
    return this.#readOffset === this.#ids.length ? "" : this.#release(true);
  }

  #release(force: boolean): string {
    const window = this.#ids.slice(this.#prefixOffset);
    const released = this.#readOffset - this.#prefixOffset;
    const prefixText = this.tokenizer.decode(window.slice(0, released), this.options);
    let end = window.length;
    let text = this.tokenizer.decode(window, this.options);
    if (!force && text.endsWith(REPLACEMENT)) {
      if (end - released <= MAX_TOKENS_PER_CHARACTER) return "";
      // Bytes that stayed unfinished this long are invalid for good: release up to the last clean cut,
      // or all but the newest tokens, so stop strings after them are still seen.
      end = this.#lastCleanCut(window, released) ?? window.length - MAX_TOKENS_PER_CHARACTER;
      text = this.tokenizer.decode(window.slice(0, end), this.options);
    }
    if (!force && text.length <= prefixText.length) return "";
    const delta = text.slice(prefixText.length);
    this.#readOffset = this.#prefixOffset + end;
    this.#prefixOffset += released;
    this.#text += delta;
    return delta;
  }

  /** The longest window prefix past `released` whose text does not end unfinished, if any. */
  #lastCleanCut(window: number[], released: number): number | undefined {
    for (let end = window.length - 1; end > released; end--) {
      if (!this.tokenizer.decode(window.slice(0, end), this.options).endsWith(REPLACEMENT)) return end;
    }
    return undefined;
  }
}

/** Where a stop string was found. */
export interface StopMatch {
  /** The stop string that matched. */
  stop: string;
  /** Index in the text just after the stop string (the output is cut here, keeping the stop string). */
  end: number;
}

/**
 * Finds the earliest stop string in `text` that ends after `from` (pass the length of the text checked
 * before, so each check only looks at the new text and the overlap a stop string could span).
 *
 * @example
 * ```ts
 * findStopString("I think <answer> B", ["<answer>"]); // { stop: "<answer>", end: 16 }
 * ```
 */
export function findStopString(text: string, stops: readonly string[], from = 0): StopMatch | null {
  let best: StopMatch | null = null;
  for (const stop of stops) {
    if (stop.length === 0) continue;
    const index = text.indexOf(stop, Math.max(0, from - stop.length + 1));
    if (index < 0) continue;
    const end = index + stop.length;
    if (best === null || end < best.end) best = { stop, end };
  }
  return best;
}
