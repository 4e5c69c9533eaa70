import assert from "node:assert/strict";
import * as r2ec from "../mod.ts";

Deno.test("mod.ts exports the DESIGN §4 model API used by outside checks", () => {
  assert.equal(typeof r2ec.loadModel, "function");
  for (const method of ["logits", "hidden", "lossAndGrads", "dispose"]) {
    assert.equal(
      typeof (r2ec.CausalLM.prototype as unknown as Record<string, unknown>)[method],
      "function",
      method,
    );
  }
});
