/**
 * bf16 packs of weights kept across steps. A frozen weight (every base weight in LoRA training,
 * every weight in generation and evaluation) used to be packed at every product that read it: W
 * for the forward, Wᵀ for dX, ~20–26 ms of a LoRA training step of the reference decoder. Here
 * each pack is made at its first use and kept with its {@linkcode Param} until the parameter's
 * values change (its `version`, bumped by every writer through `markWritten`). A trained weight's
 * AdamW update rewrites its row pack ({@linkcode rowPackForUpdate}); its transposed pack is made
 * again once per step.
 *
 * A pack recorded into a recorder that drops dispatches (the parallel warm-up's `RecorderWithout`)
 * was never written, so it is not kept. A pack counts as written for other recorders only once
 * the recorder that packed it has submitted without error: a recorder abandoned before `submit()`
 * (say, after an exception while recording) leaves packs that the next recorder makes again.
 *
 * @example
 * ```ts
 * const w = weightPack(rec, lin.weight, "rows"); // [out × in], for y = x·Wᵀ
 * matmulPackedBf16(rec, packedX, w, y);
 * const wT = weightPack(rec, lin.weight, "transposed"); // [in × out], for dX = dY·W
 * matmulPackedBf16(rec, dyP, wT, dx);
 * releaseWeightPacks(pool, lin.weight); // when the model is disposed
 * ```
 *
 * @module
 */
import type { Recorder } from "../gpu/recorder.ts";
import type { HeadPacks } from "../ops/lm_head.ts";
import { matrixView, packBf16, type PackedBf16, releasePacked, withSpareTexels } from "../ops/matmul.ts";
import type { Param } from "./params.ts";

/** A chunk of a weight as stored (`"rows"`, `[rows × cols]`) or transposed (`[cols × rows]`). */
export type PackOrientation = "rows" | "transposed";

interface KeptPack {
  pack: PackedBf16;
  /** The parameter's version the pack holds; −1 when the pack was never written. */
  version: number;
  /** The recorder that writes the pack, until its submit succeeds (then null). */
  pendingIn: Recorder | null;
}

/** Marks `entry` as recorded into `rec`: valid for `rec` now, for every recorder after its submit. */
function pendUntilSubmitted(entry: KeptPack, rec: Recorder): void {
  entry.pendingIn = rec;
  rec.afterSubmit(() => {
    if (entry.pendingIn === rec) entry.pendingIn = null;
  });
}

const kept = new WeakMap<Param, Map<string, KeptPack>>();

/**
 * The bf16 pack of chunk `chunk` of `p` in `orientation`, recorded into `rec` at its first use
 * and after every write of `p`, else the kept one; with at least `spareTexels` texels past its
 * columns (a LoRA layer writes its factor there before each product, see `withSpareTexels`). The
 * pack belongs to `p`: never release it (see {@linkcode releaseWeightPacks}).
 */
export function weightPack(
  rec: Recorder,
  p: Param,
  orientation: PackOrientation,
  chunk = 0,
  spareTexels = 0,
): PackedBf16 {
  let packs = kept.get(p);
  if (!packs) kept.set(p, packs = new Map());
  const key = `${orientation}:${chunk}`;
  const held = packs.get(key);
  if (
    held?.version === p.version && (held.pendingIn === null || held.pendingIn === rec) &&
    withSpareTexels(held.pack, spareTexels)
  ) return held.pack;
  // Commands already recorded keep reading the old texture: they run before the new pack.
  if (held) releasePacked(rec, held.pack);
  const { tensor, rows } = p.value.chunks[chunk];
  const cols = p.value.cols;
  const dispatches = rec.dispatches;
  const pack = packBf16(
    rec,
    orientation === "rows" ? matrixView(tensor, rows, cols) : matrixView(tensor, cols, rows, true),
    spareTexels,
  );
  const entry = { pack, version: rec.dispatches > dispatches ? p.version : -1, pendingIn: null };
  packs.set(key, entry);
  pendUntilSubmitted(entry, rec);
  return pack;
}

/**
 * The kept row pack of chunk `chunk` of `p`, for an update that rewrites it together with the
 * values (AdamW's `rowPack`) and is being recorded into `rec` after `markWritten(p)`: from then on
 * it counts as holding the new values (for other recorders once `rec` is submitted). Null when
 * `p` has no row pack to keep fresh (never read through one, as the embedding and the norms) or
 * its rows are not whole texels.
 *
 * @example
 * ```ts
 * markWritten(p);
 * adamwStep(rec, [{ param, grad, m, v, rowPack: rowPackForUpdate(rec, p) ?? undefined }], options, norm);
 * ```
 */
export function rowPackForUpdate(rec: Recorder, p: Param, chunk = 0): PackedBf16 | null {
  const held = kept.get(p)?.get(`rows:${chunk}`);
  if (!held || p.value.cols % 8 !== 0) return null;
  held.version = p.version;
  pendUntilSubmitted(held, rec);
  return held.pack;
}

/**
 * Every kept pack of `p` by chunk, for an op that takes them so (the LM head's `headPacks`).
 *
 * @example
 * ```ts
 * tokenLogProbs(rec, h, head.value, targets, logprob, lse, { ...shape, headPacks: chunkPacks(rec, head) });
 * ```
 */
export function chunkPacks(rec: Recorder, p: Param): HeadPacks {
  return {
    rows: (chunk) => weightPack(rec, p, "rows", chunk),
    transposed: (chunk) => weightPack(rec, p, "transposed", chunk),
  };
}

/** Returns the textures of every kept pack of `p` for reuse (the model is being disposed). */
export function releaseWeightPacks(owner: Parameters<typeof releasePacked>[0], p: Param): void {
  for (const { pack } of kept.get(p)?.values() ?? []) releasePacked(owner, pack);
  kept.delete(p);
}
