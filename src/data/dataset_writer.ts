/**
 * Writes a dataset directory atomically: everything goes into a temporary directory beside the output,
 * which is renamed into place only when complete. An existing output is refused, or, with `force`,
 * moved aside, replaced by one rename, then deleted; it is never half overwritten.
 *
 * @example
 * ```ts
 * const out = await StagedDirectory.create("data/ds", { force: false });
 * const items = await out.jsonl("items.jsonl");
 * await items.write({ item_id: 1 });
 * await items.close();
 * await out.commit();
 * ```
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { pathExists } from "../io/files.ts";

/** A cannot-write problem: output exists, or the directory is not writable. */
export class OutputError extends Error {
  override name = "OutputError";
}

/** Buffered JSON-lines writer (one `write` per ~1 MiB). */
export class JsonlWriter {
  #parts: string[] = [];
  #size = 0;
  #encoder = new TextEncoder();
  /** Lines written. */
  lines = 0;

  constructor(readonly file: Deno.FsFile) {}

  /** Appends `JSON.stringify(value)` and a newline. */
  async write(value: unknown): Promise<void> {
    const line = JSON.stringify(value);
    this.#parts.push(line, "\n");
    this.#size += line.length + 1;
    this.lines++;
    if (this.#size >= 1 << 20) await this.flush();
  }

  /** Writes what is buffered. */
  async flush(): Promise<void> {
    if (this.#size === 0) return;
    let bytes = this.#encoder.encode(this.#parts.join(""));
    this.#parts = [];
    this.#size = 0;
    while (bytes.length > 0) bytes = bytes.subarray(await this.file.write(bytes));
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    this.file.close();
  }
}

/** A temporary directory that becomes the output directory on {@linkcode StagedDirectory.commit}. */
export class StagedDirectory {
  private constructor(readonly target: string, readonly temp: string, readonly force: boolean) {}

  /**
   * Checks the output can be written and creates the temporary directory beside it
   * (`.<name>.tmp-<pid>-<time>`). Throws {@linkcode OutputError} when the output exists without
   * `force`, or when its parent directory cannot be written.
   */
  static async create(target: string, options: { force: boolean }): Promise<StagedDirectory> {
    const temp = join(dirname(target), `.${basename(target)}.tmp-${Deno.pid}-${Date.now()}`);
    let taken: boolean;
    try {
      taken = await pathExists(target);
      if (!taken || options.force) await Deno.mkdir(temp, { recursive: true });
    } catch (e) {
      throw new OutputError(`Cannot write output ${target}: ${(e as Error).message.split("\n")[0]}`);
    }
    if (taken && !options.force) {
      throw new OutputError(`Output ${target} already exists (use --force to replace it)`);
    }
    return new StagedDirectory(target, temp, options.force);
  }

  /** Opens a new JSON-lines file inside the temporary directory. */
  async jsonl(name: string): Promise<JsonlWriter> {
    return new JsonlWriter(await Deno.open(join(this.temp, name), { write: true, createNew: true }));
  }

  /** Writes a whole text file inside the temporary directory. */
  async writeText(name: string, text: string): Promise<void> {
    await Deno.writeTextFile(join(this.temp, name), text, { createNew: true });
  }

  /** Moves the finished directory into place (replacing an old output when `force`). */
  async commit(): Promise<void> {
    if (await pathExists(this.target)) {
      if (!this.force) {
        await this.discard();
        throw new OutputError(
          `Output ${this.target} appeared while preprocessing (use --force to replace it)`,
        );
      }
      const old = `${this.temp}.old`;
      await Deno.rename(this.target, old);
      await Deno.rename(this.temp, this.target);
      await Deno.remove(old, { recursive: true });
    } else {
      await Deno.rename(this.temp, this.target);
    }
  }

  /** Deletes the temporary directory (after a failure). */
  async discard(): Promise<void> {
    await Deno.remove(this.temp, { recursive: true }).catch(() => {});
  }
}
