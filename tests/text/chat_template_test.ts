import assert from "node:assert/strict";
import { applyChatTemplate, type ChatMessage, cutAfterFinalMessage } from "../../src/text/chat_template.ts";
import { loadTokenizer } from "../../src/text/tokenizer.ts";
import { once, readJson, sharedDir } from "./helpers.ts";

const { dir: QWEN_DIR, absent: noQwen } = sharedDir("fixtures/qwen2.5-tokenizer");
const qwenTokenizer = once(() => loadTokenizer(QWEN_DIR));

// The shared Qwen fixture's tokenizer_config.json carries no chat_template, so the one Qwen2.5-Instruct
// ships is kept beside the tests; Gemma-2-it's is kept likewise (both quoted in rrec-spec §B.3).
const qwenTemplate = Deno.readTextFileSync(
  new URL("./fixtures/qwen2_5_chat_template.jinja", import.meta.url),
);
const gemmaTemplate = Deno.readTextFileSync(
  new URL("./fixtures/gemma2_chat_template.jinja", import.meta.url),
);
const gemmaConfig = {
  bos_token: "<bos>",
  eos_token: "<eos>",
  pad_token: "<pad>",
  chat_template: gemmaTemplate,
};

const QWEN_PREFIX =
  "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n";
const USER_MSG = "The user bought:\n71d 19.3h ago: [Fender Strings] (5.0)\nWhat next? ";
const ITEM_MSG = "Title: Capo\nUser Rating: 4.5\nNumber of Buyers: 12\nDescription: ";
const REASONING = "  They play guitar, so accessories fit. <answer>";

async function qwenConfig() {
  const tokenizer = await qwenTokenizer();
  return { tokenizer, config: { ...tokenizer.config, chat_template: qwenTemplate } };
}

Deno.test({
  name:
    "applyChatTemplate() renders the Qwen generation prompt with the default system prompt (rrec-spec §B.3)",
  ignore: noQwen,
  fn: async () => {
    const { config } = await qwenConfig();
    const text = applyChatTemplate(config, [{ role: "user", content: USER_MSG }], {
      addGenerationPrompt: true,
    });
    assert.equal(text, `${QWEN_PREFIX}<|im_start|>user\n${USER_MSG}<|im_end|>\n<|im_start|>assistant\n`);
  },
});

Deno.test({
  name: "applyChatTemplate() ends the Qwen trajectory and item inputs right after <answer>",
  ignore: noQwen,
  fn: async () => {
    const { config } = await qwenConfig();
    const trajectory = applyChatTemplate(config, [
      { role: "user", content: USER_MSG },
      { role: "assistant", content: REASONING },
    ], { continueFinalMessage: true });
    assert.equal(
      trajectory,
      `${QWEN_PREFIX}<|im_start|>user\n${USER_MSG}<|im_end|>\n<|im_start|>assistant\n${REASONING}`,
    );
    const item = applyChatTemplate(config, [
      { role: "user", content: ITEM_MSG },
      { role: "assistant", content: "<answer>" },
    ], { continueFinalMessage: true });
    assert.equal(
      item,
      `${QWEN_PREFIX}<|im_start|>user\n${ITEM_MSG}<|im_end|>\n<|im_start|>assistant\n<answer>`,
    );
  },
});

Deno.test({
  name: "applyChatTemplate() output with a system message tokenizes to the Qwen reference encoding",
  ignore: noQwen,
  fn: async () => {
    const { tokenizer, config } = await qwenConfig();
    const reference = await readJson(`${QWEN_DIR}/reference_encodings.json`);
    const text = applyChatTemplate(config, [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: "Recommend an item." },
    ], { addGenerationPrompt: true });
    assert.ok(text in reference.cases, `rendered text is not a reference case: ${JSON.stringify(text)}`);
    assert.deepEqual(tokenizer.encode(text, { addSpecialTokens: false }), reference.cases[text]);
  },
});

Deno.test("applyChatTemplate() renders the Gemma-2 generation prompt with <bos> and a trimmed user turn", () => {
  const text = applyChatTemplate(gemmaConfig, [{ role: "user", content: USER_MSG }], {
    addGenerationPrompt: true,
  });
  assert.equal(text, `<bos><start_of_turn>user\n${USER_MSG.trim()}<end_of_turn>\n<start_of_turn>model\n`);
});

Deno.test("applyChatTemplate() ends Gemma-2 trajectory and item inputs at <answer> with trimmed content", () => {
  const trajectory = applyChatTemplate(gemmaConfig, [
    { role: "user", content: USER_MSG },
    { role: "assistant", content: REASONING },
  ], { continueFinalMessage: true });
  assert.equal(
    trajectory,
    `<bos><start_of_turn>user\n${USER_MSG.trim()}<end_of_turn>\n<start_of_turn>model\n${REASONING.trim()}`,
  );
  const item = applyChatTemplate(gemmaConfig, [
    { role: "user", content: ITEM_MSG },
    { role: "assistant", content: "<answer>" },
  ], { continueFinalMessage: true });
  assert.ok(item.includes("Description:<end_of_turn>"), "the empty description's trailing space is trimmed");
  assert.equal(
    item,
    `<bos><start_of_turn>user\n${ITEM_MSG.trim()}<end_of_turn>\n<start_of_turn>model\n<answer>`,
  );
});

Deno.test("applyChatTemplate() reports a Gemma-2 system message as a one-line template error", () => {
  const messages: ChatMessage[] = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }];
  assert.throws(() => applyChatTemplate(gemmaConfig, messages), /System role not supported/);
});

Deno.test("applyChatTemplate() names the missing chat_template", () => {
  assert.throws(() => applyChatTemplate({}, [{ role: "user", content: "Hi" }]), /Missing chat_template/);
});

Deno.test("applyChatTemplate() rejects addGenerationPrompt together with continueFinalMessage", () => {
  assert.throws(
    () =>
      applyChatTemplate(gemmaConfig, [{ role: "user", content: "Hi" }], {
        addGenerationPrompt: true,
        continueFinalMessage: true,
      }),
    /cannot be combined/,
  );
});

Deno.test("cutAfterFinalMessage() cuts after the LAST occurrence of the final message", () => {
  assert.equal(cutAfterFinalMessage("<u>ok</u><a>ok</a>\n", "ok"), "<u>ok</u><a>ok");
});

Deno.test("cutAfterFinalMessage() keeps trailing spaces a template rendered verbatim", () => {
  assert.equal(cutAfterFinalMessage("<a>think  </a>", "think  "), "<a>think  ");
});

Deno.test("cutAfterFinalMessage() drops trailing spaces of a message with leading spaces, as transformers does", () => {
  // transformers compares the rendered slice with the unstripped message, which never matches here.
  assert.equal(cutAfterFinalMessage("<a>  think  </a>", "  think  "), "<a>  think");
});

Deno.test("cutAfterFinalMessage() cuts at the stripped length when the template trimmed the message", () => {
  assert.equal(cutAfterFinalMessage("<a>think</a>", "think \n"), "<a>think");
});

Deno.test("cutAfterFinalMessage() rejects a final message the rendering lost", () => {
  assert.throws(() => cutAfterFinalMessage("<a></a>", "gone"), /does not appear/);
});
