/**
 * The registry of `r2ec` subcommands, in the order `r2ec --help` lists them.
 *
 * @module
 */
import { benchCommand } from "./bench.ts";
import type { Command } from "./command.ts";
import { generateCommand } from "./generate.ts";
import { infoCommand } from "./info.ts";
import { notBuiltCommands } from "./not_built.ts";
import { preprocessCommand } from "./preprocess.ts";
import { pretrainCommand } from "./pretrain.ts";
import { promptsCommand } from "./prompts.ts";
import { sampleCommand } from "./sample.ts";

/** Every subcommand. Add a command by importing its module here. */
export const commands: Command[] = [
  infoCommand,
  preprocessCommand,
  promptsCommand,
  sampleCommand,
  pretrainCommand,
  generateCommand,
  benchCommand,
  ...notBuiltCommands,
];
