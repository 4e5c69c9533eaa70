import assert from "node:assert/strict";
import { main } from "../../cli.ts";

async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    const code = await main(argv);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("r2ec rejects an unknown command with one line and exit code 2", async () => {
  const r = await capture(["frobnicate"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^r2ec: unknown command "frobnicate"/);
  assert.equal(r.err.split("\n").length, 1);
});

Deno.test("r2ec rejects an unknown flag with one line and exit code 2", async () => {
  const r = await capture(["info", "--frobnicate"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^info: Unknown option '--frobnicate'/);
});

Deno.test("every r2ec command prints help starting with its usage line", async () => {
  const { commands } = await import("../../src/cli/commands.ts");
  for (const c of commands) {
    const r = await capture([c.name, "--help"]);
    assert.equal(r.code, 0, c.name);
    assert.match(r.out, new RegExp(`Usage: r2ec ${c.name}`), c.name);
  }
});

Deno.test("a command that is not built yet says so and exits non-zero", async () => {
  const r = await capture(["train"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /not built yet/);
});
