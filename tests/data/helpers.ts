/** Builders for small hand-made Amazon inputs and a runner that preprocesses them into /tmp. */
import { join } from "node:path";
import { type Dataset, readDataset, type SampleRecord } from "../../src/data/dataset.ts";
import { preprocess, type PreprocessOptions, type PreprocessResult } from "../../src/data/preprocess.ts";

/** A 2023 review line; `time` is an ISO date-time (UTC) or ms. */
export function review(user: string, asin: string, time: string | number, rating = 5): string {
  const timestamp = typeof time === "number" ? time : Date.parse(time.endsWith("Z") ? time : `${time}Z`);
  return JSON.stringify({ rating, title: "t", text: "x", parent_asin: asin, user_id: user, timestamp });
}

/** A 2023 meta line with a valid title and price unless overridden. */
export function meta(asin: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({
    main_category: "Music",
    title: `Item ${asin}`,
    price: 9.99,
    parent_asin: asin,
    ...fields,
  });
}

/** A fresh temporary directory under /tmp. */
export function tempDir(): Promise<string> {
  return Deno.makeTempDir({ dir: "/tmp", prefix: "r2ec-data-test-" });
}

/** Writes lines (newline-terminated) to `dir/name` and returns the path. */
export async function writeLines(dir: string, name: string, lines: string[]): Promise<string> {
  const path = join(dir, name);
  await Deno.writeTextFile(path, lines.map((l) => l + "\n").join(""));
  return path;
}

/** Options that keep every hand-made review: wide window, no widening. */
export const WIDE = { start: "1996-01", end: "2030-01", minItems: 0 };

/** Writes the inputs, preprocesses them into `dir/out`, and reads the dataset back (the directory is removed on failure). */
export async function run(
  reviews: string[],
  metas: string[],
  options: Partial<PreprocessOptions> = {},
): Promise<{ result: PreprocessResult; ds: Dataset; dir: string }> {
  const dir = await tempDir();
  try {
    const result = await preprocess({
      reviews: await writeLines(dir, "reviews.jsonl", reviews),
      meta: await writeLines(dir, "meta.jsonl", metas),
      category: "Test",
      out: join(dir, "out"),
      ...options,
    });
    return { result, ds: await readDataset(join(dir, "out")), dir };
  } catch (e) {
    await cleanup(dir);
    throw e;
  }
}

/** Every sample of a dataset in interaction order. */
export function allSamples(ds: Dataset): SampleRecord[] {
  return [...ds.train, ...ds.valid, ...ds.test];
}

/** Removes a temporary directory. */
export function cleanup(dir: string): Promise<void> {
  return Deno.remove(dir, { recursive: true });
}
