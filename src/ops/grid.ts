/**
 * Workgroup grids for element-wise kernels: 1-D when it fits, else 2-D with a row stride,
 * because `maxComputeWorkgroupsPerDimension` is 65535.
 *
 * @module
 */

/** Returns `[x, y]` workgroup counts and the element stride of one grid row for `n` elements. */
export function elementGrid(
  n: number,
  workgroupSize: number,
): { groups: [number, number]; rowStride: number } {
  const total = Math.ceil(n / workgroupSize);
  const x = Math.min(total, 65535);
  const y = Math.ceil(total / x) || 1;
  return { groups: [Math.max(x, 1), y], rowStride: x * workgroupSize };
}
