/** `r2ec pretrain`: learning, logs, atomic checkpoints, SIGKILL + --resume, resume equivalence, errors. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../../src/model/decoder.ts";
import { SafetensorsFile } from "../../src/model/safetensors.ts";
import { pretrain, type PretrainSummary } from "../../src/train/pretrain.ts";
import { PRETRAIN_DEFAULTS, type PretrainConfig } from "../../src/train/pretrain_config.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const quiet = () => {};

/** The first `docs` documents of the bundled sample corpus (the acceptance text), as a smaller file. */
async function sampleText(docs: number): Promise<string> {
  const corpus = await Deno.readTextFile(join(ROOT, "data/sample/corpus.txt"));
  return corpus.split(/^<\|endoftext\|>\n/m).slice(0, docs).join("<|endoftext|>\n") + "<|endoftext|>\n";
}

/** A tiny model and run that finish in seconds on lavapipe. */
function tinyConfig(out: string, data: string, overrides: Partial<PretrainConfig> = {}): PretrainConfig {
  return {
    ...PRETRAIN_DEFAULTS,
    data,
    out,
    max_steps: 24,
    batch_size: 4,
    seq_len: 32,
    lr: 1e-2,
    warmup_steps: 4,
    eval_interval: 8,
    eval_batches: 2,
    eval_fraction: 0.1,
    save_interval: 8,
    vocab_size: 320,
    d_model: 32,
    layers: 2,
    heads: 2,
    kv_heads: 1,
    ff: 64,
    ...overrides,
  };
}

const dir = await Deno.makeTempDir({ prefix: "r2ec-pretrain-" });
const data = join(dir, "sample.txt");
await Deno.writeTextFile(data, await sampleText(120));

let straight: Promise<PretrainSummary> | undefined;
/** One uninterrupted run of {@linkcode tinyConfig}, shared by the tests that compare against it. */
const straightRun = () => straight ??= pretrain(tinyConfig(join(dir, "straight"), data), { print: quiet });

async function readLog(out: string): Promise<Record<string, number>[]> {
  const text = await Deno.readTextFile(join(out, "log.jsonl"));
  return text.trimEnd().split("\n").map((line) => JSON.parse(line));
}

const trainLosses = (log: Record<string, number>[]) =>
  log.filter((r) => "loss" in r).map((r) => [r.step, r.loss]);

function assertClose(actual: number[][], expected: number[][], relative: number) {
  assert.equal(actual.length, expected.length);
  actual.forEach(([step, loss], i) => {
    assert.equal(step, expected[i][0]);
    assert.ok(
      Math.abs(loss - expected[i][1]) <= relative * Math.abs(expected[i][1]),
      `step ${step}: ${loss} vs ${expected[i][1]}`,
    );
  });
}

/** Every file under `root`: JSON files parse, safetensors files validate and read, no temp leftovers. */
async function assertNoHalfFiles(root: string): Promise<void> {
  for await (const entry of Deno.readDir(root)) {
    const path = join(root, entry.name);
    assert.doesNotMatch(entry.name, /\.(tmp|old)-\d+/, `leftover ${path}`);
    if (entry.isDirectory) await assertNoHalfFiles(path);
    else if (entry.name.endsWith(".json")) JSON.parse(await Deno.readTextFile(path));
    else if (entry.name.endsWith(".jsonl")) (await readLog(root)).length;
    else if (entry.name.endsWith(".safetensors")) {
      using file = await SafetensorsFile.open(path);
      for (const name of file.tensors.keys()) file.read(name);
    }
  }
}

Deno.test("pretrain() lowers the eval loss of a fresh tiny model and writes trl-style logs and a loadable model", async () => {
  const summary = await straightRun();
  const out = join(dir, "straight");
  assert.equal(summary.steps, 24);
  assert.ok(
    summary.finalEvalLoss < summary.firstEvalLoss - 1,
    `${summary.firstEvalLoss} → ${summary.finalEvalLoss}`,
  );
  const log = await readLog(out);
  const steps = log.filter((r) => "loss" in r);
  assert.deepEqual(steps.map((r) => r.step), Array.from({ length: 24 }, (_, i) => i + 1));
  for (const key of ["loss", "grad_norm", "learning_rate", "tokens_per_s", "num_tokens", "epoch"]) {
    assert.ok(steps.every((r) => Number.isFinite(r[key])), key);
  }
  assert.deepEqual(log.filter((r) => "eval_loss" in r).map((r) => r.step), [0, 8, 16, 24]);
  assert.equal(JSON.parse(await Deno.readTextFile(join(out, "config.json"))).max_steps, 24);
  const model = await loadModel(summary.modelDir);
  try {
    assert.equal(model.config.hiddenSize, 32);
    assert.ok((await model.logits([5, 6, 7])).every(Number.isFinite));
  } finally {
    model.dispose();
  }
  await assertNoHalfFiles(out);
});

/** `deno run` of cli.ts with the pretrain task's permissions (writes limited to /tmp here). */
function cli(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write=/tmp",
      "--allow-env",
      join(ROOT, "cli.ts"),
      "pretrain",
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  });
}

function configArgs(c: PretrainConfig): string[] {
  return Object.entries(c).flatMap(([key, value]) => [`--${key.replaceAll("_", "-")}`, String(value)]);
}

Deno.test("pretrain killed with SIGKILL after its first checkpoint resumes to the same losses with no half-written file", async () => {
  const out = join(dir, "killed");
  const config = tinyConfig(out, data);
  const child = cli(configArgs(config)).spawn();
  const first = join(out, "checkpoint-8");
  for (let waited = 0;; waited += 20) {
    if (await Deno.stat(first).then(() => true, () => false)) break;
    assert.ok(waited < 60_000, "no checkpoint within 60 s");
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  const killed = await child.output();
  assert.equal(killed.signal, "SIGKILL", new TextDecoder().decode(killed.stderr));

  const resumed = await cli(["--resume", "--out", out]).output();
  const stdout = new TextDecoder().decode(resumed.stdout);
  assert.equal(resumed.code, 0, new TextDecoder().decode(resumed.stderr));
  assert.match(stdout, /Resuming from .*checkpoint-(8|16) \(step (8|16)\)/);
  await assertNoHalfFiles(out);
  await straightRun();
  assertClose(trainLosses(await readLog(out)), trainLosses(await readLog(join(dir, "straight"))), 1e-5);
});

Deno.test("N/2 steps, then --resume for N/2 more, equals N steps straight (constant LR, accumulation)", async () => {
  const overrides = {
    schedule: "constant",
    grad_accum_steps: 2,
    max_steps: 6,
    save_interval: 0,
    eval_interval: 0,
  };
  const full = await pretrain(tinyConfig(join(dir, "six"), data, overrides), { print: quiet });
  const halfOut = join(dir, "three-three");
  await pretrain(tinyConfig(halfOut, data, { ...overrides, max_steps: 3 }), { print: quiet });
  const resumed = await pretrain(tinyConfig(halfOut, data, overrides), { resume: true, print: quiet });
  assert.ok(
    Math.abs(resumed.finalLoss - full.finalLoss) <= 1e-5 * full.finalLoss,
    `${resumed.finalLoss} vs ${full.finalLoss}`,
  );
  assertClose(trainLosses(await readLog(halfOut)), trainLosses(await readLog(join(dir, "six"))), 1e-5);
});

Deno.test("LoRA on a saved model: 2 steps + --resume + 2 equals 4 straight; checkpoints hold the PEFT adapter", async () => {
  const base = (await straightRun()).modelDir;
  const lora = {
    model: base,
    lora_r: 4,
    lora_alpha: 8,
    lora_targets: "q,v,down",
    schedule: "constant",
    max_steps: 4,
    save_interval: 0,
    eval_interval: 0,
  };
  const straightOut = join(dir, "lora-four");
  const full = await pretrain(tinyConfig(straightOut, data, lora), { print: quiet });
  const halfOut = join(dir, "lora-two-two");
  await pretrain(tinyConfig(halfOut, data, { ...lora, max_steps: 2 }), { print: quiet });
  await pretrain(tinyConfig(halfOut, data, lora), { print: quiet, resume: true });
  assertClose(trainLosses(await readLog(halfOut)), trainLosses(await readLog(straightOut)), 1e-5);
  assert.ok(full.finalEvalLoss < full.firstEvalLoss, `${full.firstEvalLoss} → ${full.finalEvalLoss}`);
  using adapter = await SafetensorsFile.open(join(halfOut, "checkpoint-4", "adapter_model.safetensors"));
  assert.equal(adapter.tensors.size, 2 * 3 * 2); // A and B × 3 targets × 2 layers
  const adapterConfig = JSON.parse(
    await Deno.readTextFile(join(halfOut, "checkpoint-4", "adapter_config.json")),
  );
  assert.equal(adapterConfig.base_model_name_or_path, base);
  await assertNoHalfFiles(halfOut);
});

Deno.test("pretrain() stops at the step whose loss is not finite and keeps the last good checkpoint", async () => {
  const out = join(dir, "diverged");
  const config = tinyConfig(out, data, {
    lr: 1e30,
    warmup_steps: 0,
    max_grad_norm: 0,
    save_interval: 1,
    eval_interval: 0,
  });
  await assert.rejects(
    () => pretrain(config, { print: quiet }),
    /^Error: Training diverged at step \d+: (loss|gradient norm) is (NaN|-?Infinity), non-finite gradient in \S+ .*; last good checkpoint: .*checkpoint-\d+$/,
  );
  const log = await readLog(out);
  const lastLogged = log.filter((r) => "loss" in r).at(-1)!.step;
  await assertNoHalfFiles(out);
  assert.ok(await Deno.stat(join(out, `checkpoint-${lastLogged}`)));
});

Deno.test("r2ec pretrain rejects a bad config key and an unreadable data file in one line", async () => {
  const configFile = join(dir, "bad.json");
  await Deno.writeTextFile(configFile, JSON.stringify({ max_step: 3 }));
  const bad = await cli(["--config", configFile, "--out", join(dir, "bad")]).output();
  const badErr = new TextDecoder().decode(bad.stderr).replace(/.*XDG_RUNTIME_DIR.*\n/g, "").trimEnd();
  assert.equal(bad.code, 1);
  assert.match(
    badErr,
    /^r2ec pretrain: Unknown config key "max_step" in pretrain config file \(known: data, out,/,
  );
  assert.equal(badErr.split("\n").length, 1);

  const missing = await cli(["--data", join(dir, "nope.txt"), "--out", join(dir, "missing")]).output();
  const missingErr = new TextDecoder().decode(missing.stderr).replace(/.*XDG_RUNTIME_DIR.*\n/g, "").trimEnd();
  assert.equal(missing.code, 1);
  assert.match(missingErr, /^r2ec pretrain: Cannot read training text .*nope\.txt: /);
  assert.equal(missingErr.split("\n").length, 1);
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
