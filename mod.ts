/**
 * r2ec — reasoning-then-recommend LLM recommenders (R²ec / RecPO) on WebGPU, in Deno.
 *
 * Every forward and backward pass runs in handwritten WGSL (`kernels/`), each with a plain
 * TypeScript CPU reference. This module re-exports the library: models (Qwen2.5, Gemma-2, Llama
 * from Hugging Face folders), tokenizers and chat templates, Amazon Reviews preprocessing, the
 * R²ec prompts, causal-LM pretraining, and (as namespaces) the engine and the ops.
 *
 * @example
 * ```ts
 * import { generate, loadModel, loadTokenizer } from "./mod.ts";
 *
 * const dir = "../shared/fixtures/stories260k";
 * const model = await loadModel(dir);
 * const tokenizer = await loadTokenizer(dir);
 * const [out] = await generate(model, [[tokenizer.bosId!]], { maxNewTokens: 20, temperature: 0, tokenizer });
 * console.log(out.text);
 * model.dispose();
 * ```
 *
 * @module
 */

// Engine and ops, as namespaces: `gpu.getEngine()`, `ops.matmul(...)`.
export * as gpu from "./src/gpu/mod.ts";
export * as ops from "./src/ops/mod.ts";

// Models.
export {
  type BackwardInputs,
  CausalLM,
  ForwardPass,
  loadModel,
  modelFromTensors,
  nextTokenTargets,
  type TokenBatch,
} from "./src/model/decoder.ts";
export {
  DecodeSession,
  type FinishReason,
  generate,
  type GenerateOptions,
  type Generation,
  type SamplingOptions,
} from "./src/model/generate.ts";
export { type OptimizerConfig, type OptimizerSnapshot, TrainableModel } from "./src/model/trainable.ts";
export {
  attachLora,
  attachLoraAdapter,
  loraAdapterOf,
  type LoraConfig,
  mergeLora,
  unmergeLora,
} from "./src/model/lora.ts";
export {
  type ModelConfig,
  parseModelConfig,
  readGenerationConfig,
  readModelConfig,
  SUPPORTED_ARCHITECTURES,
  tinyQwen2Config,
  writeModelConfig,
} from "./src/model/config.ts";
export { SafetensorsError, SafetensorsFile, writeSafetensors } from "./src/model/safetensors.ts";
export { expectedTensorShapes, openWeights } from "./src/model/weights.ts";
export { readLoraAdapter, saveHfCheckpoint, saveLoraAdapter } from "./src/model/checkpoint.ts";

// Text.
export { createTokenizer, loadTokenizer, type Tokenizer } from "./src/text/tokenizer.ts";
export { applyChatTemplate, type ChatMessage } from "./src/text/chat_template.ts";
export { findStopString, IncrementalDecoder } from "./src/text/incremental_decoder.ts";
export { trainBpeTokenizer, writeTokenizer } from "./src/text/bpe_trainer.ts";

// Data and prompts.
export {
  type Dataset,
  type DatasetInfo,
  type ItemRecord,
  PAD_ITEM_ID,
  readDataset,
  readItems,
  readSplit,
  type SampleRecord,
} from "./src/data/dataset.ts";
export { preprocess, PREPROCESS_DEFAULTS, type PreprocessOptions } from "./src/data/preprocess.ts";
export { generateWorld, SAMPLE_CATEGORY } from "./src/data/synthetic.ts";
export { loadPromptTemplates, renderItemPrompt, renderUserPrompt } from "./src/prompts/render.ts";
export { generationPromptText, itemInputText, trajectoryText } from "./src/prompts/chat.ts";
export { formatFixed, formatTimedelta, pythonFloat } from "./src/prompts/format.ts";

// Training.
export { pretrain, type PretrainSummary } from "./src/train/pretrain.ts";
export { PRETRAIN_DEFAULTS, type PretrainConfig } from "./src/train/pretrain_config.ts";
export { learningRate } from "./src/train/schedule.ts";
