/**
 * A small benchmark harness for GPU work recorded into a `Recorder`.
 *
 * Each sample encodes the case `reps` times into one submit and waits once, so the ~11 ms
 * CPU↔GPU sync of lavapipe is amortised; `reps` is chosen so one sample takes ≥ `targetMs`.
 * The first (cold) run, which includes the LLVM JIT of every new pipeline, is excluded from the
 * samples and reported as `warmup_ms`.
 *
 * @example
 * ```ts
 * const square = benchCase({
 *   name: "matmul.nn",
 *   shape: "256×256×256",
 *   flops: 2 * 256 ** 3,
 *   setup: (engine) => ({ a: engine.pool.zeros([256, 256]), c: engine.pool.tensor([256, 256]) }),
 *   record: (rec, s) => matmul(rec, s.a, s.a, s.c, { m: 256, n: 256, k: 256 }),
 * });
 * const result = await runCase(await getEngine(), square);
 * ```
 *
 * @module
 */
import process from "node:process";
import type { Engine } from "../gpu/engine.ts";
import type { Recorder } from "../gpu/recorder.ts";

/** One benchmark: what to build once and what to record per repetition. */
export interface BenchCase<S = unknown> {
  /** Dotted name, e.g. `matmul.nt`; `--filter` matches against `name shape`. */
  name: string;
  /** Human-readable problem size, e.g. `M×K×N 1024×1024×1024`. */
  shape: string;
  /** Floating-point operations of one repetition (gives GFLOP/s). */
  flops?: number;
  /** Bytes moved by one repetition (gives GB/s). */
  bytes?: number;
  /** Tokens processed by one repetition (gives tokens/s). */
  tokens?: number;
  /** Allocates inputs and outputs (not timed). */
  setup(engine: Engine): S | Promise<S>;
  /**
   * Optional explicit warm-up (compiles every pipeline the case uses); its time is reported as
   * `warmup_ms` instead of the cold first run's.
   */
  warmup?(engine: Engine, state: S): Promise<number>;
  /** Records one repetition; must not sync. */
  record(rec: Recorder, state: S): void;
  /** Releases what `setup` allocated. */
  teardown?(engine: Engine, state: S): void;
}

/** One result line; the first fields follow the `--json` contract of DESIGN §8. */
export interface BenchResult {
  name: string;
  shape: string;
  adapter: string;
  ms_median: number;
  gflops?: number;
  gbps?: number;
  tokens_per_s?: number;
  ms_best: number;
  /**
   * The case's explicit warm-up when it has one, else the cold first run (pipeline JIT included);
   * excluded from the samples.
   */
  warmup_ms: number;
  /** With an explicit warm-up: the first repetition after it (≈ ms_best when nothing is left to compile). */
  first_ms?: number;
  /**
   * CPU cores this process kept busy while sampling (lavapipe runs the kernels on its own
   * threads): well below 2 on this machine means other processes took the CPU and the wall-clock
   * figures understate the kernel.
   */
  cpu_cores: number;
  reps: number;
  samples: number;
}

/** Sampling knobs. */
export interface BenchOptions {
  /** Timed samples per case (median reported). */
  samples?: number;
  /** Minimum wall time of one sample, to amortise the per-submit sync. */
  targetMs?: number;
  /** Upper bound on repetitions per sample. */
  maxReps?: number;
}

/**
 * Declares a case with its state type checked, returning it with the state type erased so that
 * cases of different ops fit one list (the state only ever flows from `setup` to `record`).
 */
export function benchCase<S>(c: BenchCase<S>): BenchCase {
  return c as unknown as BenchCase;
}

/** Runs one case: cold run (reported), calibration, then `samples` timed samples. */
export async function runCase<S>(
  engine: Engine,
  c: BenchCase<S>,
  options: BenchOptions = {},
): Promise<BenchResult> {
  const { samples = 5, targetMs = 250, maxReps = 400 } = options;
  const state = await c.setup(engine);
  try {
    const explicit = c.warmup ? await c.warmup(engine, state) : undefined;
    const first = await timeReps(engine, c, state, 1);
    const warmup_ms = explicit ?? first;
    const reps = await calibrateReps(engine, c, state, targetMs, maxReps);
    const times: number[] = [];
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    for (let s = 0; s < samples; s++) times.push((await timeReps(engine, c, state, reps)) / reps);
    const cpu = process.cpuUsage(cpuStart);
    const cpu_cores = (cpu.user + cpu.system) / 1000 / (performance.now() - wallStart);
    const ms_median = median(times);
    const perSecond = (amount: number | undefined) =>
      amount === undefined ? undefined : amount / (ms_median / 1000);
    const flops = perSecond(c.flops), bytes = perSecond(c.bytes);
    return {
      name: c.name,
      shape: c.shape,
      adapter: engine.gpu.info.description,
      ms_median,
      gflops: flops === undefined ? undefined : flops / 1e9,
      gbps: bytes === undefined ? undefined : bytes / 1e9,
      tokens_per_s: perSecond(c.tokens),
      ms_best: Math.min(...times),
      warmup_ms,
      first_ms: explicit === undefined ? undefined : first,
      cpu_cores,
      reps,
      samples,
    };
  } finally {
    c.teardown?.(engine, state);
  }
}

/**
 * Combines the results of one case from several interleaved rounds (all cases run once per
 * round, so every case sees the same drift of the machine): the median of the round medians,
 * the best sample, the first round's warm-up, the mean busy cores.
 */
export function mergeRounds(rounds: BenchResult[]): BenchResult {
  const ms_median = median(rounds.map((r) => r.ms_median));
  const first = rounds[0];
  const rescale = (rate: number | undefined) =>
    rate === undefined ? undefined : rate * first.ms_median / ms_median;
  return {
    ...first,
    ms_median,
    gflops: rescale(first.gflops),
    gbps: rescale(first.gbps),
    tokens_per_s: rescale(first.tokens_per_s),
    ms_best: Math.min(...rounds.map((r) => r.ms_best)),
    cpu_cores: rounds.reduce((sum, r) => sum + r.cpu_cores, 0) / rounds.length,
    samples: rounds.reduce((sum, r) => sum + r.samples, 0),
  };
}

/** The middle value (the upper one of the two middles for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

/**
 * Repetitions for one sample of ≥ `targetMs`. One repetition's time includes the submit's sync
 * (~11 ms here), so sizing from it alone gives small cases too few repetitions (a 3 ms product
 * got 17, and a sync of 0.7 ms each): a second run of that many repetitions gives the time per
 * repetition without the sync.
 */
async function calibrateReps<S>(
  engine: Engine,
  c: BenchCase<S>,
  state: S,
  targetMs: number,
  maxReps: number,
): Promise<number> {
  const clamp = (ms: number) => Math.max(1, Math.min(maxReps, Math.ceil(targetMs / Math.max(ms, 0.05))));
  const single = await timeReps(engine, c, state, 1);
  const first = clamp(single);
  if (first === 1) return 1;
  const several = await timeReps(engine, c, state, first);
  return clamp((several - single) / (first - 1));
}

/** Wall milliseconds of `reps` repetitions recorded into one submit plus its single sync. */
async function timeReps<S>(engine: Engine, c: BenchCase<S>, state: S, reps: number): Promise<number> {
  const rec = engine.recorder();
  const start = performance.now();
  for (let r = 0; r < reps; r++) c.record(rec, state);
  await rec.submit();
  return performance.now() - start;
}
