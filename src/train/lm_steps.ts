/**
 * The GPU steps of causal-LM training: one optimizer step over several micro-batches (gradient
 * accumulation) recorded into one command buffer with one sync, the eval loss over fixed windows,
 * and the names of non-finite gradients after a failed step.
 *
 * Every batch is `[rows × seqLen]` token windows; the loss is the mean next-token cross-entropy
 * over all `rows · (seqLen − 1)` targets of the step.
 *
 * @example
 * ```ts
 * const { loss, gradNorm } = await lmTrainStep(trainable, [batchA, batchB], 128, { lr: 1e-3 });
 * const evalLoss = await lmEvalLoss(trainable.model, windows, 8);
 * ```
 *
 * @module
 */
import { type CausalLM, nextTokenTargets, type TokenBatch } from "../model/decoder.ts";
import { readChunks } from "../model/params.ts";
import type { OptimizerConfig, TrainableModel } from "../model/trainable.ts";

/**
 * Records forward, log-probs and backward of every batch (gradients accumulate), then AdamW;
 * submits once and returns the mean loss and the pre-clip global gradient norm.
 */
export async function lmTrainStep(
  trainable: TrainableModel,
  batches: readonly Int32Array[],
  seqLen: number,
  optimizer: OptimizerConfig,
): Promise<{ loss: number; gradNorm: number }> {
  const model = trainable.model;
  const rec = model.engine.recorder();
  trainable.zeroGrad(rec);
  const targets = batches.reduce((n, ids) => n + (ids.length / seqLen) * (seqLen - 1), 0);
  const reads: Promise<Float32Array>[] = [];
  for (const ids of batches) {
    const input: TokenBatch = { ids, batch: ids.length / seqLen, seqLen };
    const weights = new Float32Array(ids.length);
    for (let i = 0; i < ids.length; i++) if ((i + 1) % seqLen !== 0) weights[i] = -1 / targets;
    const pass = model.forward(rec, input, { train: true });
    reads.push(rec.read(pass.logProbs(rec, nextTokenTargets(input)).logprob));
    pass.backward(rec, { dLogprob: weights });
    pass.release();
  }
  const gradNorm = rec.read(trainable.step(rec, optimizer));
  await rec.submit();
  return { loss: await meanTargetLoss(reads, seqLen), gradNorm: (await gradNorm)[0] };
}

/** Mean next-token loss of `windows` (each `seqLen` tokens), forward only, `batch` windows at a time, one sync. */
export async function lmEvalLoss(
  model: CausalLM,
  windows: readonly Int32Array[],
  batch: number,
): Promise<number> {
  if (windows.length === 0) throw new RangeError("Eval loss needs at least one window");
  const seqLen = windows[0].length;
  const rec = model.engine.recorder();
  const reads: Promise<Float32Array>[] = [];
  for (let at = 0; at < windows.length; at += batch) {
    const group = windows.slice(at, at + batch);
    const ids = new Int32Array(group.length * seqLen);
    group.forEach((w, i) => ids.set(w, i * seqLen));
    const input: TokenBatch = { ids, batch: group.length, seqLen };
    const pass = model.forward(rec, input);
    reads.push(rec.read(pass.logProbs(rec, nextTokenTargets(input)).logprob));
    pass.release();
  }
  await rec.submit();
  return meanTargetLoss(reads, seqLen);
}

/** −mean log-prob over every row but the last of each sequence (which has no next token). */
async function meanTargetLoss(reads: Promise<Float32Array>[], seqLen: number): Promise<number> {
  let sum = 0;
  let count = 0;
  for (const read of reads) {
    const logprob = await read;
    for (let i = 0; i < logprob.length; i++) {
      if ((i + 1) % seqLen === 0) continue;
      sum += logprob[i];
      count++;
    }
  }
  return -sum / count;
}

/** Names of the trained tensors whose gradient (still on the GPU after a failed step) holds NaN or ±Inf. */
export async function nonFiniteGradients(trainable: TrainableModel): Promise<string[]> {
  const rec = trainable.model.engine.recorder();
  const reads = trainable.parameters.map((p) => ({ name: p.name, grad: p.grad && readChunks(rec, p.grad) }));
  await rec.submit();
  const bad: string[] = [];
  for (const { name, grad } of reads) if (grad && !(await grad).every(Number.isFinite)) bad.push(name);
  return bad;
}
