/**
 * `r2ec bench`: kernel and model benchmarks (DESIGN §8) as a table or JSON lines.
 *
 * @module
 */
import { type Command, intFlag, parseFlags, UsageError } from "./command.ts";
import { getEngine } from "../gpu/engine.ts";
import { benchCases } from "../bench/cases.ts";
import { type BenchResult, mergeRounds, runCase } from "../bench/harness.ts";

const HELP = `Usage: r2ec bench [--json] [--filter REGEX] [--samples N] [--target-ms MS] [--rounds R] [--list]

Runs the registered GPU benchmarks. Each sample records the case many times into one submit
(so the ~11 ms CPU↔GPU sync is amortised) and the median per repetition is reported, with
GFLOP/s, GB/s or tokens/s where the case defines them. The cold first run (pipeline JIT) is
excluded and shown as "warm-up"; cases with an explicit warm-up (the training steps) show its
time instead, and the first run after it as first_ms in JSON. "cores" is the CPU this process kept busy while sampling:
well below 2 on this 2-core machine means other processes took CPU time.
Matmul shapes read M×K×N (C[M×N] = op(A)·op(B), inner dimension K).

Flags:
  --json            one JSON object per line: {name, shape, adapter, ms_median, gflops?, gbps?,
                    tokens_per_s?, ms_best, warmup_ms, first_ms?, cpu_cores, reps, samples}
                    (default: table)
  --filter REGEX    run only cases whose "name shape" matches (default: all)
  --samples N       timed samples per case, median reported (default: 5)
  --target-ms MS    minimum wall time of one sample (default: 250)
  --rounds R        run all selected cases R times interleaved and report, per case, the median
                    of the round medians: A/B comparisons then see the same machine drift
                    (default: 1, results stream as they come)
  --list            print the case names and shapes without running them

Examples:
  deno task bench
  deno task bench --filter "matmul.nt" --json
  deno task bench --filter "1024×1024×1024" --samples 3
  deno task bench --filter "matmul\\.(nn|nt|tn)(\\.bf16)? 1024×1024×1024" --rounds 3`;

export const benchCommand: Command = {
  name: "bench",
  summary: "benchmark kernels and training steps (GFLOP/s, GB/s, tokens/s)",
  help: HELP,
  async run(argv) {
    const { values } = parseFlags("bench", argv, {
      json: { type: "boolean" },
      filter: { type: "string" },
      samples: { type: "string" },
      "target-ms": { type: "string" },
      rounds: { type: "string" },
      list: { type: "boolean" },
    });
    const samples = intFlag("bench", "samples", values.samples, 5);
    const targetMs = intFlag("bench", "target-ms", values["target-ms"], 250);
    if (samples < 1) throw new UsageError(`bench: --samples must be at least 1, got ${samples}`);
    if (targetMs < 1) throw new UsageError(`bench: --target-ms must be at least 1, got ${targetMs}`);
    const rounds = intFlag("bench", "rounds", values.rounds, 1);
    if (rounds < 1) throw new UsageError(`bench: --rounds must be at least 1, got ${rounds}`);
    let filter: RegExp;
    try {
      filter = new RegExp(values.filter ?? "");
    } catch {
      throw new UsageError(`bench: --filter is not a valid regular expression: "${values.filter}"`);
    }
    const cases = benchCases().filter((c) => filter.test(`${c.name} ${c.shape}`));
    if (cases.length === 0) throw new UsageError(`bench: no case matches --filter "${values.filter}"`);
    if (values.list) {
      for (const c of cases) console.log(`${c.name} ${c.shape}`);
      return;
    }
    const engine = await getEngine();
    if (!values.json) {
      console.log(`adapter ${engine.gpu.info.description} (${engine.gpu.info.backend})`);
      console.log(HEADER);
    }
    const print = (result: BenchResult) =>
      console.log(values.json ? JSON.stringify(result) : tableRow(result));
    const results: BenchResult[][] = cases.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, c] of cases.entries()) {
        const result = await runCase(engine, c, { samples, targetMs });
        if (rounds === 1) print(result);
        results[i].push(result);
      }
    }
    if (rounds > 1) results.forEach((r) => print(mergeRounds(r)));
  },
};

const HEADER = `${"name".padEnd(24)} ${"shape".padEnd(16)} ${"ms".padStart(9)} ${"GFLOP/s".padStart(8)} ${
  "GB/s".padStart(6)
} ${"tok/s".padStart(8)} ${"warm-up ms".padStart(10)} ${"cores".padStart(5)}`;

function tableRow(r: BenchResult): string {
  const num = (v: number | undefined, digits: number, width: number) =>
    (v === undefined ? "–" : v.toFixed(digits)).padStart(width);
  return `${r.name.padEnd(24)} ${r.shape.padEnd(16)} ${num(r.ms_median, 3, 9)} ${num(r.gflops, 1, 8)} ${
    num(r.gbps, 2, 6)
  } ${num(r.tokens_per_s, 0, 8)} ${num(r.warmup_ms, 0, 10)} ${num(r.cpu_cores, 2, 5)}`;
}
