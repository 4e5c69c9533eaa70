/**
 * Profile of one training step of the reference decoder (DESIGN §9), by section and by kernel.
 *
 * The step is recorded once through a capturing recorder (the real step code, unchanged, with one
 * submit), then every captured command is replayed in groups — per section (block forward, LM
 * head forward, LM head backward, block backward, embedding backward, AdamW) and per kernel label
 * within each — `reps` times per group in a submit of its own. A group's time is its replay time
 * minus an empty submit's sync, divided by `reps`. Replays reuse the step's buffers and textures
 * (their contents no longer matter: no kernel here has data-dependent cost), so the profile adds
 * nothing to the real step.
 *
 * Run: `deno run --allow-read=. --allow-env src/bench/step_profile.ts [full|lora] [f32|bf16]
 * [--detail] [--jit [--warm]]` (`--detail`: rows per kernel and grid; `--jit`: which commands of a
 * first step pay the pipeline JIT (first run minus second), with Mesa's cache as it is; `--warm`:
 * after the explicit warm-up).
 *
 * @module
 */
import { getEngine } from "../gpu/engine.ts";
import type { Kernel } from "../gpu/pipelines.ts";
import { type Binding, Recorder } from "../gpu/recorder.ts";
import { tinyQwen2Config } from "../model/config.ts";
import { modelFromTensors, nextTokenTargets } from "../model/decoder.ts";
import { TrainableModel } from "../model/trainable.ts";
import { initialWeights } from "../train/fresh_model.ts";
import type { Tensor } from "../gpu/tensor.ts";

type Command =
  | { kind: "dispatch"; label: string; replay: (rec: Recorder) => void }
  | { kind: "encoder"; label: string; replay: (rec: Recorder) => void };

/** A recorder that also keeps every dispatch and encoder command for replay, tagged by section. */
class CapturingRecorder extends Recorder {
  readonly commands: { section: string; command: Command }[] = [];
  section = "setup";
  #reading = false;

  override dispatch(
    kernel: Kernel,
    bindings: Binding[],
    workgroups: readonly [number, number?, number?],
    params?: ArrayBufferView | ArrayBuffer,
  ): void {
    super.dispatch(kernel, bindings, workgroups, params);
    const copy = params === undefined ? undefined : new Uint8Array(
      params instanceof ArrayBuffer ? params : params.buffer,
      params instanceof ArrayBuffer ? 0 : params.byteOffset,
      params.byteLength,
    ).slice();
    const label = `${kernel.label} ${workgroups.join("×")}`;
    this.#push({
      kind: "dispatch",
      label,
      replay: (rec) => rec.dispatch(kernel, bindings, workgroups, copy),
    });
  }

  override encoder(): GPUCommandEncoder {
    const encoder = super.encoder();
    if (this.#reading) return encoder;
    return new Proxy(encoder, {
      get: (target, key) => {
        const value = Reflect.get(target, key, target);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          this.#push({
            kind: "encoder",
            label: `encoder.${String(key)}`,
            replay: (rec) =>
              (rec.encoder() as unknown as Record<string, (...a: unknown[]) => void>)[key as string](...args),
          });
          return value.apply(target, args);
        };
      },
    });
  }

  /** Host writes replay as fresh writes: their staging buffers die with the submit that used them. */
  override write(t: Tensor, data: Float32Array | Int32Array | Uint32Array): void {
    this.#reading = true;
    try {
      super.write(t, data);
    } finally {
      this.#reading = false;
    }
    const copy = data.slice();
    this.#push({ kind: "encoder", label: "write", replay: (rec) => rec.write(t, copy) });
  }

  override readBytes(buffer: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    this.#reading = true;
    try {
      return super.readBytes(buffer, offset, bytes);
    } finally {
      this.#reading = false;
    }
  }

  #push(command: Command): void {
    this.commands.push({ section: this.section, command });
  }
}

async function timeSubmit(rec: Recorder): Promise<number> {
  const start = performance.now();
  await rec.submit();
  return performance.now() - start;
}

const mode = (Deno.args[0] ?? "full") as "full" | "lora";
const precision = (Deno.args[1] ?? "f32") as "f32" | "bf16";
const reps = 3;
const engine = await getEngine();
const config = tinyQwen2Config();
const model = await modelFromTensors(config, initialWeights(config, 0));
model.matmulPrecision = precision;
const trainable = mode === "full" ? TrainableModel.full(model) : TrainableModel.lora(model, {
  rank: 4,
  alpha: 128,
  targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
});
const [batch, seqLen] = [4, 256];
const ids = Int32Array.from({ length: batch * seqLen }, (_, i) => (i * 7919 + 13) % config.vocabSize);
const input = { ids, batch, seqLen };
const targets = nextTokenTargets(input);
const count = targets.filter((t) => t >= 0).length;
const weights = Float32Array.from(targets, (t) => (t >= 0 ? -1 / count : 0));

async function step(rec: Recorder & { section?: string }): Promise<number> {
  const mark = (s: string) => {
    if (rec instanceof CapturingRecorder) rec.section = s;
  };
  mark("zero_grad");
  trainable.zeroGrad(rec);
  mark("forward");
  const pass = model.forward(rec, input, { train: true });
  mark("lm_head_forward");
  pass.logProbs(rec, targets);
  mark("backward");
  pass.backward(rec, { dLogprob: weights });
  mark("adamw");
  rec.read(trainable.step(rec, { lr: 1e-4, weightDecay: 0.1 }));
  pass.release();
  return await timeSubmit(rec);
}

if (Deno.args.includes("--jit")) {
  // Which commands pay the JIT: capture the first step without running it, then run each command
  // alone, twice (cold pipelines compile at their first dispatch), and list those whose first run
  // took > 20 ms longer.
  // --warm: after TrainableModel.warmup(), to find what it leaves uncompiled.
  if (Deno.args.includes("--warm")) console.log(`warm-up ${(await trainable.warmup()).toFixed(0)} ms`);
  const probe = new CapturingRecorder(engine.gpu, engine.kernels);
  trainable.zeroGrad(probe);
  const pass = model.forward(probe, input, { train: true });
  pass.logProbs(probe, targets);
  pass.backward(probe, { dLogprob: weights });
  trainable.step(probe, { lr: 1e-4, weightDecay: 0.1 });
  pass.release();
  // A command's JIT: its first run minus a second one (the same work, compiled).
  const replay = (command: Command) => {
    const rec = engine.recorder();
    command.replay(rec);
    return timeSubmit(rec);
  };
  let total = 0, jit = 0;
  for (const { command } of probe.commands) {
    const first = await replay(command);
    const compile = first - await replay(command);
    total += first;
    jit += Math.max(0, compile);
    if (compile > 20) console.log(`${compile.toFixed(0).padStart(6)} ms  ${command.label}`);
  }
  console.log(
    `all commands one by one: ${total.toFixed(0)} ms, of which JIT ~${
      jit.toFixed(0)
    } ms, ${engine.kernels.size} pipelines`,
  );
  Deno.exit(0);
}
const cold = await step(engine.recorder());
const warm = [await step(engine.recorder()), await step(engine.recorder())];
const capture = new CapturingRecorder(engine.gpu, engine.kernels);
const captured = await step(capture);

// The backward section splits at the final norm's backward: LM head before, blocks after.
const sectioned = capture.commands.map(({ section, command }) => ({ section, command }));
const firstNormBackward = sectioned.findIndex(({ section, command }) =>
  section === "backward" && command.label.startsWith("rmsnorm:rmsnorm_backward")
);
const firstEmbedding = sectioned.findIndex(({ section, command }) =>
  section === "backward" && command.label.startsWith("embedding:")
);
sectioned.forEach((c, i) => {
  if (c.section !== "backward") return;
  c.section = i < firstNormBackward
    ? "lm_head_backward"
    : firstEmbedding >= 0 && i >= firstEmbedding
    ? "embedding_backward"
    : "block_backward";
});

async function replay(commands: Command[]): Promise<number> {
  const rec = engine.recorder();
  for (let r = 0; r < reps; r++) for (const c of commands) c.replay(rec);
  return await timeSubmit(rec);
}
const syncs: number[] = [];
for (let i = 0; i < 3; i++) syncs.push(await timeSubmit(engine.recorder()));
const sync = Math.min(...syncs);

const sections = [...new Set(sectioned.map((c) => c.section))];
console.log(
  `train step ${mode} ${precision}: cold ${cold.toFixed(0)} ms, warm ${
    warm.map((t) => t.toFixed(0)).join(" / ")
  } ms, ` +
    `captured ${
      captured.toFixed(0)
    } ms, ${capture.dispatches} dispatches, ${capture.commands.length} commands, ` +
    `${engine.kernels.size} pipelines, sync ${sync.toFixed(1)} ms`,
);
let total = 0;
for (const section of sections) {
  const commands = sectioned.filter((c) => c.section === section).map((c) => c.command);
  const ms = (await replay(commands) - sync) / reps;
  total += ms;
  console.log(`\n${section.padEnd(20)} ${ms.toFixed(1).padStart(8)} ms  (${commands.length} commands)`);
  const byLabel = new Map<string, Command[]>();
  for (const c of commands) {
    // --detail: one row per kernel and grid (e.g. each matmul shape) instead of per kernel.
    const key = Deno.args.includes("--detail") ? c.label : c.label.replace(/ .*/, "");
    byLabel.set(key, [...(byLabel.get(key) ?? []), c]);
  }
  const rows: [string, number, number][] = [];
  for (const [label, group] of byLabel) rows.push([label, (await replay(group) - sync) / reps, group.length]);
  rows.sort((a, b) => b[1] - a[1]);
  for (const [label, t, n] of rows) {
    console.log(`  ${label.padEnd(44)} ${t.toFixed(1).padStart(8)} ms  ×${n}`);
  }
}
console.log(`\nsum of sections ${total.toFixed(0)} ms`);
trainable.dispose();
model.dispose();
