/**
 * Counts dropped input by reason, remembering where each reason first happened, and implements
 * `--strict` (stop at the first bad input line).
 *
 * @example
 * ```ts
 * const log = new DropLog(false);
 * log.badLine("reviews.malformed_json", "Video_Games.jsonl", 7, "invalid JSON");
 * log.toJSON(); // { "reviews.malformed_json": { count: 1, first: ["Video_Games.jsonl:7"] } }
 * ```
 *
 * @module
 */
import type { DropCount } from "./dataset.ts";

/** How many places are remembered per reason. */
const FIRST_PLACES = 5;

/** A `--strict` stop: one line naming file:line and the field or problem. */
export class InputError extends Error {
  override name = "InputError";
}

/** Drop counts by reason (`"<source>.<reason>"`, e.g. `meta.price_not_numeric`). */
export class DropLog {
  readonly #drops = new Map<string, DropCount>();

  /** @param strict when true, {@linkcode DropLog.badLine} throws an {@linkcode InputError}. */
  constructor(readonly strict: boolean) {}

  /**
   * Records a malformed or invalid input line. In strict mode, throws instead.
   * @param detail what is wrong, naming the field (used in the strict error).
   */
  badLine(reason: string, file: string, line: number, detail: string): void {
    if (this.strict) throw new InputError(`${file}:${line}: ${detail} (${reason})`);
    this.drop(reason, `${file}:${line}`);
  }

  /** Records a record removed by a rule of the method (never stops, even in strict mode). */
  drop(reason: string, place?: string, count = 1): void {
    if (count === 0) return;
    let entry = this.#drops.get(reason);
    if (!entry) this.#drops.set(reason, entry = { count: 0, first: [] });
    entry.count += count;
    if (place !== undefined && entry.first.length < FIRST_PLACES) entry.first.push(place);
  }

  /** All reasons, sorted by name, as stored in `dataset.json`. */
  toJSON(): Record<string, DropCount> {
    return Object.fromEntries([...this.#drops.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
  }
}
