import assert from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import { params } from "../../src/gpu/recorder.ts";
import { rowChunks } from "../../src/gpu/tensor.ts";
import { hasGpu } from "../ops/check.ts";

Deno.test("rowChunks() splits rows so no chunk exceeds the binding limit", () => {
  const chunks = rowChunks(151936, 896 * 4, 134217728);
  assert.equal(chunks.length, 5);
  assert.equal(chunks.reduce((s, c) => s + c.rows, 0), 151936);
  for (const c of chunks) assert.ok(c.rows * 896 * 4 <= 134217728);
  assert.deepEqual(rowChunks(3, 4, 4), [{ start: 0, rows: 1 }, { start: 1, rows: 1 }, { start: 2, rows: 1 }]);
});

Deno.test({
  name: "Recorder.submit() throws a GpuError naming the kernel when a binding is invalid",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const a = engine.pool.upload(new Float32Array(8), [8]);
    const rec = engine.recorder();
    // Binding a read-only tensor twice where a read_write one is expected is a validation error.
    rec.dispatch(rec.kernel("residual", "residual_forward"), [a, a, a], [1], params([["u32", 8]]));
    await assert.rejects(() => rec.submit(), /residual:residual_forward/);
    engine.pool.release(a);
  },
});

Deno.test({
  name: "TensorPool reuses released buffers and rejects a double release",
  ignore: !hasGpu,
  async fn() {
    const { pool } = await getEngine();
    const a = pool.tensor([100]);
    pool.release(a);
    const b = pool.tensor([120]);
    assert.equal(b.buffer, a.buffer);
    pool.release(b);
    assert.throws(() => pool.release(b), /released twice/);
  },
});

Deno.test({
  name: "Recorder reads back several tensors with one submit",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const x = engine.pool.upload(new Float32Array([1, 2, 3]), [3]);
    const y = engine.pool.upload(new Int32Array([-4, 5]), [2]);
    const rec = engine.recorder();
    const rx = rec.read(x), ry = rec.readInt(y);
    await rec.submit();
    assert.deepEqual([...await rx], [1, 2, 3]);
    assert.deepEqual([...await ry], [-4, 5]);
    engine.pool.release(x);
    engine.pool.release(y);
  },
});

Deno.test("r2ec info without any adapter fails in one line that names the remedy", async () => {
  // DX12 does not exist on Linux, so wgpu finds no adapter at all.
  const run = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read=.", "--allow-env", "cli.ts", "info"],
    env: { DENO_WEBGPU_BACKEND: "dx12" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(run.stderr).replace(/.*XDG_RUNTIME_DIR.*\n/g, "").trimEnd();
  assert.equal(run.code, 1);
  assert.match(err, /^r2ec info: No WebGPU adapter found: install a driver \(.*mesa-vulkan-drivers\)/);
  assert.equal(err.split("\n").length, 1);
});
