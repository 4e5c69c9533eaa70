/**
 * Item cleaning of rrec-spec §A.2 (`load_items`): the title rules in their order, the numeric-price
 * rule, `clean_text` on every string field, and the `item_info` field shapes of §A.5.
 *
 * Prices: a 2023 price goes through Python's `float()` semantics ({@linkcode pythonFloat}). A 2018
 * price is text like `"$1,299.99"`: `$` and `,` are removed first, so `"$1,299.99"` → 1299.99, while a
 * range (`"$5.99 - $9.99"`), an empty string or other text has no numeric price and drops the item.
 *
 * @example
 * ```ts
 * const item = cleanItem({ parent_asin: "B1", fields: { title: "Drum &amp; Bass", price: 9.5 } }, "amazon2023-meta");
 * // { parent_asin: "B1", title: "Drum & Bass", average_rating: 0, rating_number: 0, description: [], price: 9.5 }
 * ```
 *
 * @module
 */
import type { MetaFormat, RawMeta } from "./amazon_formats.ts";
import type { ItemFields } from "./dataset.ts";
import { cleanText, pythonFloat, pythonLength, spaceSplitCount } from "./python_text.ts";

/** rrec-spec §A.2 rule 4: `MAX_LEN = 20` words. */
export const MAX_TITLE_WORDS = 20;

/** An item before its id is known. */
export type CleanItem = ItemFields;

/** Why an item was dropped: a reason key for the drop log. */
export interface ItemDrop {
  drop:
    | "title_missing"
    | "title_not_string"
    | "title_span"
    | "title_too_long"
    | "title_too_short"
    | "price_not_numeric";
}

/** Fields the reference removes from `item_info` (§A.5), and their 2018 counterparts (bulky asin lists). */
const DROPPED_FIELDS: Record<MetaFormat, ReadonlySet<string>> = {
  "amazon2023-meta": new Set(["videos", "author", "bought_together", "images", "asin"]),
  "amazon2018-meta": new Set(["imageURL", "imageURLHighRes", "also_buy", "also_view", "asin"]),
};

/** Fields with a fixed place and shape in {@linkcode ItemRecord}. */
const NAMED_FIELDS = new Set([
  "parent_asin",
  "title",
  "average_rating",
  "rating_number",
  "description",
  "price",
]);

/**
 * rrec-spec §A.2 rule 3: `&quot;` → `"`, `&amp;` → `&`, strip spaces at both ends, then strip `"` at
 * both ends. ("Strip spaces" is read literally as the space character, as the spec words it.)
 */
export function rewriteTitle(title: string): string {
  return title.replaceAll("&quot;", '"').replaceAll("&amp;", "&").replace(/^ +| +$/g, "").replace(
    /^"+|"+$/g,
    "",
  );
}

/** The numeric price of a meta line, or `undefined` where the reference's `float(price)` would raise. */
function numericPrice(price: unknown, format: MetaFormat): number | undefined {
  if (format === "amazon2018-meta" && typeof price === "string") {
    return pythonFloat(price.replace(/[$,]/g, ""));
  }
  return pythonFloat(price);
}

/**
 * The description as a list of paragraphs in file order, duplicates removed (first kept): a list keeps
 * its strings, a string becomes `[s]`, anything else `[]` (§A.5, minus the reference's `set` order).
 */
export function descriptionList(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (!Array.isArray(value)) return [];
  return [...new Set(value.filter((p): p is string => typeof p === "string"))];
}

/** Applies the title rules, in order; returns the rewritten title or the drop reason. */
function checkTitle(title: unknown): string | ItemDrop {
  if (title === undefined || title === null) return { drop: "title_missing" };
  if (typeof title !== "string") return { drop: "title_not_string" };
  if (title.includes("<span id")) return { drop: "title_span" };
  const rewritten = rewriteTitle(title);
  if (spaceSplitCount(rewritten) > MAX_TITLE_WORDS) return { drop: "title_too_long" };
  if (pythonLength(rewritten) <= 1) return { drop: "title_too_short" };
  return rewritten;
}

/**
 * Cleans one meta record, or says which rule drops it (rrec-spec §A.2, rules checked in order).
 *
 * @example
 * ```ts
 * cleanItem({ parent_asin: "B2", fields: { title: "Gift Card", price: "$1,000.00" } }, "amazon2018-meta").price;
 * // 1000
 * cleanItem({ parent_asin: "B3", fields: { title: "X" } }, "amazon2023-meta"); // { drop: "title_too_short" }
 * ```
 */
export function cleanItem(meta: RawMeta, format: MetaFormat): CleanItem | ItemDrop {
  const { fields } = meta;
  const title = checkTitle(fields.title);
  if (typeof title !== "string") return title;
  const price = numericPrice(fields.price, format);
  if (price === undefined) return { drop: "price_not_numeric" };
  const item: CleanItem = {
    parent_asin: meta.parent_asin,
    title: cleanText(title),
    average_rating: typeof fields.average_rating === "number" ? fields.average_rating : 0,
    rating_number: typeof fields.rating_number === "number" ? Math.trunc(fields.rating_number) : 0,
    description: descriptionList(fields.description),
    price,
  };
  const dropped = DROPPED_FIELDS[format];
  for (const [name, value] of Object.entries(fields)) {
    if (NAMED_FIELDS.has(name) || dropped.has(name)) continue;
    const kept = keptField(name, value);
    if (kept !== undefined) item[name] = kept;
  }
  return item;
}

/**
 * The stored form of one other meta field (§A.2, §A.5): strings cleaned, numbers and string lists as
 * they are, objects (`details`) as JSON text; `features` that is not a list becomes `[]`, and a
 * `subtitle` of null, "nan" or "none" becomes "". Anything else is not kept.
 */
function keptField(name: string, value: unknown): string | number | string[] | undefined {
  const isStringList = Array.isArray(value) && value.every((v) => typeof v === "string");
  if (name === "features") return isStringList ? value : [];
  if (name === "subtitle" && (value === null || value === "nan" || value === "none")) return "";
  if (typeof value === "string") return cleanText(value);
  if (typeof value === "number" || isStringList) return value;
  if (typeof value === "object" && value !== null && !Array.isArray(value)) return JSON.stringify(value);
  return undefined;
}
