import { strictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { categoryWording } from "../../src/prompts/category.ts";
import { join } from "node:path";
import {
  describeItem,
  loadPromptTemplates,
  PAD_ITEM_FIELDS,
  renderItemPrompt,
  renderUserPrompt,
} from "../../src/prompts/render.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const T = Date.UTC(2023, 5, 1, 12, 0, 0);

// rrec-spec §B.1, verified rendering for Musical_Instruments.
const INSTRUMENTS_HEADER =
  "Analyze in depth and finally recommend next musical instrument I might purchase inside " +
  "<answer> and </answer>.\nFor example, <answer>a product</answer>.\n\n" +
  "Below is my historical musical instruments purchases and ratings (out of 5):";

Deno.test("renderUserPrompt() gives the §B.1 header and the §B.2 history lines oldest first", () => {
  const sample = {
    history_item_title: ["Fender Strings", 'Capo "X"', "Pick set"],
    history_rating: [5, 4, 1],
    history_timestamp: [
      T - (71 * DAY + 19 * HOUR + 18 * MINUTE),
      T - (13 * DAY + 22 * HOUR + 24 * MINUTE),
      T - (HOUR + 5 * MINUTE + 12_000),
    ],
    timestamp: T,
  };
  assertEquals(
    renderUserPrompt(sample, "Musical_Instruments"),
    INSTRUMENTS_HEADER + '\n71d 19.3h ago: [Fender Strings] (5.0)\n13d 22.4h ago: [Capo "X"] (4.0)\n' +
      "1h 5.2min ago: [Pick set] (1.0)",
  );
});

Deno.test("renderUserPrompt() shows only the last window entries", () => {
  const sample = {
    history_item_title: ["old", "mid", "new"],
    history_rating: [3.5, 4, 2],
    history_timestamp: [T - 3 * MINUTE - 15_000, T, T],
    timestamp: T,
  };
  assertEquals(
    renderUserPrompt(sample, "Musical_Instruments", { window: 2 }),
    `${INSTRUMENTS_HEADER}\n0.0min ago: [mid] (4.0)\n0.0min ago: [new] (2.0)`,
  );
  assertEquals(
    renderUserPrompt(sample, "Musical_Instruments").split("\n").at(-3),
    "3.2min ago: [old] (3.5)",
  );
});

Deno.test("renderUserPrompt() words the paper's other categories as cat_dict does", () => {
  const sample = { history_item_title: ["A"], history_rating: [5], history_timestamp: [T], timestamp: T };
  const games = renderUserPrompt(sample, "Video_Games");
  assertEquals(games.startsWith("Analyze in depth and finally recommend next video game I might"), true);
  assertEquals(
    games.includes("\n\nBelow is my historical video games purchases and ratings (out of 5):\n"),
    true,
  );
  const music = renderUserPrompt(sample, "CDs_and_Vinyl");
  assertEquals(music.includes("recommend next CD or vinyl I might"), true);
  assertEquals(music.includes("my historical CDs and vinyl purchases"), true);
});

Deno.test("renderUserPrompt() rejects history fields of different lengths", () => {
  const sample = {
    history_item_title: ["A", "B"],
    history_rating: [5],
    history_timestamp: [T, T],
    timestamp: T,
  };
  assertThrows(() => renderUserPrompt(sample, "Video_Games"), /differ in length/);
});

Deno.test("renderItemPrompt() gives the §B.4 body with Python-printed ratings and the reversed description", () => {
  const item = {
    title: "Nylon Strings",
    average_rating: 5,
    rating_number: 1234,
    description: ["First.", "Second."],
  };
  assertEquals(
    renderItemPrompt(item, "Musical_Instruments"),
    "Summarize key attributes of the following musical instrument inside <answer> and </answer>.\n\n" +
      "Title: Nylon Strings\nUser Rating: 5.0\nNumber of Buyers: 1234\nDescription: Second. First.",
  );
});

Deno.test("renderItemPrompt() renders the pad item with an empty description", () => {
  assertEquals(
    renderItemPrompt(PAD_ITEM_FIELDS, "Video_Games"),
    "Summarize key attributes of the following video game inside <answer> and </answer>.\n\n" +
      "Title: pad_title\nUser Rating: 0.0\nNumber of Buyers: 0\nDescription: ",
  );
});

Deno.test("describeItem() cuts a description over 100 words to 100 words and ...", () => {
  const words = Array.from({ length: 120 }, (_, i) => `w${i}`);
  const cut = describeItem([words.slice(60).join("\n"), words.slice(0, 60).join("  ")]);
  assertEquals(cut, `${words.join(" ").split(" ").slice(0, 100).join(" ")}...`);
});

Deno.test("describeItem() keeps a description of at most 100 words unchanged, spacing included", () => {
  const paragraph = Array.from({ length: 99 }, (_, i) => `w${i}`).join("  ");
  assertEquals(describeItem([" tail\n", paragraph]), `${paragraph}  tail\n`);
  assertEquals(describeItem([]), "");
});

Deno.test("categoryWording() applies the documented rule to other categories", () => {
  assertEquals(categoryWording("All_Beauty").plural, "all beauty products");
  assertEquals(categoryWording("All_Beauty").singular, "all beauty product");
  assertEquals(categoryWording("Movies_and_TV").plural, "movies and TV products");
  assertEquals(categoryWording("Electronics").singular, "electronics product");
  assertThrows(() => categoryWording("__"), /no words/);
});

Deno.test("loadPromptTemplates() reads edited templates from another folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "r2ec-templates-" });
  try {
    await Deno.writeTextFile(
      join(dir, "user.jinja"),
      "{% for e in history %}{{ e.title }}={{ e.rating }};{% endfor %}\n",
    );
    await Deno.writeTextFile(join(dir, "item.jinja"), "{{ category.plural }}: {{ title }}\n");
    const templates = loadPromptTemplates(dir);
    const sample = {
      history_item_title: ["A", "B"],
      history_rating: [5, 3.5],
      history_timestamp: [T, T],
      timestamp: T,
    };
    assertEquals(renderUserPrompt(sample, "Video_Games", { templates }), "A=5.0;B=3.5;");
    assertEquals(renderItemPrompt(PAD_ITEM_FIELDS, "Video_Games", templates), "video games: pad_title");
    await Deno.remove(join(dir, "item.jinja"));
    assertThrows(() => loadPromptTemplates(dir), /item\.jinja/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
