/**
 * `r2ec prompts`: prints the user prompt of one sample and the item prompt of its target (or of any
 * item), and with `--model` the chat-templated model inputs and their token counts.
 *
 * @module
 */
import { type Command, intFlag, parseFlags, UsageError } from "./command.ts";
import {
  PAD_ITEM_ID,
  readDatasetInfo,
  readItems,
  readSplit,
  type SplitName,
  SPLITS,
} from "../data/dataset.ts";
import {
  DEFAULT_PROMPTS_DIR,
  loadPromptTemplates,
  PAD_ITEM_FIELDS,
  renderItemPrompt,
  renderUserPrompt,
} from "../prompts/render.ts";
import { generationPromptText, ITEM_MAX_TOKENS, itemInputText, USER_MAX_TOKENS } from "../prompts/chat.ts";
import { loadTokenizer } from "../text/tokenizer.ts";

const HELP =
  `Usage: r2ec prompts --dataset DIR [--split test] [--index 0] [--item ID] [--model DIR] [--templates DIR]

Prints the R²ec user prompt of one sample (its history, oldest first) and the item prompt of its
target item, exactly as training and evaluation see them (rrec-spec §B). With --model, also prints
the chat-templated generation prompt and item input of that model's tokenizer and their token counts.

Flags:
  --dataset DIR     dataset directory written by "r2ec preprocess" (required)
  --split NAME      train | valid | test (default: test)
  --index N         sample number within the split, from 0 (default: 0)
  --item ID         show this item instead of the sample's target: an item id (0 = the pad item)
                    or a parent_asin (default: the target)
  --model DIR       model folder with tokenizer.json and tokenizer_config.json (default: none)
  --templates DIR   folder with user.jinja and item.jinja (default: the bundled prompts/)

Examples:
  deno task r2ec prompts --dataset data/Sample_Instruments_0_2022-10-2023-10
  deno task r2ec prompts --dataset DIR --split train --index 5 --item 0
  deno task r2ec prompts --dataset DIR --model models/Qwen2.5-3B-Instruct`;

/** Options of {@linkcode describePrompts}. */
export interface PromptsOptions {
  dataset: string;
  split: SplitName;
  index: number;
  /** Item id or parent_asin; the sample's target when absent. */
  item?: string;
  /** Model folder whose tokenizer and chat template to apply. */
  model?: string;
  /** Folder with the Jinja templates. */
  templates: string;
}

function section(title: string, text: string): string {
  return `=== ${title} ===\n${text}\n`;
}

/**
 * Builds the text `r2ec prompts` prints.
 *
 * @example
 * ```ts
 * console.log(await describePrompts({ dataset: "data/ds", split: "test", index: 0, templates: DEFAULT_PROMPTS_DIR }));
 * ```
 */
export async function describePrompts(options: PromptsOptions): Promise<string> {
  const [info, items, samples] = await Promise.all([
    readDatasetInfo(options.dataset),
    readItems(options.dataset),
    readSplit(options.dataset, options.split),
  ]);
  const sample = samples[options.index];
  if (!sample) {
    throw new UsageError(
      `prompts: --index ${options.index} is outside ${options.split} (0..${samples.length - 1})`,
    );
  }
  const templates = loadPromptTemplates(options.templates);
  const userMessage = renderUserPrompt(sample, info.category, { window: info.options.window, templates });

  let itemLabel: string;
  let itemMessage: string;
  const wanted = options.item ?? String(sample.item_id);
  if (wanted === String(PAD_ITEM_ID)) {
    itemLabel = `pad item ${PAD_ITEM_ID}`;
    itemMessage = renderItemPrompt(PAD_ITEM_FIELDS, info.category, templates);
  } else {
    const item = /^\d+$/.test(wanted)
      ? items[Number(wanted) - 1]
      : items.find((candidate) => candidate.parent_asin === wanted);
    if (!item) {
      throw new UsageError(
        `prompts: --item ${wanted} is neither an item id 0..${items.length} nor a parent_asin`,
      );
    }
    itemLabel = `item ${item.item_id} ${item.parent_asin}${options.item === undefined ? " (target)" : ""}`;
    itemMessage = renderItemPrompt(item, info.category, templates);
  }

  const parts = [
    section(
      `user prompt: ${options.split} #${options.index}, user ${sample.user_id}, ${sample.history_item_id.length} history items`,
      userMessage,
    ),
    section(`item prompt: ${itemLabel}`, itemMessage),
  ];
  if (options.model !== undefined) {
    const tokenizer = await loadTokenizer(options.model);
    const count = (text: string) => tokenizer.encode(text, { addSpecialTokens: false }).length;
    const generation = generationPromptText(tokenizer.config, userMessage);
    const itemInput = itemInputText(tokenizer.config, itemMessage);
    parts.push(
      section(`generation prompt: ${count(generation)} tokens (cut at ${USER_MAX_TOKENS})`, generation),
      section(`item input: ${count(itemInput)} tokens (cut at ${ITEM_MAX_TOKENS})`, itemInput),
    );
  }
  return parts.join("\n");
}

export const promptsCommand: Command = {
  name: "prompts",
  summary: "print the user and item prompts of a dataset sample (and their chat-templated token counts)",
  help: HELP,
  async run(argv) {
    const { values } = parseFlags("prompts", argv, {
      dataset: { type: "string" },
      split: { type: "string", default: "test" },
      index: { type: "string" },
      item: { type: "string" },
      model: { type: "string" },
      templates: { type: "string", default: DEFAULT_PROMPTS_DIR },
    });
    if (values.dataset === undefined) throw new UsageError("prompts: --dataset DIR is required");
    const split = values.split as SplitName;
    if (!SPLITS.includes(split)) {
      throw new UsageError(`prompts: --split must be one of ${SPLITS.join(", ")}, got "${values.split}"`);
    }
    const index = intFlag("prompts", "index", values.index, 0);
    console.log(
      await describePrompts({
        dataset: values.dataset,
        split,
        index,
        item: values.item,
        model: values.model,
        templates: values.templates,
      }),
    );
  },
};
