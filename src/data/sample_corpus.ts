/**
 * The text corpus `data/sample/corpus.txt` for training the tiny model's BPE tokenizer and for
 * pretraining it: item prompts and user prompts of the synthetic sample rendered with the real
 * templates (`prompts/*.jinja`), each user prompt followed by a short reasoning-like paragraph about
 * the user's taste that ends with `<answer>`, as R²ec reasoning does (rrec-spec §B.5).
 *
 * Documents are separated by a line holding only {@linkcode CORPUS_SEPARATOR}. To keep the sample's
 * evaluation honest, user documents use only reviews older than the newest quarter of all reviews,
 * so pretraining never reads a validation or test target.
 *
 * @module
 */
import { EMB_TOKEN, renderItemPrompt, renderUserPrompt } from "../prompts/render.ts";
import { FOLLOW_UPS, PRODUCT_TYPES, type Tier } from "./synthetic_catalog.ts";
import {
  SAMPLE_CATEGORY,
  type SyntheticItem,
  type SyntheticReview,
  type SyntheticWorld,
} from "./synthetic.ts";

/** The line between two corpus documents. */
export const CORPUS_SEPARATOR = "<|endoftext|>";
/** The corpus stops taking user documents before it would grow past this many bytes. */
export const CORPUS_MAX_BYTES = 1_450_000;
/** Reviews at or after this quantile of all review times never enter the corpus. */
const HELD_OUT_QUANTILE = 0.75;

const TIER_PHRASE: Record<Tier, string> = { budget: "budget", mid: "mid-range", premium: "premium" };

function capitalise(text: string): string {
  return text[0].toUpperCase() + text.slice(1);
}

function nounOf(item: SyntheticItem): string {
  return item.type.noun.toLowerCase();
}

/** The phrase with "a" or "an", or bare when plural ("guitar picks"). */
function withArticle(phrase: string): string {
  if (phrase.endsWith("s")) return phrase;
  return /^[aeiou]/.test(phrase) ? `an ${phrase}` : `a ${phrase}`;
}

function mostCommon<T>(values: T[]): T {
  const counts = new Map<T, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts.entries()].reduce((best, entry) => entry[1] > best[1] ? entry : best)[0];
}

/** A reasoning-like paragraph: what the history shows about the user, and what fits next. */
function reasoning(history: SyntheticReview[], target: SyntheticReview): string {
  const latest = history[history.length - 1];
  const tier = mostCommon(history.map((review) => review.item.tier));
  const liked = history.filter((review) => review.rating >= 4);
  const disliked = history.filter((review) => review.rating <= 2);
  const sentences = [
    `The history starts with ${withArticle(nounOf(history[0].item))} from ${history[0].item.brand.name}` +
    (history.length > 1 ? ` and has ${history.length - 1} more purchases.` : "."),
    `Most of these purchases are ${TIER_PHRASE[tier]} products.`,
  ];
  if (liked.length > 0) {
    sentences.push(
      `The user rated ${mostCommon(liked.map((review) => review.item.brand.name))} gear highly.`,
    );
  }
  if (disliked.length > 0) {
    sentences.push(`The user was unhappy with the ${nounOf(disliked[disliked.length - 1].item)}.`);
  }
  const mains = history.filter((review) => review.item.type.main);
  if (mains.length > 0) {
    const main = mains[mains.length - 1].item;
    const owned = new Set(history.map((review) => review.item.type.key));
    const missing = FOLLOW_UPS[main.type.key].map(([key]) => key).filter((key) => !owned.has(key)).slice(
      0,
      3,
    );
    if (missing.length > 0) {
      const nouns = missing.map((key) => PRODUCT_TYPES.find((type) => type.key === key)!.noun.toLowerCase());
      sentences.push(`${capitalise(withArticle(`new ${nounOf(main)}`))} usually needs ${nouns.join(", ")}.`);
    }
  }
  sentences.push(
    `The latest purchase is ${withArticle(nounOf(latest.item))}, so a fitting next purchase is ${
      withArticle(`${TIER_PHRASE[target.item.tier]} ${nounOf(target.item)}`)
    }.`,
  );
  return sentences.join(" ");
}

function itemDocuments(world: SyntheticWorld): string[] {
  return world.items.filter((item) => item.kept).map((item) =>
    renderItemPrompt({ ...item, title: item.title!, description: item.description }, SAMPLE_CATEGORY)
  );
}

function userDocument(reviews: SyntheticReview[]): string {
  const history = reviews.slice(0, -1);
  const target = reviews[reviews.length - 1];
  const prompt = renderUserPrompt({
    history_item_title: history.map((review) => review.item.title!),
    history_rating: history.map((review) => review.rating),
    history_timestamp: history.map((review) => review.timestamp),
    timestamp: target.timestamp,
  }, SAMPLE_CATEGORY);
  return `${prompt}\n\n${reasoning(history, target)}${EMB_TOKEN}`;
}

/**
 * Builds the corpus text of `world`: every kept item's prompt, then user documents up to
 * {@linkcode CORPUS_MAX_BYTES}, each document followed by a {@linkcode CORPUS_SEPARATOR} line.
 *
 * @example
 * ```ts
 * const corpus = buildCorpus(generateWorld());
 * corpus.split(`\n${CORPUS_SEPARATOR}\n`).length;
 * ```
 */
export function buildCorpus(world: SyntheticWorld): string {
  const times = world.users.flatMap((user) => user.reviews.map((review) => review.timestamp)).sort((a, b) =>
    a - b
  );
  const cutoff = times[Math.floor(HELD_OUT_QUANTILE * times.length)];
  const encoder = new TextEncoder();
  const documents = itemDocuments(world);
  let bytes = documents.reduce(
    (sum, doc) => sum + encoder.encode(doc).length + CORPUS_SEPARATOR.length + 2,
    0,
  );
  for (const user of world.users) {
    const usable = user.reviews.filter((review) => review.item.kept && review.timestamp < cutoff);
    if (usable.length < 2) continue;
    const document = userDocument(usable);
    const size = encoder.encode(document).length + CORPUS_SEPARATOR.length + 2;
    if (bytes + size > CORPUS_MAX_BYTES) break;
    documents.push(document);
    bytes += size;
  }
  return documents.map((doc) => `${doc}\n${CORPUS_SEPARATOR}\n`).join("");
}
