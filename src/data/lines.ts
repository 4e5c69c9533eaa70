/**
 * Streaming line reader for plain or gzip files: gzip is detected from the magic bytes `1f 8b`, not the
 * name, and the SHA-256 of the stored bytes is computed on the way. Memory stays at one chunk.
 *
 * @example
 * ```ts
 * const source = new LineSource("meta_Video_Games.jsonl.gz");
 * for await (const batch of source.batches()) {
 *   for (const line of batch) console.log(line);
 * }
 * console.log(source.lines, source.sha256, source.gzip);
 * ```
 *
 * @module
 */
import { createHash } from "node:crypto";

/**
 * Whether the file starts with the gzip magic number `1f 8b`.
 *
 * @example
 * ```ts
 * const compressed = await isGzipFile("reviews.jsonl.gz"); // true
 * ```
 */
export async function isGzipFile(path: string): Promise<boolean> {
  using file = await Deno.open(path, { read: true });
  const head = new Uint8Array(2);
  let got = 0;
  while (got < 2) {
    const n = await file.read(head.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/**
 * One pass over the lines of a file (`\n` separated, a final `\r` removed, no empty last line after a
 * final newline). After the pass, {@linkcode LineSource.lines}, `sha256` and `gzip` describe the file.
 */
export class LineSource {
  /** Lines read so far (all of them once {@linkcode LineSource.batches} is exhausted). */
  lines = 0;
  /** Hex SHA-256 of the bytes as stored; set when the pass ends. */
  sha256 = "";
  /** Whether the file was gzip; set when the pass starts. */
  gzip = false;

  constructor(readonly path: string) {}

  /**
   * Yields the lines in batches (one batch per decoded chunk). Line k (1-based) of the file is the
   * `(lines - batch.length + i + 1)`-th: callers can keep a running counter.
   */
  async *batches(): AsyncGenerator<string[]> {
    this.gzip = await isGzipFile(this.path);
    const file = await Deno.open(this.path, { read: true });
    const hash = createHash("sha256");
    let bytes: ReadableStream<Uint8Array> = file.readable.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          hash.update(chunk);
          controller.enqueue(chunk);
        },
      }),
    );
    if (this.gzip) {
      bytes = bytes.pipeThrough(new DecompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>);
    }
    const text = bytes.pipeThrough(new TextDecoderStream());
    try {
      yield* this.#split(text);
    } catch (e) {
      const what = this.gzip ? "cannot decompress gzip" : "cannot read";
      throw new Error(
        `${this.path}: ${what} after line ${this.lines}: ${(e as Error).message.split("\n")[0]}`,
      );
    }
    this.sha256 = hash.digest("hex");
  }

  async *#split(text: ReadableStream<string>): AsyncGenerator<string[]> {
    let carry = "";
    for await (const chunk of text) {
      const parts = (carry + chunk).split("\n");
      carry = parts.pop()!;
      if (parts.length === 0) continue;
      for (let i = 0; i < parts.length; i++) {
        const p = parts[i];
        if (p.charCodeAt(p.length - 1) === 13) parts[i] = p.slice(0, -1);
      }
      this.lines += parts.length;
      yield parts;
    }
    if (carry !== "") {
      this.lines++;
      yield [carry.charCodeAt(carry.length - 1) === 13 ? carry.slice(0, -1) : carry];
    }
  }
}
