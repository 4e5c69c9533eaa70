/**
 * KV-cache generation against stories260k (a real pretrained Llama): the greedy continuation
 * from BOS must equal llama2.c's, token by token, through the library and through the CLI.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../../src/model/decoder.ts";
import { generate } from "../../src/model/generate.ts";
import { loadTokenizer } from "../../src/text/tokenizer.ts";
import { assertClose } from "../ops/check.ts";
import { FIXTURES } from "./fixtures.ts";

const DIR = join(FIXTURES, "stories260k");
const ignore = !existsSync(DIR);
/** DESIGN §4 forward tolerance (the reference is an f64 forward; ours accumulates in f32). */
const LOGITS_ATOL = 1e-4;

interface StoriesReference {
  greedy_no_prompt: { input_ids: number[]; output_ids: number[]; text: string };
  prompt: { text: string; input_ids: number[]; logits: number[][] };
}

async function reference(): Promise<StoriesReference> {
  return JSON.parse(await Deno.readTextFile(join(DIR, "reference_outputs.json")));
}

Deno.test({
  name: "generate() greedy from BOS reproduces the stories260k reference continuation exactly",
  ignore,
  async fn() {
    const ref = (await reference()).greedy_no_prompt;
    const [model, tokenizer] = await Promise.all([loadModel(DIR), loadTokenizer(DIR)]);
    try {
      const maxNew = ref.output_ids.length - ref.input_ids.length;
      const [out] = await generate(model, [ref.input_ids], {
        maxNewTokens: maxNew,
        temperature: 0,
        tokenizer,
      });
      assert.deepEqual(out.tokens, ref.output_ids.slice(ref.input_ids.length));
      assert.deepEqual(out.text, ref.text);
      assert.deepEqual(out.finishReason, "length");
    } finally {
      model.dispose();
    }
  },
});

Deno.test({
  name: "logits() of stories260k for 'Once upon a time' match the reference",
  ignore,
  async fn() {
    const ref = (await reference()).prompt;
    const model = await loadModel(DIR);
    try {
      const logits = await model.logits(ref.input_ids);
      assertClose(logits, ref.logits.flat(), { atol: LOGITS_ATOL }, "stories260k logits");
    } finally {
      model.dispose();
    }
  },
});

Deno.test({
  name: "generate() gives each prompt of a mixed-length batch the tokens it gets alone",
  ignore,
  async fn() {
    const [model, tokenizer] = await Promise.all([loadModel(DIR), loadTokenizer(DIR)]);
    try {
      const prompts = [
        tokenizer.encode("Once upon a time"),
        [tokenizer.bosId!],
        tokenizer.encode("The dog ran"),
      ];
      const options = { maxNewTokens: 12, temperature: 0, tokenizer };
      const batched = await generate(model, prompts, options);
      for (let i = 0; i < prompts.length; i++) {
        const [alone] = await generate(model, [prompts[i]], options);
        assert.deepEqual(batched[i].tokens, alone.tokens, `prompt ${i}`);
      }
    } finally {
      model.dispose();
    }
  },
});

Deno.test({
  name: "generate() stops right after a stop string, keeps it, and reports finishReason stop",
  ignore,
  async fn() {
    const ref = (await reference()).greedy_no_prompt;
    const [model, tokenizer] = await Promise.all([loadModel(DIR), loadTokenizer(DIR)]);
    try {
      const [out] = await generate(model, [[tokenizer.bosId!]], {
        maxNewTokens: 100,
        temperature: 0,
        tokenizer,
        stopStrings: ["little girl"],
      });
      const end = ref.text.indexOf("little girl") + "little girl".length;
      assert.deepEqual(out.text, ref.text.slice(0, end));
      assert.deepEqual(out.finishReason, "stop");
      assert.deepEqual(out.tokens, ref.output_ids.slice(1, 1 + out.tokens.length));
    } finally {
      model.dispose();
    }
  },
});

Deno.test({
  name: "generate() sampling is reproducible for a seed and stops at EOS with finishReason eos",
  ignore,
  async fn() {
    const [model, tokenizer] = await Promise.all([loadModel(DIR), loadTokenizer(DIR)]);
    try {
      const options = {
        maxNewTokens: 40,
        temperature: 0.9,
        topK: 40,
        topP: 0.95,
        repetitionPenalty: 1.1,
        seed: 7,
        tokenizer,
      };
      const [a] = await generate(model, [[tokenizer.bosId!]], options);
      const [b] = await generate(model, [[tokenizer.bosId!]], options);
      assert.deepEqual(a.tokens, b.tokens);
      // Treat the third sampled token as EOS: generation must end right there.
      const [c] = await generate(model, [[tokenizer.bosId!]], { ...options, eosIds: [a.tokens[2]] });
      assert.deepEqual(c.finishReason, "eos");
      assert.deepEqual(c.tokens.at(-1), a.tokens[2]);
      assert.deepEqual(c.tokens, a.tokens.slice(0, c.tokens.length));
    } finally {
      model.dispose();
    }
  },
});

Deno.test({
  name: "r2ec generate prints the stories260k reference text for an empty prompt at temperature 0",
  ignore,
  async fn() {
    const ref = (await reference()).greedy_no_prompt;
    const command = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--allow-read=.,${FIXTURES}`,
        "--allow-env",
        "cli.ts",
        "generate",
        "--model",
        DIR,
        "--prompt",
        "",
        "--max-new-tokens",
        String(ref.output_ids.length - 1),
        "--temperature",
        "0",
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const { code, stdout, stderr } = await command.output();
    assert.deepEqual(code, 0, new TextDecoder().decode(stderr));
    assert.deepEqual(new TextDecoder().decode(stdout), ref.text + "\n");
  },
});

Deno.test({
  name: "generate() submits once for the prefill and once per further decode step",
  ignore,
  async fn() {
    const model = await loadModel(DIR);
    const queue = model.engine.gpu.device.queue;
    const submit = queue.submit;
    let submits = 0;
    queue.submit = (buffers) => {
      submits++;
      submit.call(queue, buffers);
    };
    try {
      const [out] = await generate(model, [[1], [1, 403]], { maxNewTokens: 9, temperature: 0 });
      assert.equal(out.tokens.length, 9);
      assert.equal(submits, 9);
    } finally {
      queue.submit = submit;
      model.dispose();
    }
  },
});

for (const name of ["gemma2-tiny", "qwen2-tiny"]) {
  Deno.test({
    name: `generate() with the KV cache picks the argmax of the full forward at every step (${name})`,
    ignore: !existsSync(join(FIXTURES, name)),
    async fn() {
      // 20 new tokens after a 6-token prompt run past gemma2-tiny's sliding window of 8.
      const model = await loadModel(join(FIXTURES, name));
      try {
        const prompts = [[2, 17, 33, 4, 250, 9], [2, 5]];
        const generated = await generate(model, prompts, { maxNewTokens: 20, temperature: 0 });
        for (let i = 0; i < prompts.length; i++) {
          const sequence = [...prompts[i], ...generated[i].tokens];
          const logits = await model.logits(sequence.slice(0, -1));
          const vocab = model.config.vocabSize;
          for (let t = prompts[i].length - 1; t < sequence.length - 1; t++) {
            const row = logits.subarray(t * vocab, (t + 1) * vocab);
            const best = row.indexOf(Math.max(...row));
            assert.equal(sequence[t + 1], best, `${name} prompt ${i} position ${t + 1}`);
          }
        }
      } finally {
        model.dispose();
      }
    },
  });
}

Deno.test({
  name: "logits(), hidden(), lossAndGrads() and generate() return every activation buffer to the pool",
  ignore,
  async fn() {
    const model = await loadModel(DIR);
    const pool = model.engine.pool;
    const ids = [1, 403, 407, 261, 378];
    const run = async () => {
      await model.logits(ids);
      await model.hidden(ids);
      await model.lossAndGrads(ids);
      await generate(model, [ids, [1]], { maxNewTokens: 4, temperature: 0.7, repetitionPenalty: 1.2 });
    };
    try {
      await run(); // allocates the parameter gradients, which stay
      const live = pool.liveBytes;
      await run();
      assert.equal(pool.liveBytes, live);
    } finally {
      model.dispose();
    }
  },
});
