/**
 * Training progress on stderr: one line rewritten in place when stderr is a terminal, plain lines
 * (every `plainEvery` steps and at every eval) when it is a file or a pipe, so logs stay readable.
 *
 * @example
 * ```ts
 * const progress = new Progress(100);
 * progress.step(1, "loss 7.61 | lr 1.0e-4");
 * progress.done();
 * ```
 *
 * @module
 */

const encoder = new TextEncoder();

/** Prints the training progress line. */
export class Progress {
  readonly #tty = Deno.stderr.isTerminal();
  #open = false;

  readonly #started = performance.now();

  /** `firstStep`: the step this process starts after (non-zero when resuming), for the ETA. */
  constructor(readonly maxSteps: number, readonly firstStep = 0, readonly plainEvery = 10) {}

  /** Reports step `step` (1-based); `important` lines (evals, checkpoints) always print in plain mode. */
  step(step: number, text: string, important = false): void {
    const perStep = (performance.now() - this.#started) / 1000 / Math.max(1, step - this.firstStep);
    const eta = formatSeconds(perStep * (this.maxSteps - step));
    const line = `step ${
      String(step).padStart(String(this.maxSteps).length)
    }/${this.maxSteps} | ${text} | eta ${eta}`;
    if (this.#tty) {
      Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${line}`));
      this.#open = true;
      if (important) this.done();
    } else if (important || step % this.plainEvery === 0 || step === this.maxSteps) {
      this.message(line);
    }
  }

  /** Prints a whole line (ending the in-place line first). */
  message(text: string): void {
    this.done();
    Deno.stderr.writeSync(encoder.encode(`${text}\n`));
  }

  /** Ends the in-place line. */
  done(): void {
    if (!this.#open) return;
    Deno.stderr.writeSync(encoder.encode("\n"));
    this.#open = false;
  }
}

/** `75` → `1m15s`. */
function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}
