/**
 * Conformance of the GPU decoder with the PyTorch fixtures (DESIGN §4): logits, final hidden
 * state, mean next-token loss and every parameter gradient, through the public API.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../../src/model/decoder.ts";
import { SafetensorsFile } from "../../src/model/safetensors.ts";
import { assertClose } from "../ops/check.ts";
import { FIXTURES } from "./fixtures.ts";

/** DESIGN §4: logits and final hidden within 1e-4 absolute (Gemma 2e-4: softcaps and tanh-GELU add f32 error). */
const FORWARD_ATOL = { qwen2: 1e-4, gemma2: 2e-4 };
/** DESIGN §4: loss within 1e-5. */
const LOSS_ATOL = 1e-5;
/** DESIGN §4: every gradient tensor within 1e-3 of its own max-abs. */
const GRAD_RELATIVE_TO_MAX = 1e-3;

interface Reference {
  input_ids: number[];
  logits: number[][];
  final_hidden: number[][];
  loss: number;
}

for (const name of ["qwen2", "gemma2"] as const) {
  const dir = join(FIXTURES, `${name}-tiny`);
  const ignore = !existsSync(dir);

  Deno.test({
    name: `loadModel(${name}-tiny) logits and hidden() match the PyTorch reference`,
    ignore,
    async fn() {
      const ref: Reference = JSON.parse(await Deno.readTextFile(join(dir, "reference.json")));
      const model = await loadModel(dir);
      try {
        const logits = await model.logits(ref.input_ids);
        assertClose(logits, ref.logits.flat(), { atol: FORWARD_ATOL[name] }, `${name} logits`);
        const hidden = await model.hidden(ref.input_ids);
        assertClose(hidden, ref.final_hidden.flat(), { atol: FORWARD_ATOL[name] }, `${name} final hidden`);
      } finally {
        model.dispose();
      }
    },
  });

  Deno.test({
    name: `lossAndGrads(${name}-tiny) matches the PyTorch loss and every gradient`,
    ignore,
    async fn() {
      const ref: Reference = JSON.parse(await Deno.readTextFile(join(dir, "reference.json")));
      const model = await loadModel(dir);
      try {
        const { loss, grads } = await model.lossAndGrads(ref.input_ids);
        assertClose([loss], [ref.loss], { atol: LOSS_ATOL }, `${name} loss`);
        using expected = await SafetensorsFile.open(join(dir, "grads.safetensors"));
        const names = [...expected.tensors.keys()].sort();
        if ([...grads.keys()].sort().join() !== names.join()) {
          throw new Error(`${name} gradient names differ: got ${[...grads.keys()].sort().join(", ")}`);
        }
        for (const tensor of names) {
          const want = expected.read(tensor);
          const maxAbs = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          assertClose(
            grads.get(tensor)!,
            want,
            { atol: GRAD_RELATIVE_TO_MAX * maxAbs },
            `${name} grad ${tensor}`,
          );
        }
      } finally {
        model.dispose();
      }
    },
  });
}
