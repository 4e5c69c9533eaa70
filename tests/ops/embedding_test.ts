import type { Recorder } from "../../src/gpu/recorder.ts";
import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import type { RowChunked, TensorPool } from "../../src/gpu/tensor.ts";
import {
  embeddingBackward,
  embeddingBackwardCpu,
  embeddingForward,
  embeddingForwardCpu,
  embeddingGradIndex,
} from "../../src/ops/embedding.ts";
import { assertClose, hasGpu, numericalGradient, randomArray, rng, weightedSum } from "./check.ts";

// Tolerance: the gather is one f32 multiply (≤ 1 ulp); the gradient sums ≤ 40 f32 terms of |x| ≤ 1
// in a fixed order, so |error| ≤ 40·2⁻²⁴·40 ≈ 1e-4 worst case; 1e-5 + 1e-5·|x| holds with margin for
// the shapes below and still catches any wrong row, column or chunk offset (errors of order 1).
const TOL = { atol: 1e-5, rtol: 1e-5 };

/** Uploads a table split into chunks of `perChunk` rows, forcing the multi-chunk code path. */
function uploadChunked(pool: TensorPool, data: Float32Array, rows: number, cols: number, perChunk: number) {
  const chunks = [];
  for (let start = 0; start < rows; start += perChunk) {
    const n = Math.min(perChunk, rows - start);
    chunks.push({
      start,
      rows: n,
      tensor: pool.upload(data.subarray(start * cols, (start + n) * cols), [n, cols]),
    });
  }
  return { rows, cols, chunks } satisfies RowChunked;
}

function randomIds(n: number, vocab: number, seed: number): Int32Array {
  const r = rng(seed);
  // Skewed draws so that some ids repeat many times and others never occur.
  return Int32Array.from({ length: n }, () => Math.floor(vocab * r() * r()));
}

Deno.test("embeddingBackwardCpu() matches central finite differences", () => {
  const rows = 5, cols = 3, ids = [4, 1, 4, 0, 4];
  const table = randomArray(rows * cols, 1);
  const w = randomArray(ids.length * cols, 2);
  const dTable = embeddingBackwardCpu(ids, w, rows, cols, 0.7);
  const numeric = numericalGradient((x) => weightedSum(embeddingForwardCpu(ids, x, cols, 0.7), w), table);
  assertClose(dTable, numeric, { atol: 1e-8 }, "dTable");
});

Deno.test("embeddingGradIndex() rejects an id outside the table", () => {
  const table = { rows: 4, chunks: [{ start: 0, rows: 4 }] } as unknown as RowChunked;
  assert.throws(
    () => embeddingGradIndex({} as Recorder, {} as TensorPool, [0, 4], table),
    /id 4 at position 1 /,
  );
});

// Widths divisible by 4 take the vec4 kernels; 700 tokens exceed the 256 token-striding workgroups.
const SHAPES = [
  { tokens: 1, vocab: 1, cols: 1, perChunk: 1 },
  { tokens: 37, vocab: 23, cols: 65, perChunk: 7 },
  { tokens: 300, vocab: 1000, cols: 96, perChunk: 128 },
  { tokens: 130, vocab: 40, cols: 7, perChunk: 40 },
  { tokens: 700, vocab: 300, cols: 4, perChunk: 90 },
];

for (const { tokens, vocab, cols, perChunk } of SHAPES) {
  Deno.test({
    name: `embedding kernels match the CPU reference for ${tokens} tokens, ${vocab}×${cols} table in ${
      Math.ceil(vocab / perChunk)
    } chunks`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const pool = engine.pool;
      const scale = 1.5;
      const ids = randomIds(tokens, vocab, tokens);
      const tableData = randomArray(vocab * cols, 3);
      const dOutData = randomArray(tokens * cols, 4);
      const previousGrad = randomArray(vocab * cols, 5);
      const table = uploadChunked(pool, tableData, vocab, cols, perChunk);
      const dTable = uploadChunked(pool, previousGrad, vocab, cols, perChunk);
      const tIds = pool.upload(ids, [tokens]);
      const out = pool.tensor([tokens, cols]);
      const dOut = pool.upload(dOutData, [tokens, cols]);
      const rec = engine.recorder();
      const index = embeddingGradIndex(rec, pool, ids, table);
      embeddingForward(rec, tIds, table, out, { scale });
      embeddingBackward(rec, index, dOut, dTable, { scale });
      const y = rec.read(out);
      const grads = dTable.chunks.map((c) => rec.read(c.tensor));
      await rec.submit();
      index.release();
      assertClose(await y, embeddingForwardCpu(ids, tableData, cols, scale), TOL, "out");
      const expected = embeddingBackwardCpu(ids, dOutData, vocab, cols, scale).map((g, i) =>
        g + previousGrad[i]
      );
      const got = new Float32Array(vocab * cols);
      (await Promise.all(grads)).forEach((g, i) => got.set(g, dTable.chunks[i].start * cols));
      assertClose(got, expected, TOL, "dTable");
      for (
        const t of [
          tIds,
          out,
          dOut,
          ...table.chunks.map((c) => c.tensor),
          ...dTable.chunks.map((c) => c.tensor),
        ]
      ) {
        pool.release(t);
      }
    },
  });
}
