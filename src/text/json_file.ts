/**
 * Reading the JSON files of a Hugging Face model folder with one-line errors that name the file.
 *
 * @module
 */

/** A parsed JSON object (the top level of every HF config file). */
export type JsonObject = Record<string, unknown>;

/**
 * Reads and parses `path`, which must hold a JSON object.
 *
 * @example
 * ```ts
 * const config = await readJsonObject("models/tiny/tokenizer_config.json");
 * ```
 */
export async function readJsonObject(path: string): Promise<JsonObject> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`Missing file ${path}`);
    throw new Error(`Cannot read ${path}: ${oneLine(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`Invalid JSON in ${path}: ${oneLine(error)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new Error(`Invalid ${path}: the top level is not a JSON object`);
  }
  return parsed as JsonObject;
}

/**
 * Like {@linkcode readJsonObject}, but an absent file gives `undefined` (optional config files).
 *
 * @example
 * ```ts
 * const generation = await readOptionalJsonObject("models/tiny/generation_config.json") ?? {};
 * ```
 */
export async function readOptionalJsonObject(path: string): Promise<JsonObject | undefined> {
  try {
    await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`Cannot read ${path}: ${oneLine(error)}`);
  }
  return await readJsonObject(path);
}

/** The message of `error` squeezed onto one line. */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, " ").trim();
}
