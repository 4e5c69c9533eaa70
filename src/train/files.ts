/**
 * Atomic file writes: write to a temporary sibling, then rename, so a killed process never leaves
 * a half-written file that a later run would trust.
 *
 * @module
 */
import { dirname } from "node:path";

/** Writes `text` to `path` atomically. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

/** Appends one JSON line (a log record); a partial last line is tolerated by `readJsonLines`. */
export async function appendJsonLine(path: string, record: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(record) + "\n", { append: true, create: true });
}
