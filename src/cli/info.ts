/**
 * `r2ec info`: WebGPU preflight — adapter, backend, requested limits, features, CPU or GPU.
 *
 * @module
 */
import { type Command, parseFlags } from "./command.ts";
import { getGpu } from "../gpu/device.ts";

const HELP = `Usage: r2ec info [--json]

Prints the WebGPU adapter r2ec will use: description, backend, whether it is a CPU (software)
adapter, the limits r2ec requests and the optional features it enables. Fails with exit code 1
and names the remedy when no adapter exists.

Flags:
  --json   print one JSON object instead of text (default: text)

Environment:
  DENO_WEBGPU_BACKEND=vulkan|gl   choose the backend (Deno ignores WGPU_BACKEND)

Examples:
  deno task info
  DENO_WEBGPU_BACKEND=gl deno task r2ec info --json`;

export const infoCommand: Command = {
  name: "info",
  summary: "show the WebGPU adapter, backend, limits and features",
  help: HELP,
  async run(argv) {
    const { values } = parseFlags("info", argv, { json: { type: "boolean" } });
    const { info } = await getGpu();
    if (values.json) {
      console.log(JSON.stringify(info));
      return;
    }
    console.log(`adapter   ${info.description}${info.vendor ? ` (vendor ${info.vendor})` : ""}`);
    console.log(`backend   ${info.backend}`);
    console.log(
      `kind      ${info.isCpu ? "CPU (software rasteriser): timings are CPU timings" : "GPU"}`,
    );
    console.log(`features  ${info.features.length ? info.features.join(", ") : "(none requested)"}`);
    console.log("limits requested:");
    for (const [name, value] of Object.entries(info.requestedLimits)) {
      console.log(`  ${name.padEnd(36)} ${value}`);
    }
  },
};
