/**
 * The reviews kept in memory while preprocessing, stored by column (memory grows with the reviews of
 * kept items, not with the file), with each user's reviews in chronological order and duplicate
 * reviews (same user, item and timestamp) found.
 *
 * @example
 * ```ts
 * const table = new ReviewTable();
 * table.add("U1", 0, 5.0, 1000, 1);
 * table.add("U1", 1, 4.0, 500, 2);
 * const byUser = table.chronological();
 * // byUser.order slice of user 0 = [1, 0]: the older review first
 * ```
 *
 * @module
 */

/** Each user's reviews (row indices), sorted by timestamp with ties in file order. */
export interface UserSequences {
  /** Reviews of user u are `order[start[u]] .. order[start[u + 1] - 1]`. */
  start: Int32Array;
  order: Int32Array;
}

/** Review rows in file order. */
export class ReviewTable {
  /** User id strings, by user index (first appearance in the file). */
  readonly users: string[] = [];
  readonly #userIndex = new Map<string, number>();
  /** Per row: user index, item index (into the cleaned meta list), rating, ms timestamp, file line. */
  readonly user: number[] = [];
  readonly item: number[] = [];
  readonly rating: number[] = [];
  readonly time: number[] = [];
  readonly line: number[] = [];

  /** Number of rows. */
  get size(): number {
    return this.user.length;
  }

  /** Appends one review. */
  add(userId: string, item: number, rating: number, time: number, line: number): void {
    let u = this.#userIndex.get(userId);
    if (u === undefined) {
      u = this.users.length;
      this.users.push(userId);
      this.#userIndex.set(userId, u);
    }
    this.user.push(u);
    this.item.push(item);
    this.rating.push(rating);
    this.time.push(time);
    this.line.push(line);
  }

  /**
   * Groups rows by user (counting sort) and sorts each user's rows by timestamp, ties in file order:
   * the stable sort of rrec-spec §A.4.
   */
  chronological(): UserSequences {
    const nUsers = this.users.length;
    const start = new Int32Array(nUsers + 1);
    for (const u of this.user) start[u + 1]++;
    for (let u = 0; u < nUsers; u++) start[u + 1] += start[u];
    const fill = start.slice(0, nUsers);
    const order = new Int32Array(this.size);
    for (let r = 0; r < this.size; r++) order[fill[this.user[r]]++] = r;
    const time = this.time;
    for (let u = 0; u < nUsers; u++) {
      const slice = order.subarray(start[u], start[u + 1]);
      if (slice.length > 1) slice.sort((a, b) => time[a] - time[b] || a - b);
    }
    return { start, order };
  }

  /**
   * Rows that repeat an earlier row's (user, item, timestamp), in file order of the repeats, each with
   * the row it repeats. Only rows with equal timestamps can collide, so each user's equal-time runs
   * are compared.
   */
  duplicates(sequences: UserSequences): { row: number; original: number }[] {
    const { start, order } = sequences;
    const repeats: { row: number; original: number }[] = [];
    for (let u = 0; u < this.users.length; u++) {
      let runStart = start[u];
      for (let i = start[u] + 1; i <= start[u + 1]; i++) {
        if (i < start[u + 1] && this.time[order[i]] === this.time[order[runStart]]) continue;
        if (i - runStart > 1) {
          const firstRowOfItem = new Map<number, number>();
          for (let j = runStart; j < i; j++) {
            const row = order[j];
            const original = firstRowOfItem.get(this.item[row]);
            if (original === undefined) firstRowOfItem.set(this.item[row], row);
            else repeats.push({ row, original });
          }
        }
        runStart = i;
      }
    }
    return repeats.sort((a, b) => a.row - b.row);
  }
}
