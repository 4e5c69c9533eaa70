/**
 * Shared pieces of the text tests: the ../shared fixtures (skipped with a message when absent) and
 * scratch directories.
 *
 * @module
 */
import { existsSync } from "node:fs";

/** A folder under ../shared (e.g. "fixtures/stories260k") and whether tests that need it must be skipped. */
export function sharedDir(path: string): { dir: string; absent: boolean } {
  const dir = `../shared/${path}`;
  const absent = !existsSync(dir);
  if (absent) console.warn(`Skipping tests that need ${dir}: it is absent`);
  return { dir, absent };
}

/** Runs `body` with a fresh temporary directory, removed afterwards. */
export async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "r2ec-text-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Parses the JSON file at `path`. */
export async function readJson(path: string) {
  return JSON.parse(await Deno.readTextFile(path));
}

/** Runs `load` on the first call only and hands every caller the same promise (fixtures load once per file). */
export function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => loaded ??= load();
}
