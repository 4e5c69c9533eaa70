import { strictEqual as assertEquals } from "node:assert/strict";
import { generationPromptText, itemInputText, trajectoryText, withEmbToken } from "../../src/prompts/chat.ts";
import { PAD_ITEM_FIELDS, renderItemPrompt } from "../../src/prompts/render.ts";

// Reduced chat templates with the behaviour rrec-spec §B.3 describes: ChatML with Qwen's default
// system prompt (no trim), and Gemma-2's turns with <bos> and |trim. Real model folders carry the
// full templates in tokenizer_config.json; these keep the test independent of downloaded files.
const QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
const QWEN_LIKE = {
  chat_template: "{%- if messages[0]['role'] == 'system' %}" +
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}" +
    `{%- else %}{{- '<|im_start|>system\\n${QWEN_DEFAULT_SYSTEM}<|im_end|>\\n' }}{%- endif %}` +
    "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}" +
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}" +
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
};
const GEMMA_LIKE = {
  bos_token: "<bos>",
  chat_template: "{{ bos_token }}{% for message in messages %}" +
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
};

const USER_MSG = "Analyze in depth…(out of 5):\n71d 19.3h ago: [Fender Strings] (5.0)";
const QWEN_PREFIX = `<|im_start|>system\n${QWEN_DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n`;

Deno.test("generationPromptText() opens an assistant turn after the user message (Qwen layout)", () => {
  assertEquals(
    generationPromptText(QWEN_LIKE, USER_MSG),
    `${QWEN_PREFIX}${USER_MSG}<|im_end|>\n<|im_start|>assistant\n`,
  );
});

Deno.test("trajectoryText() ends exactly at <answer>, appending it only when absent", () => {
  const expected = `${QWEN_PREFIX}${USER_MSG}<|im_end|>\n<|im_start|>assistant\nThey play guitar.<answer>`;
  assertEquals(trajectoryText(QWEN_LIKE, USER_MSG, "They play guitar."), expected);
  assertEquals(trajectoryText(QWEN_LIKE, USER_MSG, "They play guitar.<answer>"), expected);
  assertEquals(withEmbToken("x <answer> y"), "x <answer> y");
});

Deno.test("itemInputText() ends with the assistant turn <answer> and no end-of-turn token", () => {
  const item = renderItemPrompt(PAD_ITEM_FIELDS, "Musical_Instruments");
  assertEquals(
    itemInputText(QWEN_LIKE, item),
    `${QWEN_PREFIX}${item}<|im_end|>\n<|im_start|>assistant\n<answer>`,
  );
});

Deno.test("itemInputText() with a trimming template drops the empty description's trailing space", () => {
  const item = renderItemPrompt(PAD_ITEM_FIELDS, "Musical_Instruments");
  assertEquals(item.endsWith("Description: "), true);
  assertEquals(
    itemInputText(GEMMA_LIKE, item),
    `<bos><start_of_turn>user\n${item.trimEnd()}<end_of_turn>\n<start_of_turn>model\n<answer>`,
  );
  assertEquals(
    trajectoryText(GEMMA_LIKE, ` ${USER_MSG}\n`, "  Reasoning."),
    `<bos><start_of_turn>user\n${USER_MSG}<end_of_turn>\n<start_of_turn>model\nReasoning.<answer>`,
  );
});
