/**
 * The three chat-templated model inputs of R²ec (rrec-spec §B.3): the generation prompt, the
 * trajectory (user message + reasoning ending at `<answer>`) and the item input. No system message
 * is ever passed, so a template's default one (Qwen's) is used.
 *
 * @example
 * ```ts
 * const tokenizer = await loadTokenizer("models/Qwen2.5-3B-Instruct");
 * const prompt = generationPromptText(tokenizer.config, renderUserPrompt(sample, category));
 * const ids = tokenizer.encode(prompt, { addSpecialTokens: false });
 * ```
 *
 * @module
 */
import { applyChatTemplate } from "../text/chat_template.ts";
import type { JsonObject } from "../text/json_file.ts";
import { EMB_TOKEN } from "./render.ts";

/** Token budget of a user-side input (generation prompt or trajectory); longer ones are cut on the right. */
export const USER_MAX_TOKENS = 2048;
/** Token budget of an item input. */
export const ITEM_MAX_TOKENS = 768;

/**
 * `[user]` with the generation prompt appended: what reasoning is sampled from.
 *
 * @example
 * ```ts
 * generationPromptText(qwenConfig, "Hi");
 * // "<|im_start|>system\nYou are Qwen, …<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
 * ```
 */
export function generationPromptText(chatConfig: JsonObject, userMessage: string): string {
  return applyChatTemplate(chatConfig, [{ role: "user", content: userMessage }], {
    addGenerationPrompt: true,
  });
}

/**
 * The reasoning as the assistant turn: unchanged when it already contains `<answer>` (generation
 * stops at it and keeps it), else with `<answer>` appended directly (rrec-spec §B.3, §B.5).
 *
 * @example
 * ```ts
 * withEmbToken("I like it."); // "I like it.<answer>"
 * withEmbToken("I like it.<answer>"); // unchanged
 * ```
 */
export function withEmbToken(reasoning: string): string {
  return reasoning.includes(EMB_TOKEN) ? reasoning : reasoning + EMB_TOKEN;
}

/**
 * `[user, assistant = reasoning]` continued from the final message, so the text ends at the last
 * character of `<answer>`, where the user embedding is read.
 *
 * @example
 * ```ts
 * trajectoryText(qwenConfig, "Hi", "Because.");
 * // "…<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nBecause.<answer>"
 * ```
 */
export function trajectoryText(chatConfig: JsonObject, userMessage: string, reasoning: string): string {
  return applyChatTemplate(chatConfig, [
    { role: "user", content: userMessage },
    { role: "assistant", content: withEmbToken(reasoning) },
  ], { continueFinalMessage: true });
}

/**
 * `[user = item message, assistant = "<answer>"]` continued from the final message: the item
 * embedding is read at the last token of that `<answer>`.
 *
 * @example
 * ```ts
 * itemInputText(qwenConfig, renderItemPrompt(item, category)); // "…<|im_start|>assistant\n<answer>"
 * ```
 */
export function itemInputText(chatConfig: JsonObject, itemMessage: string): string {
  return applyChatTemplate(chatConfig, [
    { role: "user", content: itemMessage },
    { role: "assistant", content: EMB_TOKEN },
  ], { continueFinalMessage: true });
}
