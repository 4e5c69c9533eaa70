/**
 * Runs `r2ec` in-process and captures what it prints, for CLI tests.
 *
 * @module
 */
import { main } from "../../cli.ts";

/** What one `r2ec` invocation printed and returned. */
export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/** Runs `main(argv)` with console.log/error captured. */
export async function runCli(argv: string[]): Promise<CliRun> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await main(argv), out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}
