import assert from "node:assert/strict";
import { runCli } from "./capture.ts";

Deno.test("r2ec rejects an unknown command with one line and exit code 2", async () => {
  const r = await runCli(["frobnicate"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^r2ec: unknown command "frobnicate"/);
  assert.equal(r.err.split("\n").length, 1);
});

Deno.test("r2ec rejects an unknown flag with one line and exit code 2", async () => {
  const r = await runCli(["info", "--frobnicate"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /^info: Unknown option '--frobnicate'/);
});

Deno.test("every r2ec command prints help starting with its usage line", async () => {
  const { commands } = await import("../../src/cli/commands.ts");
  for (const c of commands) {
    const r = await runCli([c.name, "--help"]);
    assert.equal(r.code, 0, c.name);
    assert.match(r.out, new RegExp(`Usage: r2ec ${c.name}`), c.name);
  }
});

Deno.test("a command that is not built yet says so and exits non-zero", async () => {
  const r = await runCli(["train"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /not built yet/);
});
