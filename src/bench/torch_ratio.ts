/**
 * Training speed side by side with PyTorch (DESIGN §9): rounds that alternate
 * `../shared/tools/torch_reference_step.py` (a subprocess, with OpenBLAS choosing its own kernels:
 * the `OPENBLAS_*` variables are left out of its environment, compute-notes §5) and the
 * reference-decoder training-step cases, so both see the same drift of this host. Prints each
 * round and, last, one JSON line with the medians of the per-round ratios.
 *
 * Run: `deno task bench:torch [--rounds 3] [--filter REGEX] [--samples 3]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { getEngine } from "../gpu/engine.ts";
import { median, runCase } from "./harness.ts";
import { modelCases } from "./model_cases.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("../../../shared/tools/torch_reference_step.py", import.meta.url);
const SETUP = "apt-get install -y python3-torch python3-numpy libopenblas0-pthread";

/** Median tokens/s of one run of the PyTorch reference step. */
async function torchTokensPerSecond(): Promise<number> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(PYTHON, {
      args: [SCRIPT.pathname],
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
    }).output();
  } catch (e) {
    throw new Error(`Cannot run ${PYTHON} (${(e as Error).message}): ${SETUP}`);
  }
  const text = new TextDecoder().decode(output.stdout);
  const line = text.trim().split("\n").at(-1) ?? "";
  const rate = output.success
    ? (JSON.parse(line) as { tokens_per_s_median?: number }).tokens_per_s_median
    : undefined;
  if (typeof rate !== "number") {
    const why = new TextDecoder().decode(output.stderr).trim().split("\n").at(-1);
    throw new Error(`${SCRIPT.pathname} gave no tokens_per_s_median (${why ?? "no output"}): ${SETUP}`);
  }
  return rate;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      filter: { type: "string", default: "train_step_reference\\.(full|lora)\\.bf16" },
      samples: { type: "string", default: "3" },
    },
  });
  const rounds = Number(values.rounds), samples = Number(values.samples);
  const pattern = new RegExp(values.filter!);
  const cases = modelCases().filter((c) => pattern.test(`${c.name} ${c.shape}`));
  if (!cases.length) throw new Error(`No training-step case matches --filter ${values.filter}`);
  const engine = await getEngine();
  const ratios = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  const torch: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    const reference = await torchTokensPerSecond();
    torch.push(reference);
    const parts = [`round ${round}: PyTorch ${reference.toFixed(0)} tok/s`];
    for (const c of cases) {
      const result = await runCase(engine, c, { samples });
      const ours = result.tokens_per_s!;
      ratios.get(c.name)!.push(ours / reference);
      parts.push(`${c.name} ${ours.toFixed(0)} tok/s (${(ours / reference).toFixed(2)}×)`);
    }
    console.log(parts.join(" | "));
  }
  console.log(JSON.stringify({
    name: "train_step_vs_torch",
    rounds,
    torch_tokens_per_s_median: median(torch),
    ratio_median: Object.fromEntries([...ratios].map(([name, r]) => [name, Number(median(r).toFixed(3))])),
  }));
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`r2ec bench:torch: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
