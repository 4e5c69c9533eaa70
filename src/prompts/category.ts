/**
 * How a category name is worded inside the prompts ("next {singular} I might purchase",
 * "my historical {plural} purchases").
 *
 * The paper's three categories use the reference's `cat_dict` wording exactly (rrec-spec §B.1).
 * The reference rejects every other category; r2ec words them with one deterministic rule instead:
 * underscores become spaces, each word is lower-cased unless it has a capital after its first
 * letter (an acronym such as `CDs` or `TV` keeps its case), and the phrase is followed by
 * `products` (plural) or `product` (singular), e.g. `All_Beauty` → `all beauty products` /
 * `all beauty product`. Adding "product(s)" avoids guessing the singular of names like
 * `Toys_and_Games`. {@linkcode CATEGORY_WORDING} overrides the rule.
 *
 * @module
 */

/** Plural and singular wording of a category. */
export interface CategoryWording {
  /** e.g. `musical instruments`. */
  plural: string;
  /** e.g. `musical instrument`. */
  singular: string;
}

/**
 * Fixed wordings: the reference's `cat_dict` (rrec-spec §B.1), and the bundled synthetic sample
 * (`data/sample/`), which is a musical-instruments catalogue and so reads like the paper's category.
 */
export const CATEGORY_WORDING: Readonly<Record<string, CategoryWording>> = {
  Video_Games: { plural: "video games", singular: "video game" },
  CDs_and_Vinyl: { plural: "CDs and vinyl", singular: "CD or vinyl" },
  Musical_Instruments: { plural: "musical instruments", singular: "musical instrument" },
  Sample_Instruments: { plural: "musical instruments", singular: "musical instrument" },
};

/**
 * The prompt wording of `category`: the fixed table entry, or the documented rule above.
 *
 * @example
 * ```ts
 * categoryWording("CDs_and_Vinyl"); // { plural: "CDs and vinyl", singular: "CD or vinyl" }
 * categoryWording("Movies_and_TV"); // { plural: "movies and TV products", singular: "movies and TV product" }
 * ```
 */
export function categoryWording(category: string): CategoryWording {
  const fixed = CATEGORY_WORDING[category];
  if (fixed) return fixed;
  const words = category.split("_").filter((word) => word !== "");
  if (words.length === 0) throw new Error(`Category name "${category}" has no words`);
  const phrase = words.map((word) => /[A-Z]/.test(word.slice(1)) ? word : word.toLowerCase()).join(" ");
  return { plural: `${phrase} products`, singular: `${phrase} product` };
}
