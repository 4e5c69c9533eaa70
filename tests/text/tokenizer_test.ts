import assert from "node:assert/strict";
import { loadTokenizer } from "../../src/text/tokenizer.ts";
import { once, readJson, sharedDir, withTempDir } from "./helpers.ts";

const { dir: STORIES_DIR, absent: noStories } = sharedDir("fixtures/stories260k");
const { dir: QWEN_DIR, absent: noQwen } = sharedDir("fixtures/qwen2.5-tokenizer");
const storiesTokenizer = once(() => loadTokenizer(STORIES_DIR));
const qwenTokenizer = once(() => loadTokenizer(QWEN_DIR));

Deno.test({
  name: "loadTokenizer() encodes the stories260k tokenizer cases exactly, BOS included",
  ignore: noStories,
  fn: async () => {
    const tokenizer = await storiesTokenizer();
    const reference = await readJson(`${STORIES_DIR}/reference_outputs.json`);
    const cases = Object.entries(reference.tokenizer_cases as Record<string, number[]>);
    assert.ok(cases.length > 0);
    for (const [text, ids] of cases) {
      assert.deepEqual(tokenizer.encode(text), ids, text);
      assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), text);
    }
  },
});

Deno.test({
  name: "loadTokenizer() decodes the stories260k greedy continuation to its reference text",
  ignore: noStories,
  fn: async () => {
    const tokenizer = await storiesTokenizer();
    const { greedy_no_prompt: greedy } = await readJson(`${STORIES_DIR}/reference_outputs.json`);
    assert.equal(tokenizer.decode(greedy.output_ids, { skipSpecialTokens: true }), greedy.text);
  },
});

Deno.test({
  name: "loadTokenizer() reads the stories260k special ids from its configs",
  ignore: noStories,
  fn: async () => {
    const tokenizer = await storiesTokenizer();
    assert.equal(tokenizer.bosId, 1);
    assert.deepEqual(tokenizer.eosIds, [2]);
    assert.equal(tokenizer.padId, null);
    assert.equal(tokenizer.vocabSize, 512);
    assert.equal(tokenizer.tokenToId("<s>"), 1);
    assert.equal(tokenizer.idToToken(2), "</s>");
  },
});

Deno.test({
  name: "loadTokenizer() matches every Qwen2.5 reference encoding and decodes them back",
  ignore: noQwen,
  fn: async () => {
    const tokenizer = await qwenTokenizer();
    const reference = await readJson(`${QWEN_DIR}/reference_encodings.json`);
    const cases = Object.entries(
      { ...reference.cases, ...reference.known_external_values } as Record<string, number[]>,
    );
    assert.ok(cases.length >= 8);
    for (const [text, ids] of cases) {
      assert.deepEqual(tokenizer.encode(text, { addSpecialTokens: false }), ids, text);
      assert.equal(tokenizer.decode(ids), text);
    }
  },
});

Deno.test({
  name:
    "loadTokenizer() takes Qwen2.5's pad and eos from tokenizer_config.json and skips only special tokens",
  ignore: noQwen,
  fn: async () => {
    const tokenizer = await qwenTokenizer();
    assert.equal(tokenizer.padId, 151643);
    assert.deepEqual(tokenizer.eosIds, [151645]);
    assert.equal(tokenizer.vocabSize, 151665);
    const ids = tokenizer.encode("<|im_start|>hi<tool_call><|im_end|>", { addSpecialTokens: false });
    assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), "hi<tool_call>");
  },
});

Deno.test("loadTokenizer() names a missing tokenizer.json", () =>
  withTempDir(async (dir) => {
    await assert.rejects(loadTokenizer(dir), (error: Error) => {
      assert.match(error.message, /^Missing file .*tokenizer\.json$/);
      return true;
    });
  }));

Deno.test("loadTokenizer() names a tokenizer_config.json that is not JSON, in one line", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(minimalTokenizerJson()));
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, "{ not json");
    await assert.rejects(loadTokenizer(dir), (error: Error) => {
      assert.match(error.message, /^Invalid JSON in .*tokenizer_config\.json: /);
      assert.ok(!error.message.includes("\n"));
      return true;
    });
  }));

Deno.test("loadTokenizer() names a tokenizer_config.json whose bos_token is not a token", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(minimalTokenizerJson()));
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify({ bos_token: "<s>" }));
    await assert.rejects(
      loadTokenizer(dir),
      /^Error: Invalid .*tokenizer_config\.json: bos_token "<s>" is not a token of tokenizer\.json$/,
    );
  }));

Deno.test("loadTokenizer() names a tokenizer.json whose model is unusable", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/tokenizer.json`,
      JSON.stringify({ ...minimalTokenizerJson(), model: null }),
    );
    await assert.rejects(loadTokenizer(dir), /^Error: Invalid .*tokenizer\.json: /);
  }));

Deno.test("loadTokenizer() takes the chat template from chat_template.jinja when the config has none", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(minimalTokenizerJson()));
    await Deno.writeTextFile(`${dir}/chat_template.jinja`, "{{ messages[0].content }}");
    const tokenizer = await loadTokenizer(dir);
    assert.equal(tokenizer.config.chat_template, "{{ messages[0].content }}");
    assert.deepEqual(tokenizer.encode("ab"), [0, 1]);
    assert.equal(tokenizer.decode([]), "");
    assert.equal(tokenizer.decode([0, 7, 1]), "ab", "an id past the vocabulary decodes to nothing");
    assert.throws(() => tokenizer.decode([-1]), /Token id -1 is not a non-negative integer/);
  }));

function minimalTokenizerJson() {
  return {
    version: "1.0",
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: true },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: true },
    model: { type: "BPE", vocab: { a: 0, b: 1 }, merges: [] },
  };
}
