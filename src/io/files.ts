/**
 * File helpers shared by every writer: atomic writes (temporary sibling + rename, so a killed
 * process never leaves a half-written file that a later run would trust), JSON lines, existence.
 *
 * @example
 * ```ts
 * await writeJsonAtomic("/tmp/run/config.json", { lr: 3e-4 });
 * ```
 *
 * @module
 */
import { dirname } from "node:path";

/** Writes `text` to `path` atomically, creating the parent folder. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

/** Writes `value` as indented JSON to `path` atomically. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeTextAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Appends one JSON line (a log record). */
export async function appendJsonLine(path: string, record: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(record) + "\n", { append: true, create: true });
}

/** True when `path` exists (a symlink counts, even dangling); other errors propagate. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
