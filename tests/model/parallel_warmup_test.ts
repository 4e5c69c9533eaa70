import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import { matmul } from "../../src/ops/matmul.ts";
import { residualForward } from "../../src/ops/residual.ts";
import {
  compiledByWorker,
  compileMatmulsInWorker,
  RecorderWithout,
} from "../../src/model/parallel_warmup.ts";
import { hasGpu } from "../ops/check.ts";

Deno.test({
  name: "RecorderWithout drops the matmul kernels' dispatches and runs every other one",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const { pool } = engine;
    const [m, n, k] = [64, 256, 64];
    const a = pool.upload(new Float32Array(m * k).fill(1), [m * k]);
    const b = pool.upload(new Float32Array(n * k).fill(1), [n * k]);
    const c = pool.upload(new Float32Array(m * n).fill(-1), [m * n]);
    const x = pool.upload(Float32Array.from([1, 2, 3, 4]), [4]);
    const y = pool.zeros([4]);
    try {
      const rec = new RecorderWithout(engine, compiledByWorker);
      matmul(rec, a, b, c, { m, n, k, transB: true, precision: "bf16" });
      residualForward(rec, x, x, y);
      const product = rec.read(c), sum = rec.read(y);
      await rec.submit();
      assert.ok((await product).every((v) => v === -1), "a matmul kernel ran");
      assert.deepEqual([...await sum], [2, 4, 6, 8]);
    } finally {
      for (const t of [a, b, c, x, y]) pool.release(t);
    }
  },
});

Deno.test({
  name: "compileMatmulsInWorker() finishes, and a matmul on this thread afterwards is exact",
  ignore: !hasGpu,
  async fn() {
    await compileMatmulsInWorker("bf16");
    const engine = await getEngine();
    const { pool } = engine;
    const [m, n, k] = [64, 256, 8];
    const a = pool.upload(new Float32Array(m * k).fill(0.5), [m * k]);
    const b = pool.upload(new Float32Array(n * k).fill(2), [n * k]);
    const c = pool.zeros([m * n]);
    try {
      const rec = engine.recorder();
      matmul(rec, a, b, c, { m, n, k, transB: true, precision: "bf16" });
      const product = rec.read(c);
      await rec.submit();
      assert.ok((await product).every((v) => v === 8));
    } finally {
      for (const t of [a, b, c]) pool.release(t);
    }
  },
});
