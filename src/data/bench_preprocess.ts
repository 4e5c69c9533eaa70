/**
 * Preprocessing benchmark: generates a deterministic Amazon-2023-format review file (default 1M lines)
 * and meta file in /tmp, runs {@linkcode preprocess} on them with the default options, and reports
 * review lines per second and the peak resident memory seen (sampled with `Deno.memoryUsage()`).
 *
 * The generated reviews span 2015-01 to 2023-12 uniformly, so about 1/9 of them fall in the default
 * window, like a real category file whose history reaches back years; 1 item in 5 has no price.
 * Generated files are reused when present (their names carry the line count and a format version).
 *
 * @example
 * ```ts
 * const result = await runPreprocessBench({ lines: 1_000_000 });
 * console.log(formatBenchReport(result)); // "... 250000 lines/s ..."
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { preprocess } from "./preprocess.ts";
import { SeededRng } from "./rng.ts";

/** Bump when the generated content changes, so cached files are not reused. */
const GENERATOR_VERSION = 1;

/** Options of {@linkcode runPreprocessBench}. */
export interface BenchOptions {
  /** Review lines to generate (default 1,000,000). */
  lines?: number;
  /** Directory for the generated inputs and the output (default /tmp). */
  dir?: string;
}

/** One benchmark measurement (also the JSON line `r2ec bench --json` can print). */
export interface BenchResult {
  name: string;
  review_lines: number;
  meta_lines: number;
  review_bytes: number;
  seconds: number;
  lines_per_s: number;
  mb_per_s: number;
  peak_rss_bytes: number;
  samples: number;
  items: number;
}

const WORDS = [
  "great",
  "sound",
  "cable",
  "strings",
  "quality",
  "price",
  "works",
  "fine",
  "love",
  "broke",
  "fast",
];

async function writeLines(path: string, count: number, line: (i: number) => string): Promise<void> {
  const temp = `${path}.tmp-${Deno.pid}`;
  using file = await Deno.open(temp, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    parts.push(line(i), "\n");
    if (parts.length >= 20_000 || i === count - 1) {
      let bytes = encoder.encode(parts.join(""));
      parts.length = 0;
      while (bytes.length > 0) bytes = bytes.subarray(await file.write(bytes));
    }
  }
  await Deno.rename(temp, path);
}

async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isFile, () => false);
}

/**
 * Writes (or reuses) the generated review and meta files for `lines` reviews; returns their paths.
 *
 * @example
 * ```ts
 * const { reviews, meta } = await generateBenchInputs("/tmp", 1000);
 * ```
 */
export async function generateBenchInputs(dir: string, lines: number) {
  const items = Math.max(10, Math.round(lines / 50));
  const users = Math.max(2, Math.round(lines / 8));
  const tag = `v${GENERATOR_VERSION}-${lines}`;
  const reviews = join(dir, `r2ec-bench-reviews-${tag}.jsonl`);
  const meta = join(dir, `r2ec-bench-meta-${tag}.jsonl`);
  const asin = (i: number) => `B${String(i).padStart(9, "0")}`;
  if (!await isFile(meta)) {
    const rng = new SeededRng(7);
    await writeLines(meta, items, (i) =>
      JSON.stringify({
        main_category: "Musical Instruments",
        title: `${WORDS[i % WORDS.length]} item ${i} &amp; case`,
        average_rating: Math.round(rng.next() * 40 + 10) / 10,
        rating_number: rng.int(500),
        price: rng.next() < 0.2 ? null : Math.round(rng.next() * 10000) / 100,
        description: [`Description of item ${i}.`],
        parent_asin: asin(i),
      }));
  }
  if (!await isFile(reviews)) {
    const rng = new SeededRng(11);
    const from = Date.UTC(2015, 0, 1);
    const span = Date.UTC(2024, 0, 1) - from;
    await writeLines(reviews, lines, () => {
      const word = rng.pick(WORDS);
      return JSON.stringify({
        rating: rng.int(5) + 1,
        title: `${word} ${word}`,
        text: `This is ${word}. The ${rng.pick(WORDS)} is as described, would buy again.`,
        parent_asin: asin(Math.floor(rng.next() ** 2 * items)),
        user_id: `U${rng.int(users).toString(36).toUpperCase().padStart(8, "0")}`,
        timestamp: from + rng.int(span),
      });
    });
  }
  return { reviews, meta, items };
}

/**
 * Runs the benchmark: inputs are generated first (not timed), then one timed {@linkcode preprocess}
 * with the default options and `--min-items 0` (no widening) into a fresh output directory.
 */
export async function runPreprocessBench(options: BenchOptions = {}): Promise<BenchResult> {
  const lines = options.lines ?? 1_000_000;
  const dir = options.dir ?? "/tmp";
  const { reviews, meta, items: metaLines } = await generateBenchInputs(dir, lines);
  const out = join(dir, `r2ec-bench-out-${Deno.pid}`);
  let peak = Deno.memoryUsage().rss;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 25);
  try {
    const began = performance.now();
    const result = await preprocess({ reviews, meta, category: "Bench", out, minItems: 0, force: true });
    const seconds = (performance.now() - began) / 1000;
    peak = Math.max(peak, Deno.memoryUsage().rss);
    const bytes = (await Deno.stat(reviews)).size;
    return {
      name: "preprocess",
      review_lines: lines,
      meta_lines: metaLines,
      review_bytes: bytes,
      seconds,
      lines_per_s: lines / seconds,
      mb_per_s: bytes / 1e6 / seconds,
      peak_rss_bytes: peak,
      samples: result.info.counts.samples,
      items: result.info.counts.items,
    };
  } finally {
    clearInterval(sampler);
    await Deno.remove(out, { recursive: true }).catch(() => {});
  }
}

/**
 * One-paragraph summary of a {@linkcode BenchResult}.
 *
 * @example
 * ```ts
 * console.log(formatBenchReport(await runPreprocessBench({ lines: 100_000 })));
 * ```
 */
export function formatBenchReport(r: BenchResult): string {
  return `preprocess: ${r.review_lines} review lines (${
    (r.review_bytes / 1e6).toFixed(0)
  } MB) + ${r.meta_lines} meta ` +
    `lines in ${r.seconds.toFixed(2)} s = ${Math.round(r.lines_per_s)} lines/s (${
      r.mb_per_s.toFixed(1)
    } MB/s), ` +
    `peak RSS ${(r.peak_rss_bytes / 2 ** 20).toFixed(0)} MiB; ${r.items} items, ${r.samples} samples`;
}
