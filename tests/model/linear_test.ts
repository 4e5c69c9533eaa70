import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import {
  linearBackward,
  linearForward,
  type MatmulPrecision,
  packLinearInput,
} from "../../src/model/linear.ts";
import { type Param, uploadParam } from "../../src/model/params.ts";
import { bf16Round, releasePacked } from "../../src/ops/matmul.ts";
import { assertClose, hasGpu, randomArray } from "../ops/check.ts";

Deno.test({
  name: "linearForward() with accumulate adds x·Wᵀ + b to y on the packed bf16 and the f32 paths",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const pool = engine.pool;
    // 100 rows: not a multiple of the 32-row tiles; 72 outputs: not a multiple of 16 columns.
    const rows = 100, k = 40, n = 72;
    const [xData, wData, bData, yData] = [[rows * k, 1], [n * k, 2], [n, 3], [rows * n, 4]].map((
      [size, seed],
    ) => randomArray(size, seed));
    const lin = {
      weight: uploadParam(pool, "acc.weight", [n, k], wData),
      bias: uploadParam(pool, "acc.bias", [n], bData),
      lora: null,
      inFeatures: k,
      outFeatures: n,
    };
    const x = pool.upload(xData, [rows, k]);
    for (const precision of ["bf16", "f32"] as MatmulPrecision[]) {
      const round = precision === "bf16" ? bf16Round : (v: number) => v;
      const expected = Float64Array.from(yData, (old, at) => {
        const [r, j] = [Math.floor(at / n), at % n];
        let sum = old + bData[j];
        for (let i = 0; i < k; i++) sum += round(xData[r * k + i]) * round(wData[j * k + i]);
        return sum;
      });
      const y = pool.upload(yData, [rows, n]);
      const rec = engine.recorder();
      const packed = packLinearInput(rec, x, rows, k, precision);
      assert.equal(packed !== null, precision === "bf16", `${precision}: which path runs`);
      linearForward(rec, pool, lin, x, y, rows, precision, packed, true);
      if (packed) releasePacked(rec, packed);
      await rec.submit();
      assertClose(await engine.read(y), expected, { atol: 1e-4, rtol: 1e-4 }, `${precision} y + x·Wᵀ + b`);
      pool.release(y);
    }
    for (
      const t of [
        x,
        ...lin.weight.value.chunks.map((c) => c.tensor),
        ...lin.bias.value.chunks.map((c) => c.tensor),
      ]
    ) {
      pool.release(t);
    }
  },
});

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
