import { ok as assert, rejects as assertRejects, strictEqual as assertEquals } from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describePrompts } from "../../src/cli/prompts.ts";
import { DEFAULT_PROMPTS_DIR } from "../../src/prompts/render.ts";

const QWEN_TOKENIZER = "../shared/fixtures/qwen2.5-tokenizer";
const T = Date.UTC(2023, 2, 1);

function item(id: number, title: string, description: string[]) {
  return {
    item_id: id,
    parent_asin: `B00000000${id}`,
    title,
    average_rating: 4.5,
    rating_number: 12,
    description,
    price: 9.99,
  };
}

async function writeDataset(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "r2ec-prompts-" });
  const items = [
    item(1, "Maple Guitar", ["Warm tone."]),
    item(2, "Nylon Strings", ["Set of six.", "Soft feel."]),
  ];
  const sample = {
    user_id: "U1",
    item_asins: ["B000000001"],
    item_asin: "B000000002",
    history_item_id: [1],
    item_id: 2,
    history_item_title: ["Maple Guitar"],
    item_title: "Nylon Strings",
    history_rating: [5],
    rating: 4,
    history_timestamp: [T - 3 * 60_000 - 15_000],
    timestamp: T,
    interaction_id: 0,
  };
  const info = { format_version: 1, category: "Musical_Instruments", options: { window: 20 } };
  await Deno.writeTextFile(join(dir, "dataset.json"), JSON.stringify(info));
  await Deno.writeTextFile(
    join(dir, "items.jsonl"),
    items.map((row) => JSON.stringify(row)).join("\n") + "\n",
  );
  await Deno.writeTextFile(join(dir, "test.jsonl"), JSON.stringify(sample) + "\n");
  return dir;
}

Deno.test("describePrompts() prints the sample's user prompt and its target's item prompt", async () => {
  const dir = await writeDataset();
  try {
    const text = await describePrompts({
      dataset: dir,
      split: "test",
      index: 0,
      templates: DEFAULT_PROMPTS_DIR,
    });
    assert(text.includes("(out of 5):\n3.2min ago: [Maple Guitar] (5.0)\n"));
    assert(text.includes("item 2 B000000002 (target)"));
    assert(
      text.includes(
        "Title: Nylon Strings\nUser Rating: 4.5\nNumber of Buyers: 12\nDescription: Soft feel. Set of six.\n",
      ),
    );
    const pad = await describePrompts({
      dataset: dir,
      split: "test",
      index: 0,
      item: "0",
      templates: DEFAULT_PROMPTS_DIR,
    });
    assert(pad.includes("Title: pad_title\n"));
    const byAsin = await describePrompts({
      dataset: dir,
      split: "test",
      index: 0,
      item: "B000000001",
      templates: DEFAULT_PROMPTS_DIR,
    });
    assert(byAsin.includes("Title: Maple Guitar\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("describePrompts() rejects an index outside the split and an unknown item", async () => {
  const dir = await writeDataset();
  try {
    await assertRejects(
      describePrompts({ dataset: dir, split: "test", index: 1, templates: DEFAULT_PROMPTS_DIR }),
      /--index 1 is outside test \(0\.\.0\)/,
    );
    await assertRejects(
      describePrompts({ dataset: dir, split: "test", index: 0, item: "7", templates: DEFAULT_PROMPTS_DIR }),
      /--item 7 is neither/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "describePrompts() with --model prints the chat-templated inputs and their Qwen token counts",
  ignore: !existsSync(join(QWEN_TOKENIZER, "tokenizer.json")),
  async fn() {
    const dir = await writeDataset();
    try {
      const model = join(dir, "model");
      await Deno.mkdir(model);
      await Deno.copyFile(join(QWEN_TOKENIZER, "tokenizer.json"), join(model, "tokenizer.json"));
      const config = JSON.parse(await Deno.readTextFile(join(QWEN_TOKENIZER, "tokenizer_config.json")));
      // The fixture has no chat_template; a ChatML one is enough to exercise the path.
      config.chat_template =
        "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}" +
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
      await Deno.writeTextFile(join(model, "tokenizer_config.json"), JSON.stringify(config));
      const text = await describePrompts({
        dataset: dir,
        split: "test",
        index: 0,
        model,
        templates: DEFAULT_PROMPTS_DIR,
      });
      const itemSection = text.split("=== item input: ")[1];
      const tokens = Number(itemSection.split(" ")[0]);
      assert(tokens > 40 && tokens < 200, `item input token count ${tokens}`);
      assert(itemSection.trimEnd().endsWith("Set of six.<|im_end|>\n<|im_start|>assistant\n<answer>"));
      assertEquals(text.includes("=== generation prompt: "), true);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
