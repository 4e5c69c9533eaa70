/**
 * Chat templates: the `chat_template` of `tokenizer_config.json` rendered by npm `@huggingface/jinja`
 * the way transformers 4.48 `apply_chat_template(..., tokenize=False)` does (rrec-spec §B.3).
 *
 * @module
 */
import { Template } from "@huggingface/jinja";
import { type JsonObject, oneLine } from "./json_file.ts";

/** One chat turn. */
export interface ChatMessage {
  role: string;
  content: string;
}

/** Options of {@linkcode applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** Append the template's opening of an assistant turn (e.g. `<|im_start|>assistant\n`). */
  addGenerationPrompt?: boolean;
  /** End the text right after the final message's content, with no end-of-turn token (rrec-spec §B.3). */
  continueFinalMessage?: boolean;
}

/** The special-token fields transformers passes to every chat template (its `special_tokens_map`). */
const SPECIAL_TOKEN_FIELDS = [
  "bos_token",
  "eos_token",
  "unk_token",
  "sep_token",
  "pad_token",
  "cls_token",
  "mask_token",
  "additional_special_tokens",
];

const compiledTemplates = new Map<string, Template>();

/**
 * Renders `messages` with the chat template of `config` (a parsed `tokenizer_config.json`).
 *
 * @example
 * ```ts
 * const tokenizer = await loadTokenizer("models/Qwen2.5-3B-Instruct");
 * applyChatTemplate(tokenizer.config, [{ role: "user", content: "Hi" }], { addGenerationPrompt: true });
 * // "<|im_start|>system\nYou are Qwen, …<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
 * applyChatTemplate(tokenizer.config, [
 *   { role: "user", content: "Hi" },
 *   { role: "assistant", content: "<answer>" },
 * ], { continueFinalMessage: true }); // "…<|im_start|>assistant\n<answer>"
 * ```
 */
export function applyChatTemplate(
  config: JsonObject,
  messages: readonly ChatMessage[],
  options: ChatTemplateOptions = {},
): string {
  const { addGenerationPrompt = false, continueFinalMessage = false } = options;
  if (addGenerationPrompt && continueFinalMessage) {
    throw new Error("Chat template options addGenerationPrompt and continueFinalMessage cannot be combined");
  }
  const source = chatTemplateSource(config);
  let template = compiledTemplates.get(source);
  if (template === undefined) {
    try {
      template = new Template(source);
    } catch (error) {
      throw new Error(`Invalid chat_template in tokenizer_config.json: ${oneLine(error)}`);
    }
    compiledTemplates.set(source, template);
  }
  const context: JsonObject = {
    messages: messages.map((message) => ({ ...message })),
    add_generation_prompt: addGenerationPrompt,
  };
  for (const field of SPECIAL_TOKEN_FIELDS) {
    const value = specialTokenValue(config[field]);
    if (value !== undefined) context[field] = value;
  }
  let rendered: string;
  try {
    rendered = template.render(context);
  } catch (error) {
    throw new Error(`Chat template of tokenizer_config.json failed: ${oneLine(error)}`);
  }
  if (!continueFinalMessage) return rendered;
  const finalMessage = messages.at(-1)?.content;
  if (finalMessage === undefined) {
    throw new Error("Chat template option continueFinalMessage needs a message");
  }
  return cutAfterFinalMessage(rendered, finalMessage);
}

/**
 * Cuts `rendered` right after the last occurrence of `finalMessage`, as transformers 4.48 does for
 * `continue_final_message`: the stripped message is looked for; if the template kept it verbatim the
 * cut keeps its leading-stripped length, otherwise its stripped length (templates that `|trim`).
 *
 * @example
 * ```ts
 * cutAfterFinalMessage("<u>hi</u><a>ok</a>", "ok"); // "<u>hi</u><a>ok"
 * ```
 */
export function cutAfterFinalMessage(rendered: string, finalMessage: string): string {
  const stripped = pythonStrip(finalMessage);
  const location = rendered.lastIndexOf(stripped);
  if (location < 0) {
    throw new Error(
      "Chat template option continueFinalMessage is set but the final message does not appear in the rendered chat",
    );
  }
  const leftStrippedLength = pythonStrip(finalMessage, "start").length;
  const verbatim = rendered.slice(location, location + leftStrippedLength) === finalMessage;
  return rendered.slice(0, location + (verbatim ? leftStrippedLength : stripped.length));
}

/** Python's `str.isspace()` characters (JS `\s` lacks U+001C–U+001F and U+0085 and adds U+FEFF). */
const PYTHON_SPACE = new Set(
  "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000",
);

/** Python's `str.strip()` / `str.lstrip()` with no argument. */
function pythonStrip(text: string, side: "both" | "start" = "both"): string {
  let start = 0;
  let end = text.length;
  while (start < end && PYTHON_SPACE.has(text[start])) start++;
  if (side === "both") { while (end > start && PYTHON_SPACE.has(text[end - 1])) end--; }
  return text.slice(start, end);
}

/** The template string: `chat_template` as a string, or the "default" entry of a named list. */
function chatTemplateSource(config: JsonObject): string {
  const template = config.chat_template;
  if (typeof template === "string") return template;
  if (Array.isArray(template)) {
    const entry = template.find((candidate) => candidate?.name === "default");
    if (typeof entry?.template === "string") return entry.template;
    throw new Error('Invalid chat_template in tokenizer_config.json: a list without a "default" entry');
  }
  throw new Error("Missing chat_template in tokenizer_config.json (and no chat_template.jinja)");
}

/** A special-token field as the template sees it: a token's content string (or a list of them). */
function specialTokenValue(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) return value.map(specialTokenValue);
  if (typeof value === "object" && typeof (value as JsonObject).content === "string") {
    return (value as JsonObject).content;
  }
  return value;
}
