/**
 * The tokenizer of a Hugging Face model folder: `tokenizer.json` run by npm `@huggingface/tokenizers`,
 * with the special-token ids resolved from `tokenizer_config.json`, `generation_config.json` and
 * `config.json` (DESIGN §4).
 *
 * @module
 */
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { join } from "node:path";
import { type JsonObject, oneLine, readJsonObject, readOptionalJsonObject } from "./json_file.ts";

/** Options of {@linkcode Tokenizer.encode}. */
export interface EncodeOptions {
  /** Apply the post-processor's special tokens (e.g. a leading BOS); default true, as in HF. */
  addSpecialTokens?: boolean;
}

/** Options of {@linkcode Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (`<|im_end|>`, `<s>`…); non-special added tokens such as `<answer>` stay. */
  skipSpecialTokens?: boolean;
}

/** A loaded tokenizer with the ids that generation and training need. */
export interface Tokenizer {
  /** `tokenizer_config.json` (its `chat_template` filled from `chat_template.jinja` when only that exists). */
  readonly config: JsonObject;
  /** Beginning-of-sequence id (tokenizer_config, else generation_config, else config), or null. */
  readonly bosId: number | null;
  /** Every id that ends generation (generation_config, config and tokenizer_config together). */
  readonly eosIds: readonly number[];
  /** Padding id, or null when none is defined. */
  readonly padId: number | null;
  /** One more than the largest token id (model vocabulary plus added tokens). */
  readonly vocabSize: number;
  /** Ids of the special tokens (removed by `decode(..., { skipSpecialTokens: true })`). */
  readonly specialIds: ReadonlySet<number>;
  /** Token ids of `text`. */
  encode(text: string, options?: EncodeOptions): number[];
  /** Text of `ids`; an empty list gives "", ids the tokenizer lacks give nothing. */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** Id of a vocabulary or added token, or undefined when it is not one token. */
  tokenToId(token: string): number | undefined;
  /** Token string of `id`, or undefined when out of range. */
  idToToken(id: number): string | undefined;
}

/** The JSON files a tokenizer is built from; only `tokenizer` is required. */
export interface TokenizerSources {
  /** Parsed `tokenizer.json`. */
  tokenizer: JsonObject;
  /** Parsed `tokenizer_config.json`. */
  config?: JsonObject;
  /** Parsed `generation_config.json`. */
  generationConfig?: JsonObject;
  /** Parsed `config.json` of the model. */
  modelConfig?: JsonObject;
  /** Where the files came from, for error messages. */
  origin?: string;
}

/**
 * Loads the tokenizer of the model folder `dir`: `tokenizer.json` is required, `tokenizer_config.json`,
 * `generation_config.json`, `config.json` and `chat_template.jinja` are read when present.
 *
 * @example
 * ```ts
 * const tokenizer = await loadTokenizer("../shared/fixtures/stories260k");
 * tokenizer.encode("Once upon a time"); // [1, 403, 407, 261, 378]
 * tokenizer.decode([403, 407, 261, 378]); // "Once upon a time"
 * ```
 */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const tokenizerPath = join(dir, "tokenizer.json");
  const [tokenizer, config, generationConfig, modelConfig, templateFile] = await Promise.all([
    readJsonObject(tokenizerPath),
    readOptionalJsonObject(join(dir, "tokenizer_config.json")),
    readOptionalJsonObject(join(dir, "generation_config.json")),
    readOptionalJsonObject(join(dir, "config.json")),
    readOptionalText(join(dir, "chat_template.jinja")),
  ]);
  const fullConfig = { ...config };
  if (fullConfig.chat_template === undefined && templateFile !== undefined) {
    fullConfig.chat_template = templateFile;
  }
  return createTokenizer({
    tokenizer,
    config: fullConfig,
    generationConfig,
    modelConfig,
    origin: tokenizerPath,
  });
}

/**
 * Builds a tokenizer from already parsed files (e.g. those a BPE trainer just produced).
 *
 * @example
 * ```ts
 * const tokenizer = createTokenizer(trainBpeTokenizer(["some text"], { vocabSize: 300 }));
 * ```
 */
export function createTokenizer(sources: TokenizerSources): Tokenizer {
  const origin = sources.origin ?? "tokenizer.json";
  const config = sources.config ?? {};
  let inner: HfTokenizer;
  try {
    inner = new HfTokenizer(sources.tokenizer, config);
  } catch (error) {
    throw new Error(`Invalid ${origin}: ${oneLine(error)}`);
  }
  return new LoadedTokenizer(inner, sources, origin);
}

class LoadedTokenizer implements Tokenizer {
  readonly config: JsonObject;
  readonly bosId: number | null;
  readonly eosIds: readonly number[];
  readonly padId: number | null;
  readonly vocabSize: number;
  readonly specialIds: ReadonlySet<number>;

  constructor(private readonly inner: HfTokenizer, sources: TokenizerSources, origin: string) {
    this.config = sources.config ?? {};
    this.vocabSize = largestId(inner) + 1;
    const idOfConfigToken = (field: string): number | null | undefined => {
      const value = this.config[field];
      if (value === undefined) return undefined;
      const content = tokenContent(value);
      if (content === null) return null;
      const id = inner.token_to_id(content);
      if (id === undefined) {
        const configPath = origin.replace(/tokenizer\.json$/, "tokenizer_config.json");
        throw new Error(`Invalid ${configPath}: ${field} "${content}" is not a token of tokenizer.json`);
      }
      return id;
    };
    const generation = sources.generationConfig ?? {};
    const model = sources.modelConfig ?? {};
    this.bosId = firstDefined(
      idOfConfigToken("bos_token"),
      ids(generation.bos_token_id)[0],
      ids(model.bos_token_id)[0],
    );
    this.padId = firstDefined(
      idOfConfigToken("pad_token"),
      ids(generation.pad_token_id)[0],
      ids(model.pad_token_id)[0],
    );
    const configEos = idOfConfigToken("eos_token");
    this.eosIds = [
      ...new Set([
        ...ids(generation.eos_token_id),
        ...ids(model.eos_token_id),
        ...(configEos == null ? [] : [configEos]),
      ]),
    ];
    const special = new Set<number>();
    for (const [id, token] of inner.get_added_tokens_decoder()) if (token.special) special.add(id);
    const additional = this.config.additional_special_tokens;
    for (const entry of Array.isArray(additional) ? additional : []) {
      const content = tokenContent(entry);
      const id = content === null ? undefined : inner.token_to_id(content);
      if (id !== undefined) special.add(id);
    }
    this.specialIds = special;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.inner.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list: number[] = [];
    for (const id of Array.from(ids)) {
      if (!Number.isInteger(id) || id < 0) throw new Error(`Token id ${id} is not a non-negative integer`);
      // Ids past the tokenizer (a model's padded embedding rows) decode to nothing, as in HF tokenizers.
      if (this.inner.id_to_token(id) !== undefined) list.push(id);
    }
    if (list.length === 0) return "";
    return this.inner.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }
}

function largestId(inner: HfTokenizer): number {
  let largest = -1;
  for (const id of inner.get_vocab(true).values()) if (id > largest) largest = id;
  return largest;
}

/** A special-token field of tokenizer_config.json: a string, an AddedToken object, or null. */
function tokenContent(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object" && typeof (value as JsonObject).content === "string") {
    return (value as JsonObject).content as string;
  }
  return null;
}

/** An id field that may be a number, a list of numbers, or absent. */
function ids(value: unknown): number[] {
  const list = Array.isArray(value) ? value : [value];
  return list.filter((id): id is number => Number.isInteger(id));
}

/** The first id given; a token the tokenizer config sets to null falls back to the model's configs. */
function firstDefined(...candidates: (number | null | undefined)[]): number | null {
  for (const candidate of candidates) if (candidate != null) return candidate;
  return null;
}

async function readOptionalText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`Cannot read ${path}: ${oneLine(error)}`);
  }
}
