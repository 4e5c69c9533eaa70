/**
 * The deterministic generator of the bundled synthetic sample `data/sample/` (SYNTHETIC data: every
 * product, brand, user and review is invented).
 *
 * It writes raw Amazon Reviews 2023 files for the made-up category {@linkcode SAMPLE_CATEGORY}
 * (`Sample_Instruments.jsonl` reviews and `meta_Sample_Instruments.jsonl` metadata), with structure a
 * recommender can learn: item attributes (brand, type, variant, colour, price tier) visible in titles
 * and descriptions, users with a preferred tier, favourite brands and colour, and purchase sequences
 * in which accessories follow an instrument (guitar → strings, picks, tuner, strap…). Ratings depend
 * on item quality and on how well an item fits the user's taste. A few records exercise the
 * preprocessing filters: items without a numeric price, titles over 20 words, a missing title, a
 * `<span id` title, HTML entities, and reviews outside the default time window.
 *
 * The same seed always gives the same bytes; `tests/data/synthetic_test.ts` checks the committed
 * files against a fresh generation.
 *
 * @example
 * ```sh
 * deno task r2ec sample --out data/sample
 * ```
 *
 * @module
 */
import {
  type Brand,
  BRANDS,
  COLOURS,
  FOLLOW_UPS,
  KEYWORD_STUFFING,
  MAIN_WEIGHTS,
  PRODUCT_TYPES,
  type ProductType,
  SECOND_MAIN,
  type Tier,
  TIER_SENTENCES,
  TIER_TITLE_WORDS,
  TIERS,
} from "./synthetic_catalog.ts";
import { SeededRng } from "./rng.ts";

/** The category name of the sample files; prompts word it like `Musical_Instruments`. */
export const SAMPLE_CATEGORY = "Sample_Instruments";
/** The seed of the committed sample. */
export const SAMPLE_SEED = 20231001;
/** Users of the committed sample. */
export const SAMPLE_USERS = 2200;

const DAY_MS = 86_400_000;
const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** One generated catalogue item, with the latent attributes behind its text. */
export interface SyntheticItem {
  parent_asin: string;
  type: ProductType;
  brand: Brand;
  tier: Tier;
  colour?: string;
  /** The title as preprocessing cleans it; null when the item has none. */
  title: string | null;
  /** The title as written to the meta file (HTML entities, `<span id`), null when absent. */
  rawTitle: string | null;
  /** A number, a string, or null (missing) as written to the meta file. */
  price: number | string | null;
  /** Whether preprocessing keeps the item (a usable title and a numeric price). */
  kept: boolean;
  /** Latent quality, around 0; raises ratings. */
  quality: number;
  /** Latent popularity, around 1; raises choice odds and `rating_number`. */
  popularity: number;
  average_rating: number;
  rating_number: number;
  description: string[];
}

/** One generated review. */
export interface SyntheticReview {
  user_id: string;
  item: SyntheticItem;
  rating: number;
  title: string;
  text: string;
  timestamp: number;
}

/** One generated user: latent taste and reviews in time order. */
export interface SyntheticUser {
  user_id: string;
  tier: Tier;
  brands: Brand[];
  colour: string;
  reviews: SyntheticReview[];
}

/** Everything the generator made. */
export interface SyntheticWorld {
  items: SyntheticItem[];
  users: SyntheticUser[];
}

/** Options of {@linkcode generateWorld}. */
export interface SampleOptions {
  seed?: number;
  users?: number;
}

/** A fresh id: `prefix` and random capitals/digits up to `length`, like Amazon's ("B0…", "A…"). */
function uniqueId(rng: SeededRng, used: Set<string>, prefix: string, length: number): string {
  for (;;) {
    let id = prefix;
    while (id.length < length) id += ALPHANUMERIC[rng.int(ALPHANUMERIC.length)];
    if (!used.has(id)) {
      used.add(id);
      return id;
    }
  }
}

function roundTo(x: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(x * scale) / scale;
}

function itemPrice(rng: SeededRng, type: ProductType, tier: Tier): number {
  const scale = { budget: 0.55, mid: 1, premium: 2.3 }[tier] * rng.uniform(0.8, 1.25);
  return Math.max(1, Math.round(type.basePrice * scale)) - 0.01;
}

/** Whether a product noun is plural ("guitar picks", "studio monitors"). */
function isPlural(noun: string): boolean {
  return noun.endsWith("s");
}

function describe(
  rng: SeededRng,
  item: Omit<SyntheticItem, "description">,
  variant: string,
  code: string,
): string[] {
  if (rng.chance(0.05)) return [];
  const audience =
    { budget: "for beginners", mid: "for everyday players", premium: "for professionals" }[item.tier];
  const tierWord = { budget: "budget", mid: "mid-range", premium: "premium" }[item.tier];
  const noun = item.type.noun.toLowerCase();
  const isWhat = isPlural(noun) ? `are ${tierWord} ${noun}` : `is a ${tierWord} ${noun}`;
  // Lower-case the variant's words but keep codes such as "7A" or "4/4" as they are.
  const variantWords = variant.split(" ").map((word) => /\d/.test(word) ? word : word.toLowerCase()).join(
    " ",
  );
  const feature = item.type.feature.replace("{variant}", variantWords).replace(/^A ([aeiou])/, "An $1");
  const paragraphs = [
    `The ${item.brand.name} ${code} ${isWhat} ${audience}. ${feature[0].toUpperCase()}${feature.slice(1)}`,
    rng.pick(TIER_SENTENCES[item.tier]) + (item.colour ? ` Finished in ${item.colour.toLowerCase()}.` : ""),
  ];
  if (rng.chance(0.3)) paragraphs.push(`Backed by a ${1 + rng.int(3)}-year ${item.brand.name} warranty.`);
  if (rng.chance(0.04)) {
    for (let i = 0; i < 4; i++) {
      paragraphs.push(
        `${
          rng.pick(TIER_SENTENCES[item.tier])
        } Every ${item.brand.name} product is tested before it ships, ` +
          `and the ${item.type.noun.toLowerCase()} comes ready to play out of the box with a quick start guide, ` +
          `care tips and access to online lessons.`,
      );
    }
  }
  return paragraphs;
}

function makeItem(rng: SeededRng, type: ProductType, usedAsins: Set<string>): SyntheticItem {
  const makers = BRANDS.filter((brand) => brand.makes.includes(type.key));
  const brand = rng.pick(makers);
  const tier = rng.chance(0.6) ? brand.tier : rng.pick(TIERS);
  const colour = type.coloured ? rng.pick(COLOURS) : undefined;
  const variant = rng.pick(type.variants);
  const code = `${brand.code}-${100 + rng.int(900)}`;
  const tierWord = rng.chance(0.75) ? ` ${rng.pick(TIER_TITLE_WORDS[tier])}` : "";
  let title: string | null = `${brand.name}${tierWord} ${code} ${type.noun}, ${variant}${
    colour ? `, ${colour}` : ""
  }`;
  let rawTitle: string | null = title;
  let kept = true;
  const quirk = rng.next();
  if (quirk < 0.025) {
    title = rawTitle = `${title}, ${KEYWORD_STUFFING}`;
    kept = false;
  } else if (quirk < 0.045) {
    title = `${title} & Cleaning Cloth`;
    rawTitle = `${rawTitle} &amp; Cleaning Cloth`;
  } else if (quirk < 0.048) {
    title = rawTitle = null;
    kept = false;
  } else if (quirk < 0.051) {
    rawTitle = `<span id="title">${title}</span>`;
    kept = false;
  }
  let price: number | string | null = itemPrice(rng, type, tier);
  const priceQuirk = rng.next();
  if (priceQuirk < 0.07) {
    price = null;
    kept = false;
  } else if (priceQuirk < 0.08) {
    price = "Currently unavailable";
    kept = false;
  } else if (priceQuirk < 0.09) {
    price = price.toFixed(2);
  }
  const quality = 0.35 * rng.normal() + { budget: -0.1, mid: 0, premium: 0.15 }[tier];
  const popularity = Math.exp(0.8 * rng.normal()) * { budget: 1.4, mid: 1, premium: 0.6 }[tier];
  const partial = {
    parent_asin: uniqueId(rng, usedAsins, "B0", 10),
    type,
    brand,
    tier,
    colour,
    title,
    rawTitle,
    price,
    kept,
    quality,
    popularity,
    average_rating: roundTo(Math.min(5, Math.max(2.5, 4.35 + quality + 0.15 * rng.normal())), 1),
    rating_number: Math.max(
      1,
      Math.round(popularity * (type.main ? 60 : 150) * Math.exp(0.6 * rng.normal())),
    ),
  };
  return { ...partial, description: describe(rng, partial, variant, code) };
}

/** The purchase plan of one user: product type keys in buying order. */
function planPurchases(rng: SeededRng, engagement: number): string[] {
  const mains = Object.keys(MAIN_WEIGHTS);
  const first = mains[rng.weightedIndex(mains.map((key) => MAIN_WEIGHTS[key]))];
  const plan: string[] = [];
  const addKit = (main: string, withMain: boolean) => {
    if (withMain && !plan.includes(main)) plan.push(main);
    const picked = FOLLOW_UPS[main]
      .map(([key, p], rank) => ({ key, p, order: rank + 1.2 * rng.normal() }))
      .filter(({ key, p }) => !plan.includes(key) && rng.chance(Math.min(1, p * engagement)))
      .sort((a, b) => a.order - b.order);
    plan.push(...picked.map(({ key }) => key));
  };
  addKit(first, rng.chance(0.75));
  if (rng.chance(0.3 * engagement)) addKit(rng.pick(SECOND_MAIN[first]), true);
  return plan;
}

function itemScore(item: SyntheticItem, user: SyntheticUser, mainBrand: Brand | undefined): number {
  const tierGap = Math.abs(TIERS.indexOf(item.tier) - TIERS.indexOf(user.tier));
  return 1.6 * Number(user.brands.includes(item.brand)) + 0.8 * Number(item.brand === mainBrand) -
    1.1 * tierGap + 0.7 * Number(item.colour === user.colour) + 0.6 * Math.log(item.popularity) +
    0.8 * item.quality;
}

function chooseItem(
  rng: SeededRng,
  candidates: SyntheticItem[],
  user: SyntheticUser,
  mainBrand: Brand | undefined,
  bought: Set<SyntheticItem>,
): SyntheticItem | undefined {
  const open = candidates.filter((item) => !bought.has(item));
  if (open.length === 0) return undefined;
  return open[rng.weightedIndex(open.map((item) => Math.exp(1.5 * itemScore(item, user, mainBrand))))];
}

function rate(rng: SeededRng, item: SyntheticItem, user: SyntheticUser, bias: number): number {
  if (rng.chance(0.09)) return rng.chance(0.65) ? 1 : 2;
  const tierGap = Math.abs(TIERS.indexOf(item.tier) - TIERS.indexOf(user.tier));
  const mean = 4.85 + 1.2 * item.quality + 0.35 * Number(user.brands.includes(item.brand)) - 0.45 * tierGap +
    bias;
  return Math.min(5, Math.max(1, Math.round(mean + 0.8 * rng.normal())));
}

const REVIEW_TITLES: Record<number, string[]> = {
  5: ["Love it", "Excellent {noun}", "Exactly what I needed", "Great value", "Five stars"],
  4: ["Very good", "Solid {noun}", "Good for the price", "Happy with it"],
  3: ["It's okay", "Average {noun}", "Does the job"],
  2: ["Disappointed", "Not great", "Expected more"],
  1: ["Broke quickly", "Returned it", "Poor quality {noun}"],
};

const REVIEW_OPENINGS: Record<number, string[]> = {
  5: ["Sounds amazing and feels great.", "Really well made.", "Better than I expected."],
  4: ["Works well overall.", "Good quality for the money.", "Nice, with small flaws."],
  3: ["It is fine but nothing special.", "Works, but the finish is rough.", "Okay for now."],
  2: ["Not what I hoped for.", "Feels cheap.", "Had problems after a week."],
  1: ["Stopped working right away.", "Arrived damaged.", "Would not buy again."],
};

function reviewText(
  rng: SeededRng,
  item: SyntheticItem,
  rating: number,
  main: SyntheticItem | undefined,
): string {
  const opening = rng.pick(REVIEW_OPENINGS[rating]);
  const noun = item.type.noun.toLowerCase();
  if (main && main !== item && rng.chance(0.6)) {
    return `${opening} Bought this ${noun} for my new ${main.brand.name} ${main.type.noun.toLowerCase()}.`;
  }
  if (rng.chance(0.5)) return opening;
  return `${opening} ${rating >= 4 ? "Would buy" : "Will not buy"} ${item.brand.name} again.`;
}

/** First purchase time: mostly inside the default window 2022-10..2023-10, some earlier or later. */
function startTime(rng: SeededRng): number {
  const roll = rng.next();
  if (roll < 0.8) return rng.uniform(Date.UTC(2022, 9, 1), Date.UTC(2023, 8, 1));
  if (roll < 0.95) return rng.uniform(Date.UTC(2021, 5, 1), Date.UTC(2022, 9, 1));
  return rng.uniform(Date.UTC(2023, 8, 1), Date.UTC(2023, 11, 1));
}

function makeUser(rng: SeededRng, byType: Map<string, SyntheticItem[]>, usedIds: Set<string>): SyntheticUser {
  const tier = TIERS[rng.weightedIndex([0.45, 0.38, 0.17])];
  const favourites = rng.shuffled(BRANDS).sort((a, b) => Number(b.tier === tier) - Number(a.tier === tier));
  const user: SyntheticUser = {
    user_id: uniqueId(rng, usedIds, "A", 28),
    tier,
    brands: favourites.slice(0, 1 + rng.int(2)).concat(rng.chance(0.3) ? [rng.pick(BRANDS)] : []),
    colour: rng.pick(COLOURS),
    reviews: [],
  };
  const engagement = Math.exp(0.35 * rng.normal());
  const reviewsOften = rng.uniform(0.2, 0.75);
  const bias = 0.3 * rng.normal();
  const bought = new Set<SyntheticItem>();
  let time = startTime(rng);
  let main: SyntheticItem | undefined;
  for (const [step, typeKey] of planPurchases(rng, engagement).entries()) {
    const type = PRODUCT_TYPES.find((candidate) => candidate.key === typeKey)!;
    if (step > 0) {
      const sameDay = !type.main && bought.size === 1 && rng.chance(0.3);
      time += sameDay ? rng.uniform(0.01, 0.4) * DAY_MS : rng.exponential(type.main ? 90 : 14) * DAY_MS;
    }
    const item = chooseItem(rng, byType.get(typeKey)!, user, main?.brand, bought);
    if (!item) continue;
    bought.add(item);
    if (type.main) main = item;
    if (!rng.chance(reviewsOften) && user.reviews.length > 0) continue;
    const rating = rate(rng, item, user, bias);
    user.reviews.push({
      user_id: user.user_id,
      item,
      rating,
      title: rng.pick(REVIEW_TITLES[rating]).replace("{noun}", type.noun.toLowerCase()),
      text: reviewText(rng, item, rating, main),
      timestamp: Math.floor(time),
    });
  }
  return user;
}

/**
 * Generates the synthetic catalogue and users for `seed` (default {@linkcode SAMPLE_SEED}).
 *
 * @example
 * ```ts
 * const world = generateWorld({ seed: 1, users: 100 });
 * world.users[0].reviews[0].item.title;
 * ```
 */
export function generateWorld(options: SampleOptions = {}): SyntheticWorld {
  const rng = new SeededRng(options.seed ?? SAMPLE_SEED);
  const usedAsins = new Set<string>();
  const items: SyntheticItem[] = [];
  const byType = new Map<string, SyntheticItem[]>();
  for (const type of PRODUCT_TYPES) {
    const ofType = Array.from({ length: type.count }, () => makeItem(rng, type, usedAsins));
    byType.set(type.key, ofType);
    items.push(...ofType);
  }
  const usedIds = new Set<string>();
  const users = Array.from({ length: options.users ?? SAMPLE_USERS }, () => makeUser(rng, byType, usedIds))
    .filter((user) => user.reviews.length > 0);
  return { items: rng.shuffled(items), users };
}

/** A JSON value as Python's `json.dumps` writes it with default separators; floats keep `.0`. */
function pythonJsonLine(fields: [string, string | number | string[] | null, "float"?][]): string {
  const parts = fields.map(([key, value, kind]) => {
    const text = kind === "float" && typeof value === "number" && Number.isInteger(value)
      ? `${value}.0`
      : Array.isArray(value)
      ? `[${value.map((v) => JSON.stringify(v)).join(", ")}]`
      : JSON.stringify(value);
    return `${JSON.stringify(key)}: ${text}`;
  });
  return `{${parts.join(", ")}}`;
}

/**
 * The review file text (`{Category}.jsonl`, Amazon 2023 fields), one review per line in a fixed
 * shuffled order.
 */
export function reviewsJsonl(world: SyntheticWorld, seed = SAMPLE_SEED): string {
  const reviews = world.users.flatMap((user) => user.reviews);
  return new SeededRng(seed + 1).shuffled(reviews).map((review) =>
    pythonJsonLine([
      ["rating", review.rating, "float"],
      ["title", review.title],
      ["text", review.text],
      ["parent_asin", review.item.parent_asin],
      ["user_id", review.user_id],
      ["timestamp", review.timestamp],
    ]) + "\n"
  ).join("");
}

/** The metadata file text (`meta_{Category}.jsonl`, Amazon 2023 fields), one item per line. */
export function metaJsonl(world: SyntheticWorld): string {
  return world.items.map((item) =>
    pythonJsonLine([
      ["main_category", "Musical Instruments"],
      ["title", item.rawTitle],
      ["average_rating", item.average_rating, "float"],
      ["rating_number", item.rating_number],
      ["description", item.description],
      ["price", item.price],
      ["store", item.brand.name],
      ["parent_asin", item.parent_asin],
    ]) + "\n"
  ).join("");
}
