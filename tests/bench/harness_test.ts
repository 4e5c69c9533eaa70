import assert, { deepEqual as assertEquals, rejects as assertRejects } from "node:assert/strict";
import { getEngine } from "../../src/gpu/engine.ts";
import { benchCases } from "../../src/bench/cases.ts";
import { benchCase, type BenchResult, mergeRounds, runCase } from "../../src/bench/harness.ts";
import { benchCommand } from "../../src/cli/bench.ts";
import { UsageError } from "../../src/cli/command.ts";
import { params } from "../../src/gpu/recorder.ts";
import { assertClose, hasGpu } from "../ops/check.ts";

Deno.test("benchCases has one entry per name and shape", () => {
  const keys = benchCases().map((c) => `${c.name} ${c.shape}`);
  assertEquals(new Set(keys).size, keys.length);
});

for (const targetMs of [1, 40]) {
  Deno.test({
    name:
      `runCase() records the case once cold, once or twice to calibrate, then reps per sample, and tears down (target ${targetMs} ms)`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const events: string[] = [];
      // Repetitions per recorder, in order: each sample (and calibration run) is one submit.
      const perRecorder = new Map<object, number>();
      const result = await runCase(
        engine,
        benchCase({
          name: "test.noop",
          shape: "1",
          flops: 1e6,
          bytes: 4e6,
          setup: () => {
            events.push("setup");
            return { id: 7 };
          },
          record: (rec, state) => {
            assertEquals(state.id, 7);
            perRecorder.set(rec, (perRecorder.get(rec) ?? 0) + 1);
          },
          teardown: () => events.push("teardown"),
        }),
        { samples: 3, targetMs, maxReps: 64 },
      );
      assertEquals(events, ["setup", "teardown"]);
      const runs = [...perRecorder.values()];
      const samples = runs.slice(-3);
      assertEquals(samples, [result.reps, result.reps, result.reps]);
      // Cold run, one repetition, and (when one repetition is under the target) the repetitions
      // it calls for, whose time per repetition without the sync sizes the samples.
      const calibration = runs.slice(0, -3);
      assertEquals(calibration.slice(0, 2), [1, 1]);
      if (calibration.length === 3) assert(calibration[2] > 1 && result.reps >= 1);
      else assertEquals(calibration.length, 2);
      if (targetMs === 40) {
        assertEquals(calibration.length, 3, "a no-op is far below 40 ms: calibrated twice");
      }
      assert(result.reps >= 1 && result.reps <= 64, `reps ${result.reps}`);
      assert(result.ms_median > 0 && result.ms_best <= result.ms_median);
      assert(Math.abs(result.gflops! - 1e6 / (result.ms_median / 1000) / 1e9) < 1e-9);
      assert(Math.abs(result.gbps! - 4 * result.gflops!) < 1e-9);
      assertEquals(result.tokens_per_s, undefined);
      assertEquals(result.adapter, engine.gpu.info.description);
    },
  });
}

Deno.test("r2ec bench rejects a bad regular expression, a bad sample count and unknown flags", async () => {
  await assertRejects(() => benchCommand.run(["--filter", "("]), UsageError);
  await assertRejects(() => benchCommand.run(["--samples", "0"]), UsageError);
  await assertRejects(() => benchCommand.run(["--samples", "2.5"]), UsageError);
  await assertRejects(() => benchCommand.run(["--frobnicate"]), UsageError);
  await assertRejects(() => benchCommand.run(["--filter", "no case has this name"]), UsageError);
});

Deno.test("r2ec bench --list prints only the cases the filter matches", async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (line: string) => lines.push(line);
  try {
    await benchCommand.run(["--list", "--filter", "^matmul\\.nt 1024×1024×1024$"]);
  } finally {
    console.log = log;
  }
  assertEquals(lines, ["matmul.nt 1024×1024×1024"]);
});

Deno.test("mergeRounds() reports the median round with rates rescaled to it", () => {
  const round = (ms_median: number, ms_best: number, cpu_cores: number): BenchResult => ({
    name: "x",
    shape: "1",
    adapter: "a",
    ms_median,
    gflops: 100 / ms_median,
    ms_best,
    warmup_ms: ms_median * 10,
    cpu_cores,
    reps: 2,
    samples: 3,
  });
  const merged = mergeRounds([round(4, 3, 1), round(2, 1.5, 2), round(3, 2.5, 1.5)]);
  assertEquals(merged.ms_median, 3);
  assertEquals(merged.gflops, 100 / 3);
  assertEquals(merged.ms_best, 1.5);
  assertEquals(merged.warmup_ms, 40);
  assertEquals(merged.cpu_cores, 1.5);
  assertEquals(merged.samples, 9);
});

/** CPU reference of kernels/fma_peak.wgsl: 16 chains a ← fma(a, 0.999, 1e-7) started at lane·(c+1)e-9, summed. */
function fmaPeakCpu(lane: number, iterations: number): number {
  let sum = 0;
  for (let c = 0; c < 16; c++) {
    let a = Math.fround(lane * Math.fround((c + 1) * 1e-9));
    for (let i = 0; i < iterations; i++) a = Math.fround(a * Math.fround(0.999) + Math.fround(1e-7));
    sum += a;
  }
  return sum;
}

Deno.test({
  name: "the fma_peak calibration kernel computes its 16 FMA chains like the CPU reference",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const lanes = 40, iterations = 300;
    const out = engine.pool.tensor([lanes * 4], "f32", "fma_peak");
    const rec = engine.recorder();
    rec.dispatch(
      rec.kernel("fma_peak", "fma_peak"),
      [out],
      [Math.ceil(lanes / 16)],
      params([["u32", iterations]]),
    );
    const got = rec.read(out);
    await rec.submit();
    engine.pool.release(out);
    const values = await got;
    // f32 FMA vs f32 multiply-add rounding over 300 steps: relative 1e-5 is ample and still catches a wrong chain.
    for (let lane = 0; lane < lanes; lane++) {
      const want = fmaPeakCpu(lane, iterations);
      for (let j = 0; j < 4; j++) {
        assertClose([values[lane * 4 + j]], [want], { atol: 1e-9, rtol: 1e-5 }, `lane ${lane}`);
      }
    }
  },
});
