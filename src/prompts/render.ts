/**
 * Renders the R²ec user and item messages (rrec-spec §B.1, §B.2, §B.4) from `prompts/*.jinja`.
 *
 * Values are formatted here, in TypeScript, exactly as the Python reference prints them (ratings
 * like `str(float)`, time deltas with ties-to-even `:.1f`, the reversed and cut description), so
 * the templates only lay the text out and stay easy to edit.
 *
 * @example
 * ```ts
 * const user = renderUserPrompt(sample, "Musical_Instruments");
 * const item = renderItemPrompt(itemById(items, sample.item_id), "Musical_Instruments");
 * ```
 *
 * @module
 */
import { Template } from "@huggingface/jinja";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ItemRecord, SampleRecord } from "../data/dataset.ts";
import { categoryWording } from "./category.ts";
import { formatTimedelta, pythonFloat } from "./format.ts";

/** The text whose last token's hidden state is the user or item embedding (rrec-spec §B.1, §H.1). */
export const EMB_TOKEN = "<answer>";
/** The closing tag named in the prompts; never generated (rrec-spec §B.5). */
export const EMB_END_TOKEN = "</answer>";
/** History entries shown in a user prompt, the reference's `window_size` (rrec-spec §B.2). */
export const DEFAULT_HISTORY_WINDOW = 20;
/** Words kept from a longer description before `...` is appended (rrec-spec §B.4). */
export const DESCRIPTION_MAX_WORDS = 100;

const BUNDLED_PROMPTS_URL = new URL("../../prompts/", import.meta.url);

/**
 * The directory holding the bundled `user.jinja` and `item.jinja` (next to `src/`). When r2ec is
 * imported from a non-file URL it is that URL, and templates must be passed explicitly.
 */
export const DEFAULT_PROMPTS_DIR: string = BUNDLED_PROMPTS_URL.protocol === "file:"
  ? fileURLToPath(BUNDLED_PROMPTS_URL)
  : BUNDLED_PROMPTS_URL.href;

/** The two parsed prompt templates. */
export interface PromptTemplates {
  user: Template;
  item: Template;
}

/** The sample fields a user prompt needs. */
export type UserPromptSample = Pick<
  SampleRecord,
  "history_item_title" | "history_rating" | "history_timestamp" | "timestamp"
>;

/** The item fields an item prompt needs. */
export type ItemPromptFields = Pick<ItemRecord, "title" | "average_rating" | "rating_number" | "description">;

/** Options of {@linkcode renderUserPrompt}. */
export interface UserPromptOptions {
  /** Most recent history entries to show (default {@linkcode DEFAULT_HISTORY_WINDOW}). */
  window?: number;
  /** Templates to use instead of the bundled ones. */
  templates?: PromptTemplates;
}

/** The pad item (id 0) as the reference renders it (rrec-spec §B.4). */
export const PAD_ITEM_FIELDS: Readonly<ItemPromptFields> = Object.freeze({
  title: "pad_title",
  average_rating: 0,
  rating_number: 0,
  description: [],
});

// Python's str.split() separators (str.isspace), which differ from JavaScript's \s.
// deno-lint-ignore no-control-regex -- \x1c-\x1f are whitespace to Python
const PYTHON_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

let bundledTemplates: PromptTemplates | undefined;

function parseTemplate(path: string): Template {
  try {
    return new Template(Deno.readTextFileSync(path));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message.split("\n")[0]}`);
  }
}

/**
 * Reads and parses `user.jinja` and `item.jinja` from `dir` (default: the bundled `prompts/`).
 *
 * @example
 * ```ts
 * const templates = loadPromptTemplates("my-prompts");
 * renderUserPrompt(sample, "Video_Games", { templates });
 * ```
 */
export function loadPromptTemplates(dir: string = DEFAULT_PROMPTS_DIR): PromptTemplates {
  return { user: parseTemplate(join(dir, "user.jinja")), item: parseTemplate(join(dir, "item.jinja")) };
}

function templatesOrBundled(templates: PromptTemplates | undefined): PromptTemplates {
  if (templates) return templates;
  bundledTemplates ??= loadPromptTemplates();
  return bundledTemplates;
}

/**
 * The description as the item prompt shows it: paragraphs in reverse order joined by spaces, and
 * when that has more than 100 whitespace-separated words, the first 100 joined by spaces plus
 * `...`; otherwise unchanged, inner newlines included (rrec-spec §B.4, §H.16).
 *
 * @example
 * ```ts
 * describeItem(["first", "second"]); // "second first"
 * ```
 */
export function describeItem(description: readonly string[]): string {
  const joined = [...description].reverse().join(" ");
  const words = joined.split(PYTHON_WHITESPACE).filter((word) => word !== "");
  if (words.length <= DESCRIPTION_MAX_WORDS) return joined;
  return `${words.slice(0, DESCRIPTION_MAX_WORDS).join(" ")}...`;
}

/**
 * The user message: the request for `category`, then the last `window` purchases oldest first,
 * each as `{delta} ago: [{title}] ({rating})` (rrec-spec §B.1, §B.2).
 *
 * @example
 * ```ts
 * renderUserPrompt(
 *   { history_item_title: ["Pick set"], history_rating: [1], history_timestamp: [0], timestamp: 3_912_000 },
 *   "Musical_Instruments",
 * ); // "Analyze in depth … (out of 5):\n1h 5.2min ago: [Pick set] (1.0)"
 * ```
 */
export function renderUserPrompt(
  sample: UserPromptSample,
  category: string,
  opts: UserPromptOptions = {},
): string {
  const window = opts.window ?? DEFAULT_HISTORY_WINDOW;
  const { history_item_title: titles, history_rating: ratings, history_timestamp: times } = sample;
  if (titles.length !== ratings.length || titles.length !== times.length) {
    throw new Error(
      `Sample history fields differ in length: ${titles.length} titles, ${ratings.length} ratings, ${times.length} timestamps`,
    );
  }
  const first = Math.max(0, titles.length - window);
  const history = titles.slice(first).map((title, i) => ({
    ago: formatTimedelta(sample.timestamp, times[first + i]),
    title,
    rating: pythonFloat(ratings[first + i]),
  }));
  return templatesOrBundled(opts.templates).user.render({
    category: categoryWording(category),
    emb_token: EMB_TOKEN,
    emb_end_token: EMB_END_TOKEN,
    history,
  });
}

/**
 * The item message: the request for `category`, then title, average rating, number of ratings
 * and description (rrec-spec §B.1, §B.4). Render the pad item with {@linkcode PAD_ITEM_FIELDS}.
 *
 * @example
 * ```ts
 * renderItemPrompt(PAD_ITEM_FIELDS, "Video_Games");
 * // "Summarize … video game inside <answer> and </answer>.\n\nTitle: pad_title\nUser Rating: 0.0\n…Description: "
 * ```
 */
export function renderItemPrompt(
  item: ItemPromptFields,
  category: string,
  templates?: PromptTemplates,
): string {
  // An integer prints as one; a fractional count prints as a Python float would.
  const ratingNumber = Number.isInteger(item.rating_number)
    ? String(item.rating_number)
    : pythonFloat(item.rating_number);
  return templatesOrBundled(templates).item.render({
    category: categoryWording(category),
    emb_token: EMB_TOKEN,
    emb_end_token: EMB_END_TOKEN,
    title: item.title,
    average_rating: pythonFloat(item.average_rating),
    rating_number: ratingNumber,
    description: describeItem(item.description),
  });
}
