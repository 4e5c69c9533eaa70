/**
 * rrec-spec §A.4 (`save_data`): item ids 1..N in meta order, one sample per (user, position ≥ 1) with
 * the last `window` items as history, the global stable sort by target time, and the 80/10/10 split.
 * Samples are kept as (user, position) pairs and turned into {@linkcode SampleRecord}s only when
 * written, so memory stays proportional to the reviews kept.
 *
 * @example
 * ```ts
 * const plan = planSamples(table, sequences, selection.alive);
 * const [train, valid, test] = splitBounds(plan.order.length); // [0, a), [a, b), [b, S)
 * const first = sampleRecord(table, plan, plan.order[0], 0, context);
 * ```
 *
 * @module
 */
import type { CleanItem } from "./items.ts";
import type { ReviewTable, UserSequences } from "./review_table.ts";
import type { SampleRecord } from "./dataset.ts";

/**
 * Item ids: kept meta items that occur in the selected reviews get 1..N in meta order; the rest 0.
 *
 * @example
 * ```ts
 * const { idOf, count } = assignItemIds(table, alive, items.length);
 * ```
 */
export function assignItemIds(table: ReviewTable, alive: Uint8Array, itemCount: number) {
  const idOf = new Int32Array(itemCount);
  for (let r = 0; r < table.size; r++) if (alive[r]) idOf[table.item[r]] = 1;
  let count = 0;
  for (let i = 0; i < itemCount; i++) if (idOf[i]) idOf[i] = ++count;
  return { idOf, count };
}

/** Samples as (user sequence, position) pairs, in interaction order. */
export interface SamplePlan {
  /** Selected rows of user u in chronological order: `rows[seqStart[u]] .. rows[seqStart[u + 1] - 1]`. */
  seqStart: Int32Array;
  rows: Int32Array;
  /** Per sample (in emission order): index into `rows` of the target. */
  target: Int32Array;
  /** Emission indices sorted by target time, ties in emission order: sample s has interaction_id s. */
  order: Uint32Array;
  /** Users with at least one selected review. */
  users: number;
}

/**
 * Emits the samples of §A.4: users in order of first appearance among the selected rows, each user's
 * rows in chronological order, one sample per position i ≥ 1; then the stable sort by target time.
 */
export function planSamples(table: ReviewTable, sequences: UserSequences, alive: Uint8Array): SamplePlan {
  const nUsers = table.users.length;
  const userOrder: number[] = [];
  const seen = new Uint8Array(nUsers);
  for (let r = 0; r < table.size; r++) {
    const u = table.user[r];
    if (alive[r] && !seen[u]) seen[u] = 1, userOrder.push(u);
  }
  const seqStart = new Int32Array(userOrder.length + 1);
  const rowsList: number[] = [];
  const targets: number[] = [];
  userOrder.forEach((u, k) => {
    const first = rowsList.length;
    for (let i = sequences.start[u]; i < sequences.start[u + 1]; i++) {
      const r = sequences.order[i];
      if (!alive[r]) continue;
      if (rowsList.length > first) targets.push(rowsList.length);
      rowsList.push(r);
    }
    seqStart[k + 1] = rowsList.length;
  });
  const rows = Int32Array.from(rowsList);
  const target = Int32Array.from(targets);
  const targetTime = Float64Array.from(targets, (t) => table.time[rows[t]]);
  const order = new Uint32Array(target.length);
  for (let s = 0; s < order.length; s++) order[s] = s;
  order.sort((a, b) => targetTime[a] - targetTime[b] || a - b);
  return { seqStart, rows, target, order, users: userOrder.length };
}

/**
 * §A.4 split boundaries with Python's `int()`: train `[0, a)`, valid `[a, b)`, test `[b, S)` with
 * a = int(0.8·S), b = int(0.9·S).
 *
 * @example
 * ```ts
 * splitBounds(34373); // [27498, 30935]: 27,498 / 3,437 / 3,438 as in rrec-spec §A.7
 * ```
 */
export function splitBounds(samples: number): [number, number] {
  return [Math.trunc(0.8 * samples), Math.trunc(0.9 * samples)];
}

/** What a sample record needs besides the table and the plan. */
export interface SampleContext {
  items: CleanItem[];
  idOf: Int32Array;
  window: number;
}

/**
 * The {@linkcode SampleRecord} of the sample emitted as `emitted` (target `plan.rows[plan.target[emitted]]`),
 * with history = the user's previous `window` rows, oldest first.
 */
export function sampleRecord(
  table: ReviewTable,
  plan: SamplePlan,
  emitted: number,
  interactionId: number,
  context: SampleContext,
): SampleRecord {
  const t = plan.target[emitted];
  // The user's sequence starts at the largest seqStart ≤ t; histories never cross users because
  // position 0 of a sequence is never a target.
  let lo = 0;
  let hi = plan.seqStart.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (plan.seqStart[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  const from = Math.max(t - context.window, plan.seqStart[lo]);
  const history = Array.from(plan.rows.subarray(from, t));
  const row = plan.rows[t];
  const item = (r: number) => context.items[table.item[r]];
  return {
    user_id: table.users[table.user[row]],
    item_asins: history.map((r) => item(r).parent_asin),
    item_asin: item(row).parent_asin,
    history_item_id: history.map((r) => context.idOf[table.item[r]]),
    item_id: context.idOf[table.item[row]],
    history_item_title: history.map((r) => item(r).title),
    item_title: item(row).title,
    history_rating: history.map((r) => table.rating[r]),
    rating: table.rating[row],
    history_timestamp: history.map((r) => table.time[r]),
    timestamp: table.time[row],
    interaction_id: interactionId,
  };
}
