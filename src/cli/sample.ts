/**
 * `r2ec sample`: regenerates the bundled synthetic sample (`data/sample/`) or a variant of it.
 *
 * @module
 */
import { type Command, intFlag, parseFlags, UsageError } from "./command.ts";
import { SAMPLE_DIR, writeSampleFiles } from "../data/sample_files.ts";
import { SAMPLE_SEED, SAMPLE_USERS } from "../data/synthetic.ts";

const HELP = `Usage: r2ec sample [--out ${SAMPLE_DIR}] [--seed ${SAMPLE_SEED}] [--users ${SAMPLE_USERS}]

Writes the SYNTHETIC musical-instruments sample: Sample_Instruments.jsonl (reviews) and
meta_Sample_Instruments.jsonl (metadata) in the Amazon Reviews 2023 format, and corpus.txt (text
for the tiny model's tokenizer and pretraining). Every product, brand, user and review is invented.
With the default seed and user count the output is byte-identical to the committed data/sample/.

Flags:
  --out DIR     output directory (default: ${SAMPLE_DIR})
  --seed N      random seed (default: ${SAMPLE_SEED})
  --users N     users to simulate (default: ${SAMPLE_USERS})

Examples:
  deno task r2ec sample
  deno task r2ec sample --out /tmp/sample --seed 7 --users 500
  deno task r2ec preprocess --reviews data/sample/Sample_Instruments.jsonl \\
    --meta data/sample/meta_Sample_Instruments.jsonl --category Sample_Instruments --out /tmp/ds`;

export const sampleCommand: Command = {
  name: "sample",
  summary: "regenerate the bundled synthetic sample dataset and corpus (data/sample)",
  help: HELP,
  async run(argv) {
    const { values } = parseFlags("sample", argv, {
      out: { type: "string", default: SAMPLE_DIR },
      seed: { type: "string" },
      users: { type: "string" },
    });
    const seed = intFlag("sample", "seed", values.seed, SAMPLE_SEED);
    const users = intFlag("sample", "users", values.users, SAMPLE_USERS);
    if (users < 1) throw new UsageError(`sample: --users must be at least 1, got ${users}`);
    for (const path of await writeSampleFiles(values.out, seed, users)) console.log(`wrote ${path}`);
  },
};
