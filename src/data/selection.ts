/**
 * rrec-spec §A.3 (`gao`): the inclusive time window, the K-core loop and the "not enough items" rule
 * that moves the window start back 3 months at a time.
 *
 * @example
 * ```ts
 * const picked = selectReviews(table, present, itemCount, {
 *   start: monthStart("2022-10"), end: monthStart("2023-10"), k: 0, minItems: 10000,
 * });
 * console.log(picked.items, picked.widenings, new Date(picked.start).toISOString());
 * ```
 *
 * @module
 */
import type { ReviewTable } from "./review_table.ts";

/** rrec-spec §A.3: `JUMP_OFFSET = DateOffset(months=3)`. */
export const WIDEN_MONTHS = 3;

/**
 * Midnight UTC of the first day of a `YYYY-MM` month, in ms (`f"{year}-{month}-01"` of §A.3).
 *
 * @example
 * ```ts
 * monthStart("2022-10"); // Date.UTC(2022, 9, 1)
 * ```
 */
export function monthStart(yearMonth: string): number {
  const m = /^(\d{4})-(\d{1,2})$/.exec(yearMonth);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 12) {
    throw new RangeError(`Month "${yearMonth}" is not YYYY-MM`);
  }
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, 1);
}

/** `time` moved by `months` calendar months (UTC). */
function addMonths(time: number, months: number): number {
  const d = new Date(time);
  d.setUTCMonth(d.getUTCMonth() + months);
  return d.getTime();
}

/** Options of {@linkcode selectReviews}. */
export interface SelectionOptions {
  /** Window start and end, ms, both inclusive. */
  start: number;
  end: number;
  /** K of the K-core loop (0 or 1: no-op). */
  k: number;
  /** The window is widened while fewer distinct items remain (and the year rule allows). */
  minItems: number;
}

/** What {@linkcode selectReviews} kept and how. */
export interface Selection {
  /** 1 for each row that survives window and K-core. */
  alive: Uint8Array;
  /** The window actually used. */
  start: number;
  end: number;
  widenings: number;
  /** K-core passes of the final window, the last one removing nothing (0 when K ≤ 1). */
  kCorePasses: number;
  /** Rows outside the final window, and rows the K-core loop removed from it. */
  outsideWindow: number;
  kCoreRemoved: number;
  /** Distinct items left. */
  items: number;
  /** Set when fewer than `minItems` items remain and the window could not widen (the reference's warning). */
  warning?: string;
}

/** Repeats K-core passes on `alive` until one removes nothing; returns [passes, rows removed]. */
function kCore(table: ReviewTable, alive: Uint8Array, itemCount: number, k: number): [number, number] {
  if (k <= 1) return [0, 0];
  let passes = 0;
  let removed = 0;
  for (;;) {
    passes++;
    const perUser = new Int32Array(table.users.length);
    const perItem = new Int32Array(itemCount);
    for (let r = 0; r < table.size; r++) {
      if (alive[r]) perUser[table.user[r]]++, perItem[table.item[r]]++;
    }
    let removedNow = 0;
    for (let r = 0; r < table.size; r++) {
      if (alive[r] && (perUser[table.user[r]] < k || perItem[table.item[r]] < k)) alive[r] = 0, removedNow++;
    }
    removed += removedNow;
    if (removedNow === 0) return [passes, removed];
  }
}

function countItems(table: ReviewTable, alive: Uint8Array, itemCount: number): number {
  const seen = new Uint8Array(itemCount);
  let distinct = 0;
  for (let r = 0; r < table.size; r++) {
    if (alive[r] && !seen[table.item[r]]) seen[table.item[r]] = 1, distinct++;
  }
  return distinct;
}

/**
 * Applies §A.3 to the rows with `present[r] = 1` (reviews of kept items, duplicates removed):
 * window → K-core → if fewer than `minItems` distinct items and `year(start) > year(min time)`, start
 * moves back {@linkcode WIDEN_MONTHS} months and everything restarts from the full table.
 */
export function selectReviews(
  table: ReviewTable,
  present: Uint8Array,
  itemCount: number,
  options: SelectionOptions,
): Selection {
  let minTime = Infinity;
  for (let r = 0; r < table.size; r++) if (present[r] && table.time[r] < minTime) minTime = table.time[r];
  const minYear = Number.isFinite(minTime) ? new Date(minTime).getUTCFullYear() : Infinity;
  let start = options.start;
  const end = options.end;
  for (let widenings = 0;; widenings++) {
    const alive = new Uint8Array(table.size);
    let inWindow = 0;
    let total = 0;
    for (let r = 0; r < table.size; r++) {
      if (!present[r]) continue;
      total++;
      const t = table.time[r];
      if (t >= start && t <= end) alive[r] = 1, inWindow++;
    }
    const [kCorePasses, kCoreRemoved] = kCore(table, alive, itemCount, options.k);
    const items = countItems(table, alive, itemCount);
    if (items < options.minItems && new Date(start).getUTCFullYear() > minYear) {
      start = addMonths(start, -WIDEN_MONTHS);
      continue;
    }
    const selection: Selection = {
      alive,
      start,
      end,
      widenings,
      kCorePasses,
      outsideWindow: total - inWindow,
      kCoreRemoved,
      items,
    };
    if (items < options.minItems) {
      selection.warning =
        `only ${items} items (fewer than --min-items ${options.minItems}); the window cannot widen ` +
        `past the year of the oldest review (${minYear})`;
    }
    return selection;
  }
}
