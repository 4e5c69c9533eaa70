/**
 * Every case `r2ec bench` runs, in order. Add an op's cases by appending to this list (build
 * them with `benchCase` from `./harness.ts`; keep each op's cases in its own module).
 *
 * @module
 */
import { calibrationCases } from "./calibration_cases.ts";
import type { BenchCase } from "./harness.ts";
import { adamwCases } from "./adamw_cases.ts";
import { attentionCases } from "./attention_cases.ts";
import { lmHeadCases } from "./lm_head_cases.ts";
import { matmulCases } from "./matmul_cases.ts";
import { modelCases } from "./model_cases.ts";
import { rmsnormCases } from "./rmsnorm_cases.ts";

/** All registered benchmark cases, built on demand (model cases look for `../shared`). */
export function benchCases(): BenchCase[] {
  return [
    ...calibrationCases(),
    ...matmulCases(),
    ...matmulCases("auto", undefined, "bf16"),
    // The plain storage-buffer kernel at one shape, to show what the texture path buys.
    ...matmulCases("general", [[1024, 1024, 1024]]),
    ...rmsnormCases(),
    ...adamwCases(),
    ...attentionCases(),
    ...lmHeadCases(),
    ...modelCases(),
  ];
}
