/**
 * Rank of the target item in a row of scores read back from the GPU, and the single-target
 * ranking metrics of rrec-spec §E.2 / §D.3: HR@K = 1[rank ≤ K], NDCG@K = 1/log₂(rank + 1) if
 * rank ≤ K else 0 (one relevant item, so IDCG = 1). CPU only: one pass over the row.
 *
 * @example
 * ```ts
 * const rank = targetRank(scores.subarray(r * m, (r + 1) * m), target[r], mask.subarray(r * m, (r + 1) * m));
 * const { hit, ndcg } = rankMetrics(rank, 10);
 * ```
 *
 * @module
 */

/**
 * 1-based rank of `target` among the entries the mask keeps (mask ≠ 0; all when absent):
 * 1 + the number of kept items scoring higher, ties going to the lower item id (a fixed order;
 * `torch.topk`'s tie order is unspecified). A masked or out-of-range target gets `Infinity`.
 */
export function targetRank(scores: ArrayLike<number>, target: number, mask?: ArrayLike<number>): number {
  const kept = (j: number) => !mask || mask[j] !== 0;
  if (!(target >= 0 && target < scores.length) || !kept(target)) return Infinity;
  const s = scores[target];
  let better = 0;
  for (let j = 0; j < scores.length; j++) {
    if (j !== target && kept(j) && (scores[j] > s || (scores[j] === s && j < target))) better++;
  }
  return better + 1;
}

/** HR@K and NDCG@K of one 1-based rank. */
export function rankMetrics(rank: number, k: number): { hit: number; ndcg: number } {
  return rank <= k ? { hit: 1, ndcg: 1 / Math.log2(rank + 1) } : { hit: 0, ndcg: 0 };
}
