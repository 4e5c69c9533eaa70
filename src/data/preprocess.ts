/**
 * `r2ec preprocess`: raw Amazon reviews + meta → a dataset directory (DESIGN §5), exactly as
 * rrec-spec §A describes the reference `preprocess.py`, with the deviations listed in
 * {@linkcode DEVIATIONS} (also written to `dataset.json`).
 *
 * Order of work: meta is streamed first (item rules, §A.2), then reviews (only reviews of kept items
 * are held), duplicates are dropped, then window / K-core / widening (§A.3), ids and samples (§A.4),
 * and the directory is written atomically.
 *
 * @example
 * ```ts
 * const result = await preprocess({
 *   reviews: "Musical_Instruments.csv.gz", meta: "meta_Musical_Instruments.jsonl.gz",
 *   category: "Musical_Instruments", out: "data/Musical_Instruments_0_2022-10-2023-10",
 * });
 * console.log(formatReport(result.info));
 * ```
 *
 * @module
 */
import { basename } from "node:path";
import type { MetaFormat } from "./amazon_formats.ts";
import { DATASET_FORMAT_VERSION, type DatasetInfo, type Deviation, PAD_ITEM_ID, SPLITS } from "./dataset.ts";
import { StagedDirectory } from "./dataset_writer.ts";
import { DropLog } from "./drop_log.ts";
import { type CleanItem, cleanItem } from "./items.ts";
import { readRecords } from "./record_reader.ts";
import { ReviewTable, type UserSequences } from "./review_table.ts";
import {
  assignItemIds,
  planSamples,
  type SampleContext,
  type SamplePlan,
  sampleRecord,
  splitBounds,
} from "./samples.ts";
import { monthStart, selectReviews } from "./selection.ts";

/** Options of {@linkcode preprocess}; defaults are the reference's (rrec-spec §A.6). */
export interface PreprocessOptions {
  reviews: string;
  meta: string;
  category: string;
  out: string;
  /** K-core K (default 0: no K-core filter). */
  k?: number;
  /** Window start and end months, `YYYY-MM` (defaults 2022-10 and 2023-10). */
  start?: string;
  end?: string;
  /** History length (default 20). */
  window?: number;
  /** Widen the window while fewer items remain (default 10000). */
  minItems?: number;
  /** Stop at the first bad input line. */
  strict?: boolean;
  /** Replace an existing output directory. */
  force?: boolean;
  /** Progress and warnings (default: none). */
  log?: (message: string) => void;
}

/** The reference's defaults (rrec-spec §A.6). */
export const PREPROCESS_DEFAULTS = { k: 0, start: "2022-10", end: "2023-10", window: 20, minItems: 10000 };

/**
 * The reference's output directory name (rrec-spec §A.3 item 4), `data/{category}_{K}_{y}-{m}-{y}-{m}`,
 * built from the requested (not the widened) window with months unpadded, as Python's f-string prints
 * the integers.
 *
 * @example
 * ```ts
 * defaultOutDir("Musical_Instruments", 0, "2022-10", "2023-10"); // "data/Musical_Instruments_0_2022-10-2023-10"
 * defaultOutDir("Video_Games", 0, "2022-01", "2023-01"); // "data/Video_Games_0_2022-1-2023-1"
 * ```
 */
export function defaultOutDir(category: string, k: number, start: string, end: string): string {
  const unpadded = (yearMonth: string) => yearMonth.replace(/-0*(\d+)$/, "-$1");
  return `data/${category}_${k}_${unpadded(start)}-${unpadded(end)}`;
}

/** What {@linkcode preprocess} did. */
export interface PreprocessResult {
  info: DatasetInfo;
  /** Warning of the "not enough items" rule, when it fired. */
  warning?: string;
  seconds: number;
}

/** Differences from the reference code, with reasons; written to `dataset.json`. */
export const DEVIATIONS: readonly Deviation[] = [
  {
    what: "Duplicate reviews (same user, item and timestamp) are dropped, keeping the first in file order",
    why: "A repeated review would put the same item in a history and as its own target at zero time distance",
  },
  {
    what: "description keeps file order with repeated paragraphs removed (first kept)",
    why:
      "The reference's list(set(x)) order depends on Python's per-process string hashing, so prompts were not reproducible",
  },
  {
    what: "The pad item (id 0) has no row in items.jsonl; rows are items 1..N (row r holds id r+1)",
    why:
      "The reference appends a pad row last; storing only real items keeps ids equal to row + 1 without a special row",
  },
  {
    what:
      "Malformed lines, lines with missing or wrongly typed fields, and non-string titles are skipped and counted",
    why: "The reference would stop with an exception; --strict restores stopping at the first one",
  },
  {
    what: "A parent_asin repeated in the meta file keeps its first kept line",
    why: "Repeated rows would break 'row r holds id r+1' in the reference's item_info",
  },
  {
    what:
      "Amazon 2018 input: asin is used as parent_asin, unixReviewTime seconds × 1000 as ms, price text has $ and , removed before float()",
    why:
      "The reference reads only the 2023 format; this maps 2018 fields onto it (a price range or empty price stays non-numeric)",
  },
  {
    what: "A price of nan or inf counts as non-numeric",
    why: "Python's float() accepts them, but they are not prices and JSON cannot store them",
  },
  {
    what: "details (an object) is stored as compact JSON text",
    why: "The reference uses Python json.dumps spacing; the field is never shown in prompts",
  },
];

/**
 * Streams the meta file: items that pass §A.2 in meta order, an asin → index map, and the asins that
 * the item rules dropped (so review drops can say why).
 */
async function loadItems(path: string, log: DropLog) {
  const items: CleanItem[] = [];
  const indexByAsin = new Map<string, number>();
  const droppedAsins = new Set<string>();
  const source = await readRecords(path, "meta", log, (meta, line, format) => {
    const item = cleanItem(meta, format as MetaFormat);
    if ("drop" in item) {
      droppedAsins.add(meta.parent_asin);
      return log.drop(`meta.${item.drop}`, `${path}:${line}`);
    }
    if (indexByAsin.has(item.parent_asin)) {
      return log.badLine("meta.duplicate_item", path, line, `parent_asin "${item.parent_asin}" repeated`);
    }
    indexByAsin.set(item.parent_asin, items.length);
    items.push(item);
  });
  return { items, indexByAsin, droppedAsins, source };
}

/** Streams the reviews file, keeping only reviews of kept items. */
async function loadReviews(
  path: string,
  catalogue: { indexByAsin: Map<string, number>; droppedAsins: Set<string> },
  log: DropLog,
) {
  const table = new ReviewTable();
  const source = await readRecords(path, "reviews", log, (review, line) => {
    const item = catalogue.indexByAsin.get(review.parent_asin);
    if (item === undefined) {
      const reason = catalogue.droppedAsins.has(review.parent_asin) ? "item_dropped" : "item_not_in_meta";
      return log.drop(`reviews.${reason}`, `${path}:${line}`);
    }
    table.add(review.user_id, item, review.rating, review.timestamp, line);
  });
  return { table, source };
}

/** Marks duplicate reviews as absent; in strict mode the first one stops the run. */
function dropDuplicates(
  table: ReviewTable,
  path: string,
  log: DropLog,
  sequences: UserSequences,
): Uint8Array {
  const present = new Uint8Array(table.size).fill(1);
  for (const { row, original } of table.duplicates(sequences)) {
    const detail = `same user_id, parent_asin and timestamp as line ${table.line[original]}`;
    log.badLine("reviews.duplicate_review", path, table.line[row], detail);
    present[row] = 0;
  }
  return present;
}

/** Writes `items.jsonl` (items with an id, in id order) and the three split files. */
async function writeRecords(
  staged: StagedDirectory,
  table: ReviewTable,
  plan: SamplePlan,
  context: SampleContext,
) {
  const itemsOut = await staged.jsonl("items.jsonl");
  for (let i = 0; i < context.items.length; i++) {
    if (context.idOf[i]) await itemsOut.write({ item_id: context.idOf[i], ...context.items[i] });
  }
  await itemsOut.close();
  const samples = plan.order.length;
  const bounds = [0, ...splitBounds(samples), samples];
  for (let s = 0; s < SPLITS.length; s++) {
    const out = await staged.jsonl(`${SPLITS[s]}.jsonl`);
    for (let id = bounds[s]; id < bounds[s + 1]; id++) {
      await out.write(sampleRecord(table, plan, plan.order[id], id, context));
    }
    await out.close();
  }
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * Runs the whole preprocessing and writes `options.out` (see the module doc). Throws a one-line error
 * for a missing input, an existing or unwritable output, an empty or unknown-format file, and (with
 * `strict`) the first bad line.
 */
export async function preprocess(options: PreprocessOptions): Promise<PreprocessResult> {
  const began = performance.now();
  const o = { ...PREPROCESS_DEFAULTS, strict: false, force: false, ...options };
  const say = options.log ?? (() => {});
  const start = monthStart(o.start);
  const end = monthStart(o.end);
  for (const [flag, path] of [["reviews", o.reviews], ["meta", o.meta]]) {
    try {
      if (!(await Deno.stat(path)).isFile) throw new Error(`--${flag} ${path} is not a file`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new Error(`--${flag} file not found: ${path}`);
      throw e;
    }
  }
  const staged = await StagedDirectory.create(o.out, { force: o.force });
  try {
    const log = new DropLog(o.strict);
    say(`reading ${o.meta}`);
    const catalogue = await loadItems(o.meta, log);
    const items = catalogue.items;
    say(`reading ${o.reviews}`);
    const { table, source: reviewSource } = await loadReviews(o.reviews, catalogue, log);
    const sequences = table.chronological();
    const present = dropDuplicates(table, o.reviews, log, sequences);
    const picked = selectReviews(table, present, items.length, { start, end, k: o.k, minItems: o.minItems });
    if (picked.warning) say(`warning: ${picked.warning}`);
    log.drop("reviews.outside_window", undefined, picked.outsideWindow);
    log.drop("reviews.k_core", undefined, picked.kCoreRemoved);
    const { idOf, count: itemCount } = assignItemIds(table, picked.alive, items.length);
    log.drop("meta.item_without_selected_reviews", undefined, items.length - itemCount);
    const plan = planSamples(table, sequences, picked.alive);
    const samples = plan.order.length;
    const [a, b] = splitBounds(samples);

    await writeRecords(staged, table, plan, { items, idOf, window: o.window });
    let reviews = 0;
    for (const alive of picked.alive) reviews += alive;
    const info: DatasetInfo = {
      format_version: DATASET_FORMAT_VERSION,
      category: o.category,
      pad_item_id: PAD_ITEM_ID,
      sources: { reviews: reviewSource, meta: catalogue.source },
      options: {
        k: o.k,
        start: o.start,
        end: o.end,
        window: o.window,
        min_items: o.minItems,
        strict: o.strict,
      },
      window_used: { start: isoDate(picked.start), end: isoDate(picked.end), widenings: picked.widenings },
      counts: {
        users: plan.users,
        items: itemCount,
        reviews,
        samples,
        train: a,
        valid: b - a,
        test: samples - b,
        k_core_passes: picked.kCorePasses,
      },
      drops: log.toJSON(),
      deviations: [...DEVIATIONS],
    };
    await staged.writeText("dataset.json", JSON.stringify(info, null, 2) + "\n");
    await staged.commit();
    return { info, warning: picked.warning, seconds: (performance.now() - began) / 1000 };
  } catch (e) {
    await staged.discard();
    throw e;
  }
}

/**
 * A human-readable summary of a dataset: window, counts, and drops by reason with first places.
 *
 * @example
 * ```ts
 * console.log(formatReport(info));
 * ```
 */
export function formatReport(info: DatasetInfo): string {
  const c = info.counts;
  const lines = [
    `category ${info.category}: ${c.users} users, ${c.items} items, ${c.reviews} reviews, ${c.samples} samples`,
    `split: train ${c.train}, valid ${c.valid}, test ${c.test}`,
    `window used: ${info.window_used.start} .. ${info.window_used.end} (${info.window_used.widenings} widenings)` +
    (info.options.k > 1 ? `, K-core passes ${c.k_core_passes}` : ""),
    `sources: reviews ${info.sources.reviews.format} (${info.sources.reviews.lines} lines), ` +
    `meta ${info.sources.meta.format} (${info.sources.meta.lines} lines)`,
  ];
  const drops = Object.entries(info.drops);
  if (drops.length > 0) lines.push("dropped:");
  for (const [reason, d] of drops) {
    const places = d.first.map((place) => basename(place));
    lines.push(`  ${reason}: ${d.count}${places.length ? ` (first at ${places.join(", ")})` : ""}`);
  }
  return lines.join("\n");
}
