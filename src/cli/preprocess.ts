/**
 * `r2ec preprocess`: raw Amazon Reviews files → a dataset directory (rrec-spec §A, DESIGN §5).
 *
 * @example
 * ```sh
 * deno task preprocess --reviews Musical_Instruments.csv.gz --meta meta_Musical_Instruments.jsonl.gz \
 *   --category Musical_Instruments --out data/Musical_Instruments_0_2022-10-2023-10
 * ```
 *
 * @module
 */
import { type Command, intFlag, parseFlags, UsageError } from "./command.ts";
import { formatBenchReport, runPreprocessBench } from "../data/bench_preprocess.ts";
import { defaultOutDir, formatReport, preprocess, PREPROCESS_DEFAULTS } from "../data/preprocess.ts";
import { monthStart } from "../data/selection.ts";

const NAME = "preprocess";

const HELP = `Usage: r2ec preprocess --reviews FILE --meta FILE --category NAME [--out DIR] [flags]
       r2ec preprocess --bench [--lines N]

Turns raw Amazon Reviews files into a dataset directory (items.jsonl, train/valid/test.jsonl,
dataset.json) exactly as the R²ec reference preprocessing does (rrec-spec §A): item cleaning
(title present, ≤ 20 words, numeric price), the time window with its 3-month widening rule,
the K-core loop, ids 1..N in meta order (pad id 0 implicit), histories of up to --window items,
and the global chronological 80/10/10 split.

Inputs may be gzip-compressed (detected from the bytes) and their format is detected from the
content: Amazon 2023 reviews JSONL ({Category}.jsonl) or benchmark CSV
(user_id,parent_asin,rating,timestamp), Amazon 2018 reviews ({Category}_5.json); Amazon 2023 meta
(meta_{Category}.jsonl) or 2018 meta (meta_{Category}.json).

Flags:
  --reviews FILE     review file (required)
  --meta FILE        item metadata file (required)
  --category NAME    category name stored in dataset.json, e.g. Musical_Instruments (required)
  --out DIR          output directory (default data/{category}_{k}_{start}-{end} with unpadded
                     months, the reference's name, e.g. data/Musical_Instruments_0_2022-10-2023-10);
                     written to a temporary directory beside it, then renamed into place
  --k N              K of the K-core loop (default ${PREPROCESS_DEFAULTS.k}: no K-core filter)
  --start YYYY-MM    window start month, inclusive (default ${PREPROCESS_DEFAULTS.start})
  --end YYYY-MM      window end: midnight of the 1st of this month, inclusive (default ${PREPROCESS_DEFAULTS.end})
  --window N         history length (default ${PREPROCESS_DEFAULTS.window})
  --min-items N      move the start back 3 months while fewer items remain (default ${PREPROCESS_DEFAULTS.minItems})
  --strict           stop at the first bad input line (malformed JSON, missing or wrongly typed
                     field, duplicate review) with file:line; default: skip and count it
  --force            replace an existing output directory (atomically: the old one is removed
                     only after the new one is in place); default: refuse
  --bench            measure preprocessing speed on a generated 2023-format review file in /tmp
  --lines N          review lines for --bench (default 1000000)
  --help             this text

Bad lines are counted by reason with their first line numbers, in the report and dataset.json.

Examples:
  r2ec preprocess --reviews ../shared/data/amazon2018-gift-cards/Gift_Cards_5.json \\
    --meta ../shared/data/amazon2018-gift-cards/meta_Gift_Cards.json --category Gift_Cards \\
    --start 2000-01 --min-items 1 --out /tmp/gift_cards
  r2ec preprocess --reviews Video_Games.csv.gz --meta meta_Video_Games.jsonl.gz \\
    --category Video_Games        # writes data/Video_Games_0_2022-10-2023-10
  r2ec preprocess --bench`;

function checkMonth(flag: string, value: string): string {
  try {
    monthStart(value);
  } catch {
    throw new UsageError(`${NAME}: --${flag} must be YYYY-MM, got "${value}"`);
  }
  return value;
}

/** The `preprocess` command. */
export const preprocessCommand: Command = {
  name: NAME,
  summary: "turn raw Amazon reviews + meta into a dataset directory",
  help: HELP,
  async run(argv) {
    const { values } = parseFlags(NAME, argv, {
      reviews: { type: "string" },
      meta: { type: "string" },
      category: { type: "string" },
      out: { type: "string" },
      k: { type: "string" },
      start: { type: "string" },
      end: { type: "string" },
      window: { type: "string" },
      "min-items": { type: "string" },
      strict: { type: "boolean" },
      force: { type: "boolean" },
      bench: { type: "boolean" },
      lines: { type: "string" },
    });
    if (values.bench) {
      const lines = intFlag(NAME, "lines", values.lines, 1_000_000);
      if (lines < 1) throw new UsageError(`${NAME}: --lines must be at least 1`);
      console.log(formatBenchReport(await runPreprocessBench({ lines })));
      return;
    }
    for (const flag of ["reviews", "meta", "category"] as const) {
      if (!values[flag]) throw new UsageError(`${NAME}: --${flag} is required (see r2ec preprocess --help)`);
    }
    const k = intFlag(NAME, "k", values.k, PREPROCESS_DEFAULTS.k);
    const window = intFlag(NAME, "window", values.window, PREPROCESS_DEFAULTS.window);
    const minItems = intFlag(NAME, "min-items", values["min-items"], PREPROCESS_DEFAULTS.minItems);
    if (k < 0) throw new UsageError(`${NAME}: --k must be ≥ 0, got ${k}`);
    if (window < 1) throw new UsageError(`${NAME}: --window must be ≥ 1, got ${window}`);
    const start = checkMonth("start", values.start ?? PREPROCESS_DEFAULTS.start);
    const end = checkMonth("end", values.end ?? PREPROCESS_DEFAULTS.end);
    if (monthStart(start) > monthStart(end)) {
      throw new UsageError(`${NAME}: --start ${start} is after --end ${end}`);
    }
    const out = values.out ?? defaultOutDir(values.category!, k, start, end);
    const result = await preprocess({
      reviews: values.reviews!,
      meta: values.meta!,
      category: values.category!,
      out,
      k,
      start,
      end,
      window,
      minItems,
      strict: values.strict ?? false,
      force: values.force ?? false,
      log: (message) => console.error(message),
    });
    console.log(formatReport(result.info));
    console.log(`wrote ${out} in ${result.seconds.toFixed(1)} s`);
  },
};
