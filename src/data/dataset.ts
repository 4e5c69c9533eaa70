/**
 * The on-disk dataset format written by `r2ec preprocess` (DESIGN §5) and a reader for it.
 *
 * A dataset directory holds:
 * - `items.jsonl`: one {@linkcode ItemRecord} per line, real items only, in id order 1..N. The padding
 *   item (id {@linkcode PAD_ITEM_ID} = 0, rrec-spec §A.4) is implicit: it is not stored, and
 *   `dataset.json` says so in `pad_item_id`. Row r (0-based) holds item id r+1, as in the reference's
 *   `item_info` (rrec-spec §H.19) minus its trailing pad row.
 * - `train.jsonl`, `valid.jsonl`, `test.jsonl`: one {@linkcode SampleRecord} per line, with exactly the
 *   columns of rrec-spec §A.5, in interaction order.
 * - `dataset.json`: the {@linkcode DatasetInfo} (sources, options, window used, counts, drops, deviations).
 *
 * @example
 * ```ts
 * const ds = await readDataset("data/Musical_Instruments_0_2022-10-2023-10");
 * const target = ds.test[0];
 * const item = itemById(ds.items, target.item_id); // ItemRecord with that id
 * ```
 *
 * @module
 */
import { join } from "node:path";

/** Version of the directory layout below; bumped on any incompatible change. */
export const DATASET_FORMAT_VERSION = 1;

/** The id of the padding item. It has no row in `items.jsonl`. */
export const PAD_ITEM_ID = 0;

/** The three sample splits, in chronological order. */
export const SPLITS = ["train", "valid", "test"] as const;
/** One of {@linkcode SPLITS}. */
export type SplitName = typeof SPLITS[number];

/**
 * The fields of an item apart from its id (rrec-spec §A.2 and §A.5 `item_info`).
 *
 * Besides the named fields, every other top-level string field of the meta line is kept, cleaned with
 * `clean_text` (e.g. `main_category`, `store`, `brand`), and string lists such as `features` or
 * `categories` are kept uncleaned, as the reference does.
 */
export interface ItemFields {
  /** The 2023 `parent_asin` (the 2018 `asin`). */
  parent_asin: string;
  /** Cleaned title (rrec-spec §A.2 rules 3 and clean_text). */
  title: string;
  /** The meta line's `average_rating`, 0 when absent. */
  average_rating: number;
  /** The meta line's `rating_number`, 0 when absent. */
  rating_number: number;
  /** Description paragraphs in file order (a string becomes `[s]`, anything else `[]`). */
  description: string[];
  /** The numeric price that let the item pass the price filter. */
  price: number;
  /** Other kept fields: cleaned strings, string lists, `details` as a JSON string. */
  [field: string]: string | number | string[];
}

/** One item of the catalogue (`items.jsonl` row). */
export interface ItemRecord extends ItemFields {
  /** 1..N in meta-file order. */
  item_id: number;
}

/** One training / evaluation sample: up to `window` past interactions and the next one (rrec-spec §A.5). */
export interface SampleRecord {
  /** Reviewer id. */
  user_id: string;
  /** History parent_asins, oldest first. */
  item_asins: string[];
  /** Target parent_asin. */
  item_asin: string;
  /** History item ids (1..N), oldest first. */
  history_item_id: number[];
  /** Target item id (1..N). */
  item_id: number;
  /** Cleaned history titles, oldest first. */
  history_item_title: string[];
  /** Cleaned target title. */
  item_title: string;
  /** History ratings, e.g. 5.0. */
  history_rating: number[];
  /** Target rating. */
  rating: number;
  /** History timestamps in Unix milliseconds. */
  history_timestamp: number[];
  /** Target timestamp in Unix milliseconds. */
  timestamp: number;
  /** Global index 0..S-1 after the stable sort by target timestamp. */
  interaction_id: number;
}

/** Where a source file came from and what was read from it. */
export interface SourceInfo {
  /** Path as given on the command line. */
  path: string;
  /** Hex SHA-256 of the file's bytes as stored (compressed if it was). */
  sha256: string;
  /** Whether the bytes were gzip (detected from the magic number). */
  gzip: boolean;
  /** Format detected from the content. */
  format: string;
  /** Lines read, including blank and bad ones (a CSV header counts). */
  lines: number;
  /** Lines that parsed into a record. */
  records: number;
}

/** A count of dropped lines or records for one reason, with where it first happened. */
export interface DropCount {
  count: number;
  /** Up to a few `file:line` places of the first occurrences (empty for whole-table filters). */
  first: string[];
}

/** A documented difference from the reference code. */
export interface Deviation {
  what: string;
  why: string;
}

/** Contents of `dataset.json`. */
export interface DatasetInfo {
  format_version: number;
  category: string;
  /** Always {@linkcode PAD_ITEM_ID}; the pad item has no row in `items.jsonl`. */
  pad_item_id: number;
  sources: { reviews: SourceInfo; meta: SourceInfo };
  options: {
    k: number;
    start: string;
    end: string;
    window: number;
    min_items: number;
    strict: boolean;
  };
  /** The time window actually used (after widening), ISO dates, both ends inclusive. */
  window_used: { start: string; end: string; widenings: number };
  counts: {
    users: number;
    items: number;
    reviews: number;
    samples: number;
    train: number;
    valid: number;
    test: number;
    k_core_passes: number;
  };
  drops: Record<string, DropCount>;
  deviations: Deviation[];
}

/** A dataset loaded into memory. */
export interface Dataset {
  info: DatasetInfo;
  /** `items[i].item_id === i + 1`; look items up with {@linkcode itemById}. */
  items: ItemRecord[];
  train: SampleRecord[];
  valid: SampleRecord[];
  test: SampleRecord[];
}

/**
 * Returns the item with `id` (1..N) from an id-ordered item list.
 *
 * @example
 * ```ts
 * const first = itemById(ds.items, 1); // ds.items[0]
 * ```
 */
export function itemById(items: ItemRecord[], id: number): ItemRecord {
  const item = items[id - 1];
  if (!item || item.item_id !== id) {
    throw new RangeError(`Item id ${id} is not in 1..${items.length} (id ${PAD_ITEM_ID} is the pad item)`);
  }
  return item;
}

async function readJsonLines<T>(path: string): Promise<T[]> {
  const text = await Deno.readTextFile(path);
  const rows: T[] = [];
  let lineNo = 0;
  for (const line of text.split("\n")) {
    lineNo++;
    if (line.trim() === "") continue;
    try {
      rows.push(JSON.parse(line) as T);
    } catch {
      throw new SyntaxError(`${path}:${lineNo}: invalid JSON in dataset file`);
    }
  }
  return rows;
}

/**
 * Reads `items.jsonl`, checking that row r holds item id r+1.
 *
 * @example
 * ```ts
 * const items = await readItems("data/ds");
 * ```
 */
export async function readItems(dir: string): Promise<ItemRecord[]> {
  const path = join(dir, "items.jsonl");
  const items = await readJsonLines<ItemRecord>(path);
  items.forEach((item, r) => {
    if (item.item_id !== r + 1) {
      throw new Error(`${path}:${r + 1}: item_id ${item.item_id}, expected ${r + 1}`);
    }
  });
  return items;
}

/**
 * Reads one split file (`train.jsonl`, `valid.jsonl` or `test.jsonl`).
 *
 * @example
 * ```ts
 * const test = await readSplit("data/ds", "test");
 * ```
 */
export function readSplit(dir: string, split: SplitName): Promise<SampleRecord[]> {
  return readJsonLines<SampleRecord>(join(dir, `${split}.jsonl`));
}

/**
 * Reads `dataset.json`, rejecting an unknown format version.
 *
 * @example
 * ```ts
 * const info = await readDatasetInfo("data/ds");
 * console.log(info.counts.items);
 * ```
 */
export async function readDatasetInfo(dir: string): Promise<DatasetInfo> {
  const path = join(dir, "dataset.json");
  const info = JSON.parse(await Deno.readTextFile(path)) as DatasetInfo;
  if (info.format_version !== DATASET_FORMAT_VERSION) {
    throw new Error(`${path}: format_version ${info.format_version}, expected ${DATASET_FORMAT_VERSION}`);
  }
  return info;
}

/**
 * Reads a whole dataset directory written by `r2ec preprocess`.
 *
 * @example
 * ```ts
 * const ds = await readDataset("data/Musical_Instruments_0_2022-10-2023-10");
 * console.log(ds.info.counts.samples, ds.items.length, ds.train.length);
 * ```
 */
export async function readDataset(dir: string): Promise<Dataset> {
  const info = await readDatasetInfo(dir);
  const [items, train, valid, test] = await Promise.all([
    readItems(dir),
    readSplit(dir, "train"),
    readSplit(dir, "valid"),
    readSplit(dir, "test"),
  ]);
  return { info, items, train, valid, test };
}
