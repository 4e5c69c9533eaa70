/**
 * Calibration: the register-only FMA ceiling of the adapter at the time of the run. On lavapipe
 * the host's speed drifts 30–50 % over minutes and other processes take cores, so kernel figures
 * are best read as a fraction of this line measured in the same run.
 *
 * @module
 */
import { params } from "../gpu/recorder.ts";
import { type BenchCase, benchCase } from "./harness.ts";

const LANES = 4096;
const ITERATIONS = 2048;
/** 16 vec4 FMA chains per iteration, 2 flops per FMA. */
const FLOPS_PER_LANE_ITERATION = 16 * 4 * 2;

/** The FMA-peak case. */
export function calibrationCases(): BenchCase[] {
  return [
    benchCase({
      name: "calibrate.fma_peak",
      shape: `${LANES} lanes × ${ITERATIONS} it`,
      flops: LANES * ITERATIONS * FLOPS_PER_LANE_ITERATION,
      setup: (engine) => engine.pool.tensor([LANES * 4], "f32", "bench.fma_peak"),
      record: (rec, out) =>
        rec.dispatch(
          rec.kernel("fma_peak", "fma_peak"),
          [out],
          [LANES / 16],
          params([["u32", ITERATIONS]]),
        ),
      teardown: (engine, out) => engine.pool.release(out),
    }),
  ];
}
