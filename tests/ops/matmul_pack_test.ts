import { getEngine } from "../../src/gpu/engine.ts";
import {
  gegluBackwardCpu,
  gegluBackwardPacked,
  gegluForwardCpu,
  gegluForwardPacked,
  swigluBackwardCpu,
  swigluBackwardPacked,
  swigluForwardCpu,
  swigluForwardPacked,
} from "../../src/ops/activations.ts";
import type { Recorder } from "../../src/gpu/recorder.ts";
import type { Tensor, TensorPool } from "../../src/gpu/tensor.ts";
import {
  bf16Round,
  matmulPackedBf16,
  matrixView,
  packBf16,
  packBf16WithTranspose,
  type PackedBf16,
  releasePacked,
} from "../../src/ops/matmul.ts";
import { assertClose, hasGpu, randomArray } from "./check.ts";

/**
 * Records the readback of a pack's values through a product with the identity: `C = P·Eᵀ` with
 * E [n × k] holding the k × k identity, so C's first k columns are the pack's bf16 values (one
 * exact product each). Column k of C probes the texels past the matrix along k: E's row k holds
 * ones there (E is packed k8 = ⌈k/8⌉·8 wide and presented as k wide), so that column is the sum
 * of the padding values, zero when the pack zeroed them.
 */
function readPack(
  rec: Recorder,
  pool: TensorPool,
  packed: PackedBf16,
): { values: Promise<Float32Array>; tensors: Tensor[]; packs: PackedBf16[] } {
  const k = packed.cols, k8 = Math.ceil(k / 8) * 8, n = Math.ceil((k + 1) / 4) * 4;
  const e = new Float32Array(n * k8);
  for (let i = 0; i < k; i++) e[i * k8 + i] = 1;
  for (let c = k; c < k8; c++) e[k * k8 + c] = 1;
  const eT = pool.upload(e, [n, k8], "identity_probe");
  const eP = packBf16(rec, matrixView(eT, n, k8));
  const c = pool.zeros([packed.rows * n]);
  matmulPackedBf16(rec, packed, { ...eP, cols: k }, c);
  return { values: rec.read(c), tensors: [eT, c], packs: [eP] };
}

/** The `[rows × cols]` matrix of `x` (stored `[cols × rows]` when `transposed`) scaled and rounded as a pack rounds it. */
function roundedView(
  x: Float32Array,
  rows: number,
  cols: number,
  scale: number,
  transposed: boolean,
): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out.push(bf16Round(Math.fround(scale * x[transposed ? c * rows + r : r * cols + c])));
    }
  }
  return out;
}

/** Splits a readback `[rows × n]` into the matrix (first `cols` columns) and the padding probe (column `cols`). */
function split(got: Float32Array, rows: number, cols: number): { matrix: number[]; padding: number[] } {
  const n = Math.ceil((cols + 1) / 4) * 4;
  const matrix: number[] = [], padding: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) matrix.push(got[r * n + c]);
    padding.push(got[r * n + cols]);
  }
  return { matrix, padding };
}

// Rows and columns on both sides of the 8 × 8 blocks and the 16-lane workgroups, size-1 edges, a
// width that is not a multiple of 4 (two packs then) and a layer-sized matrix.
const SHAPES: [number, number][] = [[1, 4], [37, 20], [9, 1], [300, 52], [64, 256], [13, 7], [1024, 132]];

for (const [rows, cols] of SHAPES) {
  Deno.test({
    name: `packBf16WithTranspose() packs a ${rows}×${cols} matrix and its transpose as packBf16() does`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const { pool } = engine;
      // Nonzero rows past the matrix: a pack must not take them for the zeros along k.
      const x = randomArray((rows + 9) * cols, rows + cols, 3);
      const scale = -0.75;
      const t = pool.upload(x, [rows + 9, cols], "x");
      const rec = engine.recorder();
      const view = { ...matrixView(t, rows, cols), scale };
      const both = packBf16WithTranspose(rec, view);
      const single = packBf16(rec, view);
      const singleT = packBf16(rec, { ...matrixView(t, cols, rows, true), scale });
      const reads = [both, both.transposed!, single, singleT].map((p) => readPack(rec, pool, p));
      await rec.submit();
      const got = await Promise.all(reads.map((r) => r.values));
      const want = [roundedView(x, rows, cols, scale, false), roundedView(x, cols, rows, scale, true)];
      const what = ["fused pack", "fused transposed pack", "packBf16()", "packBf16() transposed"];
      got.forEach((values, i) => {
        const [r, c] = i % 2 === 0 ? [rows, cols] : [cols, rows];
        const { matrix, padding } = split(values, r, c);
        assertClose(matrix, want[i % 2], { atol: 0 }, `${what[i]} values`);
        assertClose(padding, new Array(r).fill(0), { atol: 0 }, `${what[i]} padding along k`);
      });
      for (const r of reads) {
        r.tensors.forEach((x) => pool.release(x));
        r.packs.forEach((p) => releasePacked(pool, p));
      }
      for (const p of [both, single, singleT]) releasePacked(pool, p);
      pool.release(t);
    },
  });
}

// Rows on both sides of the 8-row blocks, widths with a half-empty last texel (cols 8q + 4) and a
// layer-sized MLP width.
const GLU_SHAPES: [number, number][] = [[13, 20], [37, 52], [300, 132], [64, 688]];
const GLU_PACKED = [
  { name: "swigluBackwardPacked", packed: swigluBackwardPacked, cpu: swigluBackwardCpu },
  { name: "gegluBackwardPacked", packed: gegluBackwardPacked, cpu: gegluBackwardCpu },
];
const GLU_FORWARD_PACKED = [
  { name: "swigluForwardPacked", packed: swigluForwardPacked, cpu: swigluForwardCpu },
  { name: "gegluForwardPacked", packed: gegluForwardPacked, cpu: gegluForwardCpu },
];

/** Asserts that a row pack read back by {@linkcode readPack} holds bf16Round of `source` and zeros along k. */
function assertRowPack(
  got: Float32Array,
  source: Float32Array,
  rows: number,
  cols: number,
  what: string,
): void {
  const { matrix, padding } = split(got, rows, cols);
  assertClose(matrix, roundedView(source, rows, cols, 1, false), { atol: 0 }, `${what} values`);
  assertClose(padding, new Array(rows).fill(0), { atol: 0 }, `${what} padding along k`);
}

for (const glu of GLU_FORWARD_PACKED) {
  for (const [rows, cols] of GLU_SHAPES) {
    Deno.test({
      name: `${glu.name}() writes the output and its bf16 row pack for ${rows}×${cols}`,
      ignore: !hasGpu,
      async fn() {
        const engine = await getEngine();
        const { pool } = engine;
        const gate = randomArray(rows * cols, 3, 12), up = randomArray(rows * cols, 4);
        const inputs = [gate, up].map((x) => pool.upload(x, [rows, cols]));
        const out = pool.tensor([rows, cols]);
        const rec = engine.recorder();
        const packed = glu.packed(rec, inputs[0], inputs[1], out, { rows, cols });
        const read = readPack(rec, pool, packed);
        const value = rec.read(out);
        await rec.submit();
        const got = await value;
        assertClose(got, glu.cpu(gate, up), { atol: 1e-5, rtol: 1e-5 }, "out");
        assertRowPack(await read.values, got, rows, cols, "out pack");
        read.tensors.forEach((x) => pool.release(x));
        read.packs.forEach((p) => releasePacked(pool, p));
        releasePacked(pool, packed);
        for (const t of [...inputs, out]) pool.release(t);
      },
    });
  }
}

for (const glu of GLU_PACKED) {
  for (const [rows, cols] of GLU_SHAPES) {
    Deno.test({
      name: `${glu.name}() writes dgate, dup and their bf16 row packs for ${rows}×${cols}`,
      ignore: !hasGpu,
      async fn() {
        const engine = await getEngine();
        const { pool } = engine;
        const n = rows * cols;
        const gate = randomArray(n, 3, 12), up = randomArray(n, 4), dout = randomArray(n, 5);
        const inputs = [dout, gate, up].map((x) => pool.upload(x, [rows, cols]));
        // Stale values: the kernel overwrites, it does not accumulate.
        const dgate = pool.upload(randomArray(n, 6), [rows, cols]);
        const dup = pool.upload(randomArray(n, 7), [rows, cols]);
        const rec = engine.recorder();
        const packs = glu.packed(rec, inputs[0], inputs[1], inputs[2], dgate, dup, { rows, cols });
        const reads = [packs.dgate, packs.dup].map((p) => readPack(rec, pool, p));
        const values = [rec.read(dgate), rec.read(dup)];
        await rec.submit();
        const [gotDgate, gotDup] = await Promise.all(values);
        const ref = glu.cpu(dout, gate, up);
        assertClose(gotDgate, ref.dgate, { atol: 1e-5, rtol: 1e-5 }, "dgate");
        assertClose(gotDup, ref.dup, { atol: 1e-5, rtol: 1e-5 }, "dup");
        const got = await Promise.all(reads.map((r) => r.values));
        assertRowPack(got[0], gotDgate, rows, cols, "dgate pack");
        assertRowPack(got[1], gotDup, rows, cols, "dup pack");
        for (const r of reads) {
          r.tensors.forEach((x) => pool.release(x));
          r.packs.forEach((p) => releasePacked(pool, p));
        }
        releasePacked(pool, packs.dgate);
        releasePacked(pool, packs.dup);
        for (const t of [...inputs, dgate, dup]) pool.release(t);
      },
    });
  }
}
