/**
 * `r2ec pretrain`: causal-LM training from text on a fresh tiny model (with its own BPE
 * tokenizer) or on an existing HF model folder, fully or with LoRA (issue 3, item 7).
 *
 * @example
 * ```sh
 * deno task pretrain
 * deno task pretrain --max-steps 1000 --resume
 * ```
 *
 * @module
 */
import { type Command, type FlagSpec, parseFlags } from "./command.ts";
import { readConfigFile, resolveConfig } from "../train/config.ts";
import { KEEP_CHECKPOINTS, pretrain, resumeBase } from "../train/pretrain.ts";
import { PRETRAIN_DEFAULTS, PRETRAIN_KEY_HELP, type PretrainConfig } from "../train/pretrain_config.ts";

const NAME = "pretrain";

/** `max_steps` → `--max-steps`. */
function flagOf(key: string): string {
  return key.replaceAll("_", "-");
}

const KEYS = Object.keys(PRETRAIN_DEFAULTS) as (keyof PretrainConfig)[];

/** Placeholders of the non-numeric keys in the help text (numbers show N). */
const VALUE_NAMES: Partial<Record<keyof PretrainConfig, string>> = {
  data: "FILE",
  out: "DIR",
  model: "DIR",
  schedule: "NAME",
  lora_targets: "LIST",
  matmul_precision: "NAME",
};

/** `text` wrapped to `width` columns, continuation lines indented by `indent`. */
function wrap(text: string, indent: number, width = 100): string {
  const lines = [""];
  for (const word of text.split(" ")) {
    const line = lines[lines.length - 1];
    if (line.length > 0 && indent + line.length + 1 + word.length > width) lines.push(word);
    else lines[lines.length - 1] = line ? `${line} ${word}` : word;
  }
  return lines.join("\n" + " ".repeat(indent));
}

const FLAG_WIDTH = 26;

function keyLines(): string {
  return KEYS.map((key) => {
    const flag = `  --${flagOf(key)} ${VALUE_NAMES[key] ?? "N"}`.padEnd(FLAG_WIDTH);
    return flag +
      wrap(`${PRETRAIN_KEY_HELP[key]} (default ${JSON.stringify(PRETRAIN_DEFAULTS[key])})`, FLAG_WIDTH);
  }).join("\n");
}

const HELP = `Usage: r2ec pretrain [--config FILE] [--resume] [--KEY VALUE ...]

Trains a causal LM on text (next-token cross-entropy, AdamW, warm-up + constant or cosine LR,
gradient clipping and accumulation). With no flags it makes a fresh tiny Qwen2-style model from
the bundled sample: a BPE tokenizer trained on ${PRETRAIN_DEFAULTS.data} (cached in OUT/tokenizer
for the same text), seeded random weights, then training into ${PRETRAIN_DEFAULTS.out}/.

The run directory holds config.json (the resolved config), log.jsonl (trl key names: a record
per step with loss, grad_norm, learning_rate, tokens_per_s, num_tokens, epoch; eval_loss
records), checkpoint-N/ (HF model or PEFT adapter, optimizer.safetensors, trainer_state.json;
the newest ${KEEP_CHECKPOINTS} are kept) and, at the end, model/ (HF layout with the tokenizer, LoRA merged:
r2ec generate --model OUT/model). Checkpoints are written under a temporary name and renamed,
so a killed run leaves only complete ones. A fresh run into an existing OUT replaces its
checkpoints; --resume continues the newest one.

Settings are a flat config: defaults, then --config FILE (a JSON object with the keys below),
then flags. Each key is also a flag:
${keyLines()}
  --config FILE           JSON file of settings (applied before flags)
  --resume                continue OUT's newest complete checkpoint: same step, next batch and
                          optimizer state; its saved config is the base, flags override it
  --help                  this text

Progress goes to stderr (one updating line on a terminal), the config and the summary to stdout.
A NaN or infinite loss or gradient norm stops the run with an error naming the step.

Examples:
  deno task pretrain
  deno task pretrain --max-steps 50 --out /tmp/tiny --eval-interval 10
  deno task pretrain --resume --max-steps 600
  deno task pretrain --model runs/pretrain-tiny/model --data notes.jsonl --lr 3e-4 --out runs/more
  deno task pretrain --model models/qwen --lora-r 4 --lora-alpha 128 --lora-targets q,k,v,o,gate,up,down \\
    --data notes.jsonl --batch-size 2 --seq-len 256 --grad-accum-steps 4 --out runs/qwen-lora`;

/** The `pretrain` command. */
export const pretrainCommand: Command = {
  name: NAME,
  summary: "train a causal LM on text (fresh tiny model or --model DIR; full or LoRA)",
  help: HELP,
  async run(argv) {
    const spec: FlagSpec = { config: { type: "string" }, resume: { type: "boolean" } };
    for (const key of KEYS) spec[flagOf(key)] = { type: "string" };
    const { values } = parseFlags(NAME, argv, spec);
    const flags: Record<string, unknown> = {};
    for (const key of KEYS) flags[key] = values[flagOf(key)];
    const file = typeof values.config === "string" ? await readConfigFile(values.config) : undefined;
    let config = resolveConfig(PRETRAIN_DEFAULTS, file, flags, NAME);
    const resume = values.resume === true;
    if (resume) {
      const { state } = await resumeBase(config.out);
      const saved = resolveConfig(PRETRAIN_DEFAULTS, state.config, {}, `${config.out} checkpoint`);
      config = resolveConfig(saved, file, flags, NAME);
    }
    await pretrain(config, { resume });
  },
};
