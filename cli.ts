/**
 * `r2ec <command>`: the command-line entry point.
 *
 * @example
 * ```sh
 * deno task r2ec info
 * deno task r2ec generate --model ../shared/fixtures/stories260k --prompt "" --temperature 0
 * ```
 *
 * @module
 */
import { type Command, UsageError } from "./src/cli/command.ts";
import { commands } from "./src/cli/commands.ts";

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `r2ec — reasoning-then-recommend LLM recommenders on WebGPU\n\nUsage: r2ec <command> [flags]\n\nCommands:\n${
    lines.join("\n")
  }\n\nRun "r2ec <command> --help" for the flags of one command.`;
}

/** Runs one command line and returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`r2ec: unknown command "${name}" (commands: ${commands.map((c) => c.name).join(", ")})`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command.help);
    return 0;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (e) {
    const error = e as Error;
    const message = (error.message ?? String(e)).split("\n")[0];
    console.error(error instanceof UsageError ? message : `r2ec ${name}: ${message}`);
    if (Deno.env.get("R2EC_DEBUG")) console.error(error.stack);
    return error instanceof UsageError ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
