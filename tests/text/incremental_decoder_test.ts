import assert from "node:assert/strict";
import { findStopString, IncrementalDecoder } from "../../src/text/incremental_decoder.ts";
import { loadTokenizer, type Tokenizer } from "../../src/text/tokenizer.ts";
import { once, readJson, sharedDir } from "./helpers.ts";

const { dir: STORIES_DIR, absent: noStories } = sharedDir("fixtures/stories260k");
const { dir: QWEN_DIR, absent: noQwen } = sharedDir("fixtures/qwen2.5-tokenizer");
const storiesTokenizer = once(() => loadTokenizer(STORIES_DIR));
const qwenTokenizer = once(() => loadTokenizer(QWEN_DIR));

function stream(tokenizer: Tokenizer, ids: number[], skipSpecialTokens = false): string[] {
  const decoder = new IncrementalDecoder(tokenizer, { skipSpecialTokens });
  const deltas = ids.map((id) => decoder.push(id));
  deltas.push(decoder.flush());
  assert.equal(decoder.text, deltas.join(""));
  return deltas;
}

Deno.test({
  name: "IncrementalDecoder never shows half a character of byte-level BPE text",
  ignore: noQwen,
  fn: async () => {
    const tokenizer = await qwenTokenizer();
    const text = "Price 😀 naïve café 日本語 ᚠᛇᚻ 𝔘𝔫𝔦 — ok <answer>";
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    const partial = ids.filter((id) => tokenizer.decode([id]).includes("\uFFFD"));
    assert.ok(partial.length > 0, "the text must contain characters split across tokens");
    const deltas = stream(tokenizer, ids);
    assert.equal(deltas.join(""), text);
    for (const delta of deltas) assert.ok(!delta.includes("\uFFFD"), JSON.stringify(delta));
  },
});

Deno.test({
  name: "IncrementalDecoder releases text after bytes that never form a character",
  ignore: noQwen,
  fn: async () => {
    const tokenizer = await qwenTokenizer();
    const invalidByte = tokenizer.tokenToId("ÿ"); // byte 0xFF, never valid in UTF-8
    assert.notEqual(invalidByte, undefined);
    const words = tokenizer.encode(" one two three four five six <answer>", { addSpecialTokens: false });
    const decoder = new IncrementalDecoder(tokenizer);
    for (const id of [invalidByte!, ...words]) decoder.push(id);
    assert.match(decoder.text, /^\uFFFD one two three/);
    decoder.flush();
    assert.equal(decoder.text, tokenizer.decode([invalidByte!, ...words]));
  },
});

Deno.test({
  name: "IncrementalDecoder streams the stories260k continuation with its word spaces",
  ignore: noStories,
  fn: async () => {
    const tokenizer = await storiesTokenizer();
    const reference = await readJson(`${STORIES_DIR}/reference_outputs.json`);
    const { output_ids: ids, text } = reference.greedy_no_prompt;
    assert.equal(stream(tokenizer, ids, true).join(""), text);
    const emoji = tokenizer.encode("héllo wörld 😀", { addSpecialTokens: false });
    const deltas = stream(tokenizer, emoji);
    assert.equal(deltas.join(""), "héllo wörld 😀");
    for (const delta of deltas) assert.ok(!delta.includes("\uFFFD"), JSON.stringify(delta));
  },
});

Deno.test("findStopString() returns the end of the earliest stop string", () => {
  assert.deepEqual(findStopString("so B</a> then <answer> x", ["<answer>", "</a>"]), {
    stop: "</a>",
    end: 8,
  });
  assert.deepEqual(findStopString("I pick <answer>", ["<answer>"]), { stop: "<answer>", end: 15 });
  assert.equal(findStopString("no stop here", ["<answer>", ""]), null);
});

Deno.test("findStopString() finds a stop string that straddles the previously checked text", () => {
  const text = "reasoning <ans" + "wer>";
  assert.deepEqual(findStopString(text, ["<answer>"], "reasoning <ans".length), {
    stop: "<answer>",
    end: text.length,
  });
  assert.equal(findStopString("<answer> later", ["<answer>"], 9), null);
});
