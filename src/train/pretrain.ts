/**
 * Causal-LM pretraining (`r2ec pretrain`): next-token cross-entropy on a text stream, AdamW with
 * a warm-up + constant/cosine schedule, global-norm clipping, gradient accumulation, periodic
 * eval loss on the held-out tail, trl-named JSONL logs, and atomic, resumable checkpoints.
 *
 * Each optimizer step is one recorded command buffer (every micro-batch's forward and backward,
 * then AdamW) and one sync, which reads back only the token log-probs and the gradient norm.
 * Batches are drawn by a counter-based generator from (seed, micro-batch index), and the AdamW
 * moments are saved exactly, so a resumed run repeats an uninterrupted one step for step.
 *
 * @example
 * ```ts
 * const summary = await pretrain({ ...PRETRAIN_DEFAULTS, max_steps: 20 });
 * console.log(summary.finalEvalLoss);
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { type FlatConfig, formatConfig } from "./config.ts";
import { appendJsonLine, writeTextAtomic } from "../io/files.ts";
import { freshModelConfig, initialWeights, prepareTokenizer } from "./fresh_model.ts";
import { lmEvalLoss, lmTrainStep, nonFiniteGradients } from "./lm_steps.ts";
import { checkPretrainConfig, loraTargets, type PretrainConfig } from "./pretrain_config.ts";
import { Progress } from "./progress.ts";
import {
  checkpointDir,
  latestCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  readOptimizerState,
  readTrainerState,
  removeDirectory,
  removePartialWrites,
  type TrainerState,
  truncateLog,
  writeOptimizerState,
} from "./run_dir.ts";
import { learningRate } from "./schedule.ts";
import { evalWindows, readTextDocuments, sampleBatch, splitStream, tokenizeDocuments } from "./text_data.ts";
import { type CausalLM, loadModel, modelFromTensors } from "../model/decoder.ts";
import { readLoraAdapter, writeDirectoryAtomic } from "../model/checkpoint.ts";
import { TrainableModel } from "../model/trainable.ts";
import type { MatmulPrecision } from "../model/linear.ts";
import { loraParams } from "../model/lora.ts";
import { writeParam } from "../model/params.ts";
import { loadTokenizer, type Tokenizer } from "../text/tokenizer.ts";
import { describeGpu, getGpu } from "../gpu/device.ts";

/** Checkpoints kept on disk; older ones are deleted once a newer one is complete. */
export const KEEP_CHECKPOINTS = 2;

/** What a finished run reports. */
export interface PretrainSummary {
  steps: number;
  /** Eval loss before the first step of this run (or at the resumed step). */
  firstEvalLoss: number;
  finalEvalLoss: number;
  finalLoss: number;
  /**
   * Training tokens per second over this process's steps after its first, which also compiles
   * the kernels (that step alone when it is the only one).
   */
  tokensPerSecond: number;
  seconds: number;
  modelDir: string;
}

/** Options beyond the flat config. */
export interface PretrainOptions {
  /** Continue from the newest complete checkpoint in `config.out`. */
  resume?: boolean;
  /** Where the config header and the summary go (default: stdout). */
  print?: (line: string) => void;
}

/** The newest complete checkpoint of `out` and its trainer state (partial writes removed first). */
export async function resumeBase(out: string): Promise<{ state: TrainerState; dir: string }> {
  await removePartialWrites(out);
  const latest = await latestCheckpoint(out);
  if (!latest) throw new Error(`Cannot resume: ${out} has no complete checkpoint-N directory`);
  return { state: await readTrainerState(latest.dir), dir: latest.dir };
}

/** Runs (or resumes) pretraining as configured; see the module doc. */
export async function pretrain(
  config: PretrainConfig,
  options: PretrainOptions = {},
): Promise<PretrainSummary> {
  checkPretrainConfig(config);
  const print = options.print ?? ((line: string) => console.log(line));
  print(`r2ec pretrain${options.resume ? " --resume" : ""}:\n${formatConfig(config)}`);
  // Read the text before touching the run directory, so a wrong path changes nothing.
  const docs = await readTextDocuments(config.data);
  if (docs.length === 0) throw new Error(`Training text ${config.data} holds no documents`);
  const out = config.out;
  await Deno.mkdir(out, { recursive: true });
  const removed = await removePartialWrites(out);
  if (removed.length > 0) print(`Removed partial writes of a killed run: ${removed.join(", ")}`);
  const resumeFrom = options.resume ? await resumeBase(out) : null;
  if (!resumeFrom) await clearPreviousRun(out, print);

  const tokenizerDir = config.model === "" ? join(out, "tokenizer") : config.model;
  if (config.model === "") {
    const { trained } = await prepareTokenizer(
      config.data,
      docs,
      tokenizerDir,
      config.vocab_size,
      !resumeFrom,
    );
    print(`${trained ? "Trained a BPE tokenizer into" : "Reusing the BPE tokenizer in"} ${tokenizerDir}`);
  }
  const tokenizer = await loadTokenizer(tokenizerDir);
  const { train, evaluation } = tokenStreams(config, docs, tokenizer, tokenizerDir);
  print(describeGpu((await getGpu()).info));
  const model = await buildModel(config, tokenizer, resumeFrom?.dir ?? null);
  model.matmulPrecision = config.matmul_precision as MatmulPrecision;
  const trainable = config.lora_r > 0
    ? TrainableModel.lora(model, {
      rank: config.lora_r,
      alpha: config.lora_alpha,
      targetModules: loraTargets(config),
      seed: config.seed,
    })
    : TrainableModel.full(model);
  try {
    let state: TrainerState = { global_step: 0, batches_drawn: 0, tokens_seen: 0, config };
    let evalLosses: number[] = [];
    if (resumeFrom) {
      state = { ...resumeFrom.state, config };
      await restoreTrainable(trainable, config, resumeFrom.dir);
      const kept = await truncateLog(join(out, "log.jsonl"), state.global_step);
      evalLosses = kept.filter((r) => r.eval_loss !== undefined).map((r) => r.eval_loss);
      print(`Resuming from ${resumeFrom.dir} (step ${state.global_step})`);
    }
    await writeTextAtomic(join(out, "config.json"), JSON.stringify(config, null, 2) + "\n");
    const parameterCount = trainable.parameters.reduce((n, p) => n + p.value.rows * p.value.cols, 0);
    print(
      `${train.length} training tokens, ${evaluation.length} eval tokens, ${parameterCount} trained parameters (${trainable.mode})`,
    );
    print(`Compiled the training step's pipelines in ${((await trainable.warmup()) / 1000).toFixed(1)} s`);
    return await trainLoop({
      config,
      trainable,
      tokenizerDir,
      train,
      evaluation,
      state,
      evalLosses,
      print,
    });
  } finally {
    trainable.dispose();
    model.dispose();
  }
}

/** The tokenized text, split into a training head and the held-out eval tail. */
function tokenStreams(config: PretrainConfig, docs: string[], tokenizer: Tokenizer, tokenizerDir: string) {
  const separator = tokenizer.tokenToId("<|endoftext|>") ?? tokenizer.eosIds[0];
  if (separator === undefined) {
    throw new Error(
      `Tokenizer in ${tokenizerDir} has neither <|endoftext|> nor an EOS token to separate documents`,
    );
  }
  const encode = (text: string) => tokenizer.encode(text, { addSpecialTokens: false });
  const streams = splitStream(tokenizeDocuments(docs, encode, separator), config.eval_fraction);
  if (streams.evaluation.length < config.seq_len) {
    throw new Error(
      `Eval tail of ${config.data} has ${streams.evaluation.length} tokens, fewer than seq_len ${config.seq_len}: raise eval_fraction or use more text`,
    );
  }
  return streams;
}

/** A fresh run starts over: earlier checkpoints, final model and log are removed (the tokenizer cache stays). */
async function clearPreviousRun(out: string, print: (line: string) => void): Promise<void> {
  const old = await listCheckpoints(out);
  if (old.length > 0) {
    print(
      `Starting over in ${out}: removing ${
        old.map((c) => c.dir).join(", ")
      } (use --resume to continue instead)`,
    );
  }
  for (const { dir } of old) await removeDirectory(dir);
  await removeDirectory(join(out, "model"));
  await Deno.remove(join(out, "log.jsonl")).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

async function buildModel(
  config: PretrainConfig,
  tokenizer: Tokenizer,
  checkpoint: string | null,
): Promise<CausalLM> {
  // Full training resumes from the checkpoint's weights; LoRA reloads the base and then its adapter.
  const source = checkpoint && config.lora_r === 0 ? checkpoint : config.model;
  let model: CausalLM;
  if (source !== "") model = await loadModel(source);
  else {
    const modelConfig = freshModelConfig(tokenizer, config);
    model = await modelFromTensors(modelConfig, initialWeights(modelConfig, config.seed));
  }
  if (model.config.vocabSize < tokenizer.vocabSize) {
    model.dispose();
    throw new Error(
      `Model ${source} has ${model.config.vocabSize} embedding rows, fewer than its tokenizer's ${tokenizer.vocabSize} tokens`,
    );
  }
  return model;
}

async function restoreTrainable(
  trainable: TrainableModel,
  config: PretrainConfig,
  dir: string,
): Promise<void> {
  if (config.lora_r > 0) {
    const adapter = await readLoraAdapter(dir, trainable.model.config);
    const pool = trainable.model.engine.pool;
    for (const p of loraParams(trainable.model)) {
      const [path, factor] = p.name.split(/\.lora_([AB])\.weight$/);
      const values = adapter.factors.get(path);
      if (!values) throw new Error(`Adapter in ${dir} has no factors for ${path}`);
      writeParam(pool, p, factor === "A" ? values.a : values.b);
    }
  }
  const names = trainable.parameters.map((p) => p.name);
  trainable.loadOptimizerState(await readOptimizerState(dir, names));
}

interface LoopInputs {
  config: PretrainConfig;
  trainable: TrainableModel;
  tokenizerDir: string;
  train: Int32Array;
  evaluation: Int32Array;
  state: TrainerState;
  /** Eval losses logged before this process started (when resuming). */
  evalLosses: number[];
  print: (line: string) => void;
}

async function trainLoop(inputs: LoopInputs): Promise<PretrainSummary> {
  const { config, trainable, train, evaluation, state, print } = inputs;
  const logPath = join(config.out, "log.jsonl");
  const schedule = {
    lr: config.lr,
    schedule: config.schedule as "constant" | "cosine",
    warmupSteps: config.warmup_steps,
    maxSteps: config.max_steps,
    minLrRatio: config.min_lr_ratio,
  };
  const progress = new Progress(config.max_steps, state.global_step);
  const tokensPerStep = config.batch_size * config.seq_len * config.grad_accum_steps;
  const started = performance.now();
  let trainedTokens = 0;
  let trainSeconds = 0;
  let stepsHere = 0;
  let lastLoss = NaN;

  const evaluate = async () => {
    const windows = evalWindows(evaluation, config.seq_len, config.eval_batches * config.batch_size);
    const loss = await lmEvalLoss(trainable.model, windows, config.batch_size);
    await appendJsonLine(logPath, {
      step: state.global_step,
      eval_loss: loss,
      epoch: state.tokens_seen / train.length,
    });
    return loss;
  };
  // A resumed run does not evaluate again at its start, so its log matches an uninterrupted one.
  let firstEvalLoss = inputs.evalLosses[0] ?? NaN;
  if (state.global_step === 0) {
    firstEvalLoss = await evaluate();
    progress.message(`step 0: eval_loss ${firstEvalLoss.toFixed(4)}`);
  }
  let finalEvalLoss = inputs.evalLosses.at(-1) ?? firstEvalLoss;

  while (state.global_step < config.max_steps) {
    const lr = learningRate(schedule, state.global_step);
    const t0 = performance.now();
    const batches = Array.from(
      { length: config.grad_accum_steps },
      (_, a) => sampleBatch(train, config.batch_size, config.seq_len, config.seed, state.batches_drawn + a),
    );
    const { loss, gradNorm } = await lmTrainStep(trainable, batches, config.seq_len, {
      lr,
      beta1: config.beta1,
      beta2: config.beta2,
      eps: config.eps,
      weightDecay: config.weight_decay,
      maxGradNorm: config.max_grad_norm,
    });
    const seconds = (performance.now() - t0) / 1000;
    state.global_step++;
    state.batches_drawn += config.grad_accum_steps;
    state.tokens_seen += tokensPerStep;
    // The first step of a process also compiles the kernels (many seconds on llvmpipe): once
    // there is a second, the rate leaves the first out.
    if (++stepsHere === 2) trainedTokens = trainSeconds = 0;
    trainedTokens += tokensPerStep;
    trainSeconds += seconds;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      progress.done();
      const what = Number.isFinite(loss) ? `gradient norm is ${gradNorm}` : `loss is ${loss}`;
      const bad = await nonFiniteGradients(trainable);
      const where = bad.length === 0
        ? ""
        : `, non-finite gradient in ${bad[0]}${bad.length > 1 ? ` and ${bad.length - 1} more tensors` : ""}`;
      const last = await latestCheckpoint(config.out);
      throw new Error(
        `Training diverged at step ${state.global_step}: ${what}${where}; last good checkpoint: ${
          last?.dir ?? "none"
        }`,
      );
    }
    lastLoss = loss;
    const record = {
      step: state.global_step,
      loss,
      grad_norm: gradNorm,
      learning_rate: lr,
      tokens_per_s: tokensPerStep / seconds,
      num_tokens: state.tokens_seen,
      epoch: state.tokens_seen / train.length,
    };
    await appendJsonLine(logPath, record);
    const last = state.global_step === config.max_steps;
    let line = `loss ${loss.toFixed(4)} | grad_norm ${gradNorm.toFixed(3)} | lr ${lr.toExponential(2)} | ${
      Math.round(record.tokens_per_s)
    } tok/s`;
    const evalNow = last || (config.eval_interval > 0 && state.global_step % config.eval_interval === 0);
    if (evalNow) {
      finalEvalLoss = await evaluate();
      line += ` | eval_loss ${finalEvalLoss.toFixed(4)}`;
    }
    const saveNow = last || (config.save_interval > 0 && state.global_step % config.save_interval === 0);
    if (saveNow) {
      await saveCheckpoint(inputs);
      line += ` | saved checkpoint-${state.global_step}`;
    }
    progress.step(state.global_step, line, evalNow || saveNow);
  }
  progress.done();
  const modelDir = join(config.out, "model");
  await trainable.save(modelDir, { tokenizerDir: inputs.tokenizerDir });
  const summary: PretrainSummary = {
    steps: state.global_step,
    firstEvalLoss,
    finalEvalLoss,
    finalLoss: lastLoss,
    tokensPerSecond: trainSeconds > 0 ? trainedTokens / trainSeconds : 0,
    seconds: (performance.now() - started) / 1000,
    modelDir,
  };
  print(
    `pretrain done: ${summary.steps} steps, eval_loss ${firstEvalLoss.toFixed(4)} → ${
      finalEvalLoss.toFixed(4)
    }, ` +
      `${Math.round(summary.tokensPerSecond)} tokens/s, ${
        summary.seconds.toFixed(1)
      } s; model in ${modelDir}`,
  );
  return summary;
}

/** Writes `checkpoint-<step>` atomically (model or adapter, optimizer, trainer state), then prunes old ones. */
async function saveCheckpoint(inputs: LoopInputs): Promise<void> {
  const { config, trainable, state } = inputs;
  const dir = checkpointDir(config.out, state.global_step);
  const optimizer = await trainable.optimizerState();
  await writeDirectoryAtomic(dir, async (temp) => {
    if (trainable.mode === "lora") await trainable.saveAdapter(temp, config.model);
    else await trainable.save(temp, { tokenizerDir: inputs.tokenizerDir });
    await writeOptimizerState(temp, optimizer);
    const trainerState: TrainerState = { ...state, config: config as unknown as FlatConfig };
    await writeTextAtomic(join(temp, "trainer_state.json"), JSON.stringify(trainerState, null, 2) + "\n");
  });
  await pruneCheckpoints(config.out, KEEP_CHECKPOINTS);
}
