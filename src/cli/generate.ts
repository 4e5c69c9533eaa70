/**
 * `r2ec generate`: continue a prompt with a model folder, streaming the text as it is produced.
 *
 * @module
 */
import { type Command, intFlag, numberFlag, parseFlags, UsageError } from "./command.ts";
import { readGenerationConfig } from "../model/config.ts";
import { loadModel } from "../model/decoder.ts";
import { generate } from "../model/generate.ts";
import { applyChatTemplate } from "../text/chat_template.ts";
import { loadTokenizer } from "../text/tokenizer.ts";
import { describeGpu, getGpu } from "../gpu/device.ts";

/** Token budget when neither the flag nor generation_config.json sets one. */
const DEFAULT_MAX_NEW_TOKENS = 256;

const HELP = `Usage: r2ec generate --model DIR [--prompt TEXT] [flags]

Continues TEXT with the model in DIR (config.json, safetensors weights, tokenizer.json) and prints
the continuation as it is generated. An empty prompt starts from the BOS token. Sampling defaults
come from DIR/generation_config.json when present (greedy unless it sets do_sample), as in
transformers.

Flags:
  --model DIR                 model folder (required)
  --prompt TEXT               text to continue (default: "", i.e. start from BOS)
  --chat                      wrap the prompt as a user message with the chat template and
                              add the assistant generation prompt (default: off)
  --max-new-tokens N          new tokens at most (default: generation_config max_new_tokens, else ${DEFAULT_MAX_NEW_TOKENS})
  --temperature T             0 = greedy (default: generation_config temperature if do_sample, else 0)
  --top-k K                   keep the K most likely tokens, 0 = off (default: generation_config, else 50 when sampling)
  --top-p P                   nucleus sampling mass, 1 = off (default: generation_config, else 1)
  --repetition-penalty R      HF repetition penalty, 1 = off (default: generation_config, else 1)
  --stop TEXT                 stop after this string (kept in the output); repeatable (default: none)
  --seed S                    sampling seed (default: 0)

Examples:
  deno task r2ec generate --model ../shared/fixtures/stories260k --prompt "" --max-new-tokens 200 --temperature 0
  deno task r2ec generate --model models/qwen --chat --prompt "Hello" --temperature 0.7 --top-p 0.9 --seed 1`;

export const generateCommand: Command = {
  name: "generate",
  summary: "continue a prompt with a model folder (KV-cache generation)",
  help: HELP,
  async run(argv) {
    const { values } = parseFlags("generate", argv, {
      model: { type: "string" },
      prompt: { type: "string", default: "" },
      chat: { type: "boolean", default: false },
      "max-new-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      "repetition-penalty": { type: "string" },
      stop: { type: "string", multiple: true },
      seed: { type: "string" },
    });
    if (!values.model) throw new UsageError("generate: --model DIR is required");
    const dir = values.model;
    const defaults = (await readGenerationConfig(dir)) ?? {};
    const sampleByDefault = defaults.doSample === true;
    const temperature = numberFlag(
      "generate",
      "temperature",
      values.temperature,
      sampleByDefault ? defaults.temperature ?? 1 : 0,
    );
    const topK = intFlag("generate", "top-k", values["top-k"], defaults.topK ?? (temperature > 0 ? 50 : 0));
    const topP = numberFlag("generate", "top-p", values["top-p"], defaults.topP ?? 1);
    const repetitionPenalty = numberFlag(
      "generate",
      "repetition-penalty",
      values["repetition-penalty"],
      defaults.repetitionPenalty ?? 1,
    );
    const maxNewTokens = intFlag(
      "generate",
      "max-new-tokens",
      values["max-new-tokens"],
      defaults.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
    );
    const seed = intFlag("generate", "seed", values.seed, 0);
    if (temperature < 0) throw new UsageError(`generate: --temperature must be ≥ 0, got ${temperature}`);
    if (topK < 0) throw new UsageError(`generate: --top-k must be ≥ 0, got ${topK}`);
    if (!(topP > 0 && topP <= 1)) throw new UsageError(`generate: --top-p must be in (0, 1], got ${topP}`);
    if (!(repetitionPenalty > 0)) {
      throw new UsageError(`generate: --repetition-penalty must be > 0, got ${repetitionPenalty}`);
    }
    if (maxNewTokens < 1) throw new UsageError(`generate: --max-new-tokens must be ≥ 1, got ${maxNewTokens}`);

    const tokenizer = await loadTokenizer(dir);
    const text = values.chat
      ? applyChatTemplate(tokenizer.config, [{ role: "user", content: values.prompt }], {
        addGenerationPrompt: true,
      })
      : values.prompt;
    // A chat template writes its own BOS; plain text gets the tokenizer's special tokens.
    let prompt = text === "" ? [] : tokenizer.encode(text, { addSpecialTokens: !values.chat });
    if (prompt.length === 0 || (text === "" && prompt[0] !== tokenizer.bosId)) {
      if (tokenizer.bosId === null) throw new Error(`Cannot start from BOS: ${dir} defines no BOS token`);
      prompt = [tokenizer.bosId, ...prompt];
    }
    const model = await loadModel(dir);
    console.error(describeGpu((await getGpu()).info));
    const encoder = new TextEncoder();
    try {
      await generate(model, [prompt], {
        maxNewTokens,
        temperature,
        topK,
        topP,
        repetitionPenalty,
        seed,
        eosIds: tokenizer.eosIds,
        stopStrings: values.stop ?? [],
        tokenizer,
        onText: (_, delta) => Deno.stdout.writeSync(encoder.encode(delta)),
      });
      Deno.stdout.writeSync(encoder.encode("\n"));
    } finally {
      model.dispose();
    }
  },
};
