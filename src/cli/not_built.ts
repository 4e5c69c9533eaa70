/**
 * Commands of the product that are not built yet. They say so and exit non-zero instead of
 * pretending: RecPO training, full-ranking evaluation and single-user recommendation arrive with
 * the RecPO issue (DESIGN §6).
 *
 * @module
 */
import type { Command } from "./command.ts";

function notBuilt(name: string, summary: string, instead: string): Command {
  return {
    name,
    summary: `${summary} (not built yet)`,
    help: `Usage: r2ec ${name}\n\n${summary}. Not built yet: it exits with code 1. ${instead}`,
    run() {
      return Promise.reject(new Error(`"${name}" is not built yet (RecPO, DESIGN §6); ${instead}`));
    },
  };
}

/** Placeholders that fail loudly. */
export const notBuiltCommands: Command[] = [
  notBuilt("train", "RecPO training", 'use "r2ec pretrain" to train a causal LM meanwhile'),
  notBuilt("eval", "full-ranking HR/NDCG evaluation", "see README for what exists today"),
  notBuilt("recommend", "reasoning + top-K items for one user", "see README for what exists today"),
];
