/**
 * nanoGPT-style configuration: a flat typed record with defaults in one place, overridden by a
 * JSON config file, then by command-line flags. The resolved config is printed and saved with
 * every run and checkpoint.
 *
 * @example
 * ```ts
 * const config = resolveConfig(DEFAULTS, await readConfigFile("run.json"), { lr: "3e-4" }, "pretrain");
 * ```
 *
 * @module
 */

/** A flat record of numbers, strings and booleans. */
export type FlatConfig = Record<string, number | string | boolean>;

/** Reads a JSON config file (a flat object), naming the file in every error. */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`Cannot read config file ${path}: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`Config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`Config file ${path} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Applies overrides onto `defaults`, keeping each key's type: numbers from strings are parsed,
 * booleans accept true/false. An unknown key or a wrongly typed value is a one-line error naming
 * the key and where it came from.
 */
export function resolveConfig<T extends FlatConfig>(
  defaults: T,
  file: Record<string, unknown> | undefined,
  flags: Record<string, unknown>,
  source: string,
): T {
  const out: FlatConfig = { ...defaults };
  const apply = (values: Record<string, unknown>, where: string) => {
    for (const [key, raw] of Object.entries(values)) {
      if (raw === undefined) continue;
      if (!(key in defaults)) {
        throw new Error(
          `Unknown config key "${key}" in ${where} (known: ${Object.keys(defaults).join(", ")})`,
        );
      }
      out[key] = coerce(key, raw, typeof defaults[key], where);
    }
  };
  if (file) apply(file, `${source} config file`);
  apply(flags, "command-line flags");
  return out as T;
}

function coerce(key: string, raw: unknown, kind: string, where: string): number | string | boolean {
  if (kind === "number") {
    const n = typeof raw === "number"
      ? raw
      : typeof raw === "string" && raw.trim() !== ""
      ? Number(raw)
      : NaN;
    if (!Number.isFinite(n)) {
      throw new Error(`Config key "${key}" in ${where} must be a number, got ${JSON.stringify(raw)}`);
    }
    return n;
  }
  if (kind === "boolean") {
    if (typeof raw === "boolean") return raw;
    if (raw === "true" || raw === "false") return raw === "true";
    throw new Error(`Config key "${key}" in ${where} must be true or false, got ${JSON.stringify(raw)}`);
  }
  if (typeof raw !== "string") {
    throw new Error(`Config key "${key}" in ${where} must be a string, got ${JSON.stringify(raw)}`);
  }
  return raw;
}

/** Renders a config as aligned `key = value` lines for the run header. */
export function formatConfig(config: FlatConfig): string {
  const width = Math.max(...Object.keys(config).map((k) => k.length));
  return Object.entries(config).map(([k, v]) => `  ${k.padEnd(width)} = ${JSON.stringify(v)}`).join("\n");
}
