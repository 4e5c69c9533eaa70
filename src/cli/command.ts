/**
 * The contract every `r2ec <command>` module fulfils, and the shared flag parser.
 *
 * A command module exports one `Command`. `cli.ts` dispatches on the name, prints `help` for
 * `--help`, and turns a thrown `UsageError` into a one-line message and exit code 2. Any other
 * thrown `Error` becomes a one-line message and exit code 1.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** One `r2ec` subcommand. */
export interface Command {
  /** Name typed after `r2ec`. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Full `--help` text: usage, every flag with its default, and examples. */
  help: string;
  /** Runs the command with the arguments after its name. */
  run(argv: string[]): Promise<void>;
}

/** A wrong flag, a missing value or a bad combination: reported in one line with exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Options accepted by {@linkcode parseFlags}. */
export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `argv` strictly against `options`: an unknown flag or a missing value is a `UsageError`
 * naming the command. Positional arguments are rejected unless `allowPositionals` is set.
 *
 * @example
 * ```ts
 * const { values } = parseFlags("generate", ["--seed", "3"], { seed: { type: "string" } });
 * // values.seed === "3"
 * ```
 */
export function parseFlags<T extends FlagSpec>(
  command: string,
  argv: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean" } },
      strict: true,
      allowPositionals,
    });
  } catch (e) {
    const message = (e as Error).message.split("\n")[0].replace(/\.$/, "");
    throw new UsageError(`${command}: ${message}`);
  }
}

/** Reads a numeric flag, rejecting text that is not a finite number. */
export function numberFlag(
  command: string,
  flag: string,
  value: string | undefined,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    throw new UsageError(`${command}: --${flag} must be a number, got "${value}"`);
  }
  return n;
}

/** Reads an integer flag, rejecting fractions and text. */
export function intFlag(command: string, flag: string, value: string | undefined, fallback: number): number {
  const n = numberFlag(command, flag, value, fallback);
  if (!Number.isInteger(n)) throw new UsageError(`${command}: --${flag} must be an integer, got "${value}"`);
  return n;
}
