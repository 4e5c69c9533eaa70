/**
 * Causal-LM training data from text: JSONL (one object per line with a `text` field) or plain
 * text (documents separated by `<|endoftext|>` lines or blank lines), tokenized into one stream
 * with an end-of-text token between documents, then cut into fixed-length windows. The last
 * `evalFraction` of the stream is held out for the eval loss.
 *
 * @example
 * ```ts
 * const docs = await readTextDocuments("data/sample/corpus.txt");
 * const stream = tokenizeDocuments(docs, (t) => tokenizer.encode(t), eosId);
 * const { train, evaluation } = splitStream(stream, 0.05);
 * ```
 *
 * @module
 */

/**
 * Reads documents from a `.jsonl` file (field `text`) or a plain text file: separated by lines
 * holding only `<|endoftext|>` when there are any (as in the bundled corpus), else by blank lines.
 */
export async function readTextDocuments(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`Cannot read training text ${path}: ${(e as Error).message}`);
  }
  if (path.endsWith(".jsonl")) {
    const docs: string[] = [];
    text.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch {
        throw new Error(`${path}:${i + 1}: not valid JSON`);
      }
      const value = (row as { text?: unknown }).text;
      if (typeof value !== "string") {
        throw new Error(`${path}:${i + 1}: field "text" is missing or not a string`);
      }
      docs.push(value);
    });
    return docs;
  }
  const separator = /^<\|endoftext\|>$/m.test(text) ? /^<\|endoftext\|>$/m : /\n\s*\n/;
  return text.split(separator).map((d) => d.trim()).filter((d) => d.length > 0);
}

/** Concatenates tokenized documents, each followed by `separatorId`. */
export function tokenizeDocuments(
  docs: string[],
  encode: (text: string) => number[],
  separatorId: number,
): Int32Array {
  const parts = docs.map((d) => encode(d));
  const out = new Int32Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
    out[at++] = separatorId;
  }
  return out;
}

/** Splits a token stream into a training head and an evaluation tail. */
export function splitStream(
  stream: Int32Array,
  evalFraction: number,
): { train: Int32Array; evaluation: Int32Array } {
  const evalTokens = Math.floor(stream.length * evalFraction);
  return {
    train: stream.subarray(0, stream.length - evalTokens),
    evaluation: stream.subarray(stream.length - evalTokens),
  };
}

/**
 * Draws a batch of `batch` windows of `seq` tokens from `stream` at offsets chosen by a
 * counter-based generator, so batch `step` is the same after a resume.
 */
export function sampleBatch(
  stream: Int32Array,
  batch: number,
  seq: number,
  seed: number,
  step: number,
): Int32Array {
  if (stream.length < seq) {
    throw new Error(`Training text has ${stream.length} tokens, fewer than one sequence of ${seq}`);
  }
  const out = new Int32Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    const offset = hash32(seed, step, b) % (stream.length - seq + 1);
    out.set(stream.subarray(offset, offset + seq), b * seq);
  }
  return out;
}

/** Consecutive non-overlapping windows covering `stream` (for a deterministic eval loss). */
export function evalWindows(stream: Int32Array, seq: number, maxWindows: number): Int32Array[] {
  const windows: Int32Array[] = [];
  for (let at = 0; at + seq <= stream.length && windows.length < maxWindows; at += seq) {
    windows.push(stream.subarray(at, at + seq));
  }
  return windows;
}

/** A 32-bit mix of three integers (splitmix-style), used as a stateless RNG. */
export function hash32(a: number, b: number, c: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35) ^
    Math.imul(c + 1, 0x27d4eb2f)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
