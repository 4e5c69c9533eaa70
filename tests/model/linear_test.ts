import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import { linearBackward, linearForward, packLinearInput } from "../../src/model/linear.ts";
import type { Param } from "../../src/model/params.ts";
import { releasePacked } from "../../src/ops/matmul.ts";
import { hasGpu, randomArray } from "../ops/check.ts";

Deno.test({
  name:
    "linearForward() and linearBackward() name a weight split into row chunks instead of reading its first chunk",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const pool = engine.pool;
    const rows = 64, k = 32, n = 64;
    // Two row chunks, as weights above the storage binding limit are held (32 output rows each).
    const chunks = [0, 32].map((start) => ({
      start,
      rows: 32,
      tensor: pool.upload(randomArray(32 * k, start + 1), [32, k], `w[${start}:${start + 32}]`),
    }));
    const weight: Param = {
      name: "split.weight",
      shape: [n, k],
      value: { rows: n, cols: k, chunks },
      grad: null,
      trainable: false,
      version: 0,
    };
    const lin = { weight, bias: null, lora: null, inFeatures: k, outFeatures: n };
    const x = pool.upload(randomArray(rows * k, 3), [rows, k]);
    const y = pool.tensor([rows, n]), dy = pool.upload(randomArray(rows * n, 4), [rows, n]);
    const dx = pool.tensor([rows, k]);
    const rec = engine.recorder();
    const packed = packLinearInput(rec, x, rows, k, "bf16");
    assert(packed, "the input should take the packed path");
    try {
      assert.throws(() => linearForward(rec, pool, lin, x, y, rows, "bf16", packed), /split into 2 chunks/);
      assert.throws(
        () => linearBackward(rec, pool, lin, dy, x, null, dx, rows, { precision: "bf16", packedX: packed }),
        /split into 2 chunks/,
      );
    } finally {
      releasePacked(rec, packed);
      for (const t of [x, y, dy, dx, ...chunks.map((c) => c.tensor)]) pool.release(t);
    }
  },
});
