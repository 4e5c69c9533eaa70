import assert from "node:assert/strict";
import { SequencePreTokenizer } from "@huggingface/tokenizers";
import { trainBpeTokenizer, writeTokenizer } from "../../src/text/bpe_trainer.ts";
import { applyChatTemplate } from "../../src/text/chat_template.ts";
import { createTokenizer, loadTokenizer } from "../../src/text/tokenizer.ts";
import { sharedDir, withTempDir } from "./helpers.ts";

const { dir: REVIEWS_DIR, absent: noReviews } = sharedDir("data/amazon2023-ucsd");

const CORPUS = [
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
  "The user bought guitar strings and a capo. <answer> They will buy a tuner next. </answer>",
  "Price: $12.99 — 4.5/5 stars (1,234 ratings)\r\n\tnaïve café, très bien!",
  "<|im_start|>user\nRecommend an item.<|im_end|>\n<|im_start|>assistant\nThe player needs picks.<answer>",
].flatMap((line) => Array(20).fill(line));

type Merge = [string, string];

/** Plain BPE: recount every pair after each merge; most frequent first, ties to the smaller id pair. */
function referenceMerges(
  words: Map<string, number>,
  baseIds: Map<string, number>,
  maxMerges: number,
): Merge[] {
  const ids = new Map(baseIds);
  let nextId = Math.max(...ids.values()) + 1;
  let split = [...words].map(([word, count]) => ({ symbols: [...word], count }));
  const merges: Merge[] = [];
  while (merges.length < maxMerges) {
    const counts = new Map<string, { pair: Merge; count: number }>();
    for (const { symbols, count } of split) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${ids.get(symbols[i])} ${ids.get(symbols[i + 1])}`;
        const entry = counts.get(key) ?? { pair: [symbols[i], symbols[i + 1]] as Merge, count: 0 };
        entry.count += count;
        counts.set(key, entry);
      }
    }
    const order = (pair: Merge) => [ids.get(pair[0])!, ids.get(pair[1])!];
    let best: { pair: Merge; count: number } | undefined;
    for (const entry of counts.values()) {
      if (best === undefined || entry.count > best.count) best = entry;
      else if (entry.count === best.count) {
        const [a, b] = [order(entry.pair), order(best.pair)];
        if (a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])) best = entry;
      }
    }
    if (best === undefined || best.count < 2) break;
    const [left, right] = best.pair;
    merges.push([left, right]);
    ids.set(left + right, nextId++);
    split = split.map(({ symbols, count }) => {
      const out: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (symbols[i] === left && symbols[i + 1] === right) out.push(symbols[i++] + right);
        else out.push(symbols[i]);
      }
      return { symbols: out, count };
    });
  }
  return merges;
}

Deno.test("trainBpeTokenizer() learns the same merges as recounting every pair after each merge", () => {
  const files = trainBpeTokenizer(CORPUS, { vocabSize: 400 });
  const model = files.tokenizer.model as { vocab: Record<string, number>; merges: Merge[] };
  // Words as the written pre-tokenizer produces them, reserved tokens cut out first.
  const preTokenizer = new SequencePreTokenizer(files.tokenizer.pre_tokenizer as never);
  const words = new Map<string, number>();
  for (const line of CORPUS) {
    for (const piece of line.split(/<\|im_start\|>|<\|im_end\|>|<answer>|<\/answer>/)) {
      for (const word of preTokenizer.pre_tokenize(piece)) words.set(word, (words.get(word) ?? 0) + 1);
    }
  }
  const byteSymbols = Object.entries(model.vocab).filter(([, id]) => id >= 5 && id < 5 + 256);
  assert.equal(byteSymbols.length, 256);
  const expected = referenceMerges(words, new Map(byteSymbols), 400 - 5 - 256);
  assert.ok(expected.length > 50);
  assert.deepEqual(model.merges, expected);
});

Deno.test("trainBpeTokenizer() output loads through @huggingface/tokenizers with the wanted vocabulary size", () => {
  const files = trainBpeTokenizer(CORPUS, { vocabSize: 300 });
  const tokenizer = createTokenizer(files);
  assert.equal(tokenizer.vocabSize, 300);
  assert.equal(tokenizer.tokenToId("<|endoftext|>"), 0);
  assert.equal(tokenizer.bosId, 0);
  assert.equal(tokenizer.padId, 0);
  assert.deepEqual(tokenizer.eosIds, [tokenizer.tokenToId("<|im_end|>")]);
});

Deno.test("trainBpeTokenizer() stops early when no pair is frequent enough", () => {
  const files = trainBpeTokenizer(["abab xyz"], { vocabSize: 1000 });
  const model = files.tokenizer.model as { merges: Merge[] };
  assert.deepEqual(model.merges, [["a", "b"]]);
});

Deno.test("trainBpeTokenizer() keeps <answer> and </answer> as single non-special tokens", () => {
  const files = trainBpeTokenizer(CORPUS, { vocabSize: 400 });
  const tokenizer = createTokenizer(files);
  const answer = tokenizer.tokenToId("<answer>")!;
  const closing = tokenizer.tokenToId("</answer>")!;
  assert.deepEqual(tokenizer.encode("<answer>", { addSpecialTokens: false }), [answer]);
  assert.deepEqual(tokenizer.encode("</answer>", { addSpecialTokens: false }), [closing]);
  const ids = tokenizer.encode("<|im_start|>assistant\nB<answer>x</answer><|im_end|>", {
    addSpecialTokens: false,
  });
  assert.equal(ids[0], tokenizer.tokenToId("<|im_start|>"));
  assert.ok(ids.includes(answer) && ids.includes(closing));
  assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), "assistant\nB<answer>x</answer>");
});

Deno.test("trainBpeTokenizer() never learns merges inside special or added tokens", () => {
  const files = trainBpeTokenizer(CORPUS, { vocabSize: 400 });
  const vocab = (files.tokenizer.model as { vocab: Record<string, number> }).vocab;
  const learned = Object.entries(vocab).filter(([, id]) => id >= 5).map(([token]) => token);
  for (const token of learned) assert.ok(!/im_start|im_end|answer>/.test(token), token);
});

Deno.test("trainBpeTokenizer() round-trips text it never saw, non-ASCII included", () => {
  const tokenizer = createTokenizer(trainBpeTokenizer(CORPUS, { vocabSize: 350 }));
  const samples = [
    "日本語のテキスト 😀🦩 Ünïcödé — ‘quotes’ «guillemets»",
    "  leading and trailing spaces  \n\n\ttabs\r\nCRLF 0123456789",
    "Ｆｕｌｌｗｉｄｔｈ ｆｏｒｍｓ and e\u0301 (decomposed) stay as written",
    "",
  ];
  for (const text of samples) {
    assert.equal(tokenizer.decode(tokenizer.encode(text)), text, JSON.stringify(text));
  }
});

Deno.test("trainBpeTokenizer() is deterministic", () => {
  assert.deepEqual(
    trainBpeTokenizer(CORPUS, { vocabSize: 350 }),
    trainBpeTokenizer(CORPUS, { vocabSize: 350 }),
  );
});

Deno.test("trainBpeTokenizer() rejects a vocabulary too small for its special, added and byte tokens", () => {
  assert.throws(
    () => trainBpeTokenizer(CORPUS, { vocabSize: 200 }),
    /vocabSize must be an integer from 261 /,
  );
});

Deno.test("writeTokenizer() writes files that loadTokenizer() reads, with a ChatML template ending at <answer>", () =>
  withTempDir(async (dir) => {
    const files = trainBpeTokenizer(CORPUS, { vocabSize: 400, specialTokens: ["<|extra|>"] });
    await writeTokenizer(`${dir}/tiny`, files);
    await writeTokenizer(`${dir}/tiny`, files);
    const names = [...Deno.readDirSync(`${dir}/tiny`)].map((entry) => entry.name).sort();
    assert.deepEqual(names, ["tokenizer.json", "tokenizer_config.json"]);
    const tokenizer = await loadTokenizer(`${dir}/tiny`);
    assert.equal(tokenizer.vocabSize, 400);
    assert.ok(tokenizer.specialIds.has(tokenizer.tokenToId("<|extra|>")!));
    const text = applyChatTemplate(tokenizer.config, [
      { role: "user", content: "Which item next?" },
      { role: "assistant", content: "Strings wear out.<answer>" },
    ], { continueFinalMessage: true });
    assert.equal(
      text,
      "<|im_start|>user\nWhich item next?<|im_end|>\n<|im_start|>assistant\nStrings wear out.<answer>",
    );
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    assert.equal(ids.at(-1), tokenizer.tokenToId("<answer>"));
    assert.equal(tokenizer.decode(ids), text);
  }));

Deno.test({
  name: "trainBpeTokenizer() trains 4096 tokens on 1.5 MB of review text in under 30 s",
  ignore: noReviews,
  fn: () => {
    const lines: string[] = [];
    let size = 0;
    for (const entry of [...Deno.readDirSync(REVIEWS_DIR)].sort((a, b) => a.name.localeCompare(b.name))) {
      for (const line of Deno.readTextFileSync(`${REVIEWS_DIR}/${entry.name}`).split("\n")) {
        if (size >= 1_500_000) break;
        lines.push(line);
        size += line.length;
      }
    }
    assert.ok(size >= 1_400_000, `only ${size} characters of review text`);
    const start = performance.now();
    const files = trainBpeTokenizer(lines, { vocabSize: 4096 });
    const seconds = (performance.now() - start) / 1000;
    console.log(`BPE training: ${size} characters, 4096 tokens in ${seconds.toFixed(2)} s`);
    assert.ok(seconds < 30);
    const tokenizer = createTokenizer(files);
    assert.equal(tokenizer.vocabSize, 4096);
    const sample = lines.slice(0, 50).join("\n");
    const ids = tokenizer.encode(sample);
    assert.equal(tokenizer.decode(ids), sample);
    assert.ok(sample.length / ids.length > 2, "learned merges shorten the text");
  },
});
