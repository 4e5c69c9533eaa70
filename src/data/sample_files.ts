/**
 * The files of the bundled synthetic sample `data/sample/` and how they are (re)written.
 *
 * @example
 * ```ts
 * await writeSampleFiles("data/sample"); // byte-identical to the committed files
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { buildCorpus } from "./sample_corpus.ts";
import {
  generateWorld,
  metaJsonl,
  reviewsJsonl,
  SAMPLE_CATEGORY,
  SAMPLE_SEED,
  SAMPLE_USERS,
} from "./synthetic.ts";

/** Where the committed sample lives, relative to the repository root. */
export const SAMPLE_DIR = "data/sample";
/** Review file name (Amazon 2023 naming). */
export const SAMPLE_REVIEWS_FILE = `${SAMPLE_CATEGORY}.jsonl`;
/** Metadata file name (Amazon 2023 naming). */
export const SAMPLE_META_FILE = `meta_${SAMPLE_CATEGORY}.jsonl`;
/** Text corpus for the tiny model's tokenizer and pretraining. */
export const SAMPLE_CORPUS_FILE = "corpus.txt";

/**
 * The sample's file contents by file name, for `seed` and `users` (defaults: the committed sample).
 *
 * @example
 * ```ts
 * const files = sampleFiles();
 * files[SAMPLE_REVIEWS_FILE].split("\n")[0]; // {"rating": 5.0, "title": …}
 * ```
 */
export function sampleFiles(seed = SAMPLE_SEED, users = SAMPLE_USERS): Record<string, string> {
  const world = generateWorld({ seed, users });
  return {
    [SAMPLE_REVIEWS_FILE]: reviewsJsonl(world, seed),
    [SAMPLE_META_FILE]: metaJsonl(world),
    [SAMPLE_CORPUS_FILE]: buildCorpus(world),
  };
}

/**
 * Writes the sample files into `dir` (created if missing). Each file is written to a temporary name
 * and renamed, so a reader never sees a half-written file. Returns the paths written.
 *
 * @example
 * ```ts
 * const paths = await writeSampleFiles("/tmp/sample", 7, 200);
 * ```
 */
export async function writeSampleFiles(
  dir: string,
  seed = SAMPLE_SEED,
  users = SAMPLE_USERS,
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, text] of Object.entries(sampleFiles(seed, users))) {
    const path = join(dir, name);
    const temporary = `${path}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(temporary, text);
    await Deno.rename(temporary, path);
    written.push(path);
  }
  return written;
}

if (import.meta.main) {
  const dir = Deno.args[0] ?? SAMPLE_DIR;
  for (const path of await writeSampleFiles(dir)) console.log(`wrote ${path}`);
}
