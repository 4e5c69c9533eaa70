// Fast matmul C (= or +=) A·Bᵀ (+ bias) with both operands in textures whose rows run along k.
// The launcher (src/ops/matmul_tex.ts) packs every layout into this form and folds alpha into A,
// so one pipeline serves NN, NT and TN. Design: compute-notes §2.5.
// - matmul_nt (default, exact f32): rgba32float texels of 4 consecutive k values.
// - matmul_nt_bf16 (opt-in): rgba32uint texels of 8 bf16 k values (two per u32, lower k in the
//   low half), unpacked with one shift or mask each; f32 accumulation. Half the fetches per FMA:
//   compute-notes measured 53–82 GFLOP/s against 35–53 for f32.
//
// Napkin math (f32): each lane owns a 32-row × 16-column register tile (128 vec4 accumulators). Per
// texel step (4 k values) it issues 16 + 32 = 48 texture fetches (~17 ns per 8 lanes each, the
// cheap path on llvmpipe; storage loads cost ~41 ns) for 32·16·4 = 2048 FMAs: ~0.8 µs of fetches
// plus ~0.7 µs of FMAs per 8 lanes and step, i.e. ~21 GFLOP/s per core, ~40 on 2 cores.
// Workgroup (16, 1): lanes walk along N (llvmpipe vectorises along x only); a workgroup covers
// 32 rows × 256 columns. No shared memory, no barriers (a barrier is a coroutine switch here).
//
// Why it is written out row by row: Mesa does not unroll loops over register arrays, and a loop
// leaves the tile in scratch memory (~3× slower). Why accumulation reads the old C from a texture
// before the k loop instead of from the buffer in the epilogue: every storage load is a per-lane
// loop in llvmpipe's IR, and 128 of them doubled the cold JIT of this kernel (~4.8 → ~2 s CPU).
//
// Constraints: n, ldc and the block offsets are multiples of 4 (C and bias are addressed as
// vec4), m ≥ 32 and n ≥ 16 (the tiles are clamped into C, see matmul_nt_tile_begin.wgsl); for
// other shapes the launcher points C at a padded scratch copy. Textures A and B have ≥ m and ≥ n
// rows, kq texels wide and zero-padded along k (the packing guarantees it).

// C may be a block of a larger matrix (the launcher splits problems above the texture size
// limit): element (i, j) of this block is c[c_base + i·ldc + j], all in vec4 units here.
struct Params {
  m: u32,
  n: u32,
  kq: u32,
  flags: u32,
  ldc4: u32,
  c_base4: u32,
  bias_base4: u32,
}

const HAS_BIAS = 1u;
const ACCUMULATE = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var ta: texture_2d<f32>;
@group(0) @binding(2) var tb: texture_2d<f32>;
@group(0) @binding(1) var ta_bf16: texture_2d<u32>;
@group(0) @binding(2) var tb_bf16: texture_2d<u32>;
// The old C as texels of 4 columns (row = row of C); read only when accumulating.
@group(0) @binding(3) var tc: texture_2d<f32>;
@group(0) @binding(4) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> c: array<vec4<f32>>;

// Four B rows as the columns of a matrix, transposed so that column e holds k-component e of
// the four rows: a vec4 FMA per k component then updates four output columns at once.
fn panel(q: u32, row: u32) -> mat4x4<f32> {
  return transpose(mat4x4<f32>(
    textureLoad(tb, vec2<u32>(q, row), 0),
    textureLoad(tb, vec2<u32>(q, row + 1u), 0),
    textureLoad(tb, vec2<u32>(q, row + 2u), 0),
    textureLoad(tb, vec2<u32>(q, row + 3u), 0),
  ));
}

// acc + Σ_e a[e]·bt[e]: four chained FMAs in k order (x, y, z, w).
fn fma4(acc: vec4<f32>, a: vec4<f32>, bt: mat4x4<f32>) -> vec4<f32> {
  return fma(vec4(a.w), bt[3], fma(vec4(a.z), bt[2], fma(vec4(a.y), bt[1], fma(vec4(a.x), bt[0], acc))));
}

// The 8 k values of four bf16 texels (four B rows), as two transposed panels: `lo` holds k
// components 0, 2, 4, 6 and `hi` 1, 3, 5, 7, matching `lo(a)` / `hi(a)` of an A texel.
struct PanelBf16 {
  lo: mat4x4<f32>,
  hi: mat4x4<f32>,
}

// #include bf16

fn panel_bf16(q: u32, row: u32) -> PanelBf16 {
  let t0 = textureLoad(tb_bf16, vec2<u32>(q, row), 0);
  let t1 = textureLoad(tb_bf16, vec2<u32>(q, row + 1u), 0);
  let t2 = textureLoad(tb_bf16, vec2<u32>(q, row + 2u), 0);
  let t3 = textureLoad(tb_bf16, vec2<u32>(q, row + 3u), 0);
  let x = vec4(t0.x, t1.x, t2.x, t3.x);
  let y = vec4(t0.y, t1.y, t2.y, t3.y);
  let z = vec4(t0.z, t1.z, t2.z, t3.z);
  let w = vec4(t0.w, t1.w, t2.w, t3.w);
  return PanelBf16(mat4x4(lo(x), lo(y), lo(z), lo(w)), mat4x4(hi(x), hi(y), hi(z), hi(w)));
}

// acc + the 8 products of one A texel with one panel.
fn fma8(acc: vec4<f32>, a: vec4<u32>, b: PanelBf16) -> vec4<f32> {
  return fma4(fma4(acc, lo(a), b.lo), hi(a), b.hi);
}

// Bias is per column: four of this lane's values.
fn bias_quad(quad: u32) -> vec4<f32> {
  if ((p.flags & HAS_BIAS) == 0u) { return vec4<f32>(); }
  return bias[p.bias_base4 + quad];
}

fn old(row: u32, quad: u32) -> vec4<f32> {
  return textureLoad(tc, vec2<u32>(quad, row), 0);
}

// Stores four adjacent outputs of one row (one vec4 store; the clamped tiles stay inside C).
fn put(row: u32, quad: u32, v: vec4<f32>) {
  c[p.c_base4 + row * p.ldc4 + quad] = v;
}

@compute @workgroup_size(16, 1, 1)
fn matmul_nt(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // #insert matmul_nt_tile_begin
  for (var q = 0u; q < p.kq; q++) {
    let b0 = panel(q, col + 0u);
    let b1 = panel(q, col + 4u);
    let b2 = panel(q, col + 8u);
    let b3 = panel(q, col + 12u);
    var a: vec4<f32>;
    a = textureLoad(ta, vec2<u32>(q, r + 0u), 0); c0_0 = fma4(c0_0, a, b0); c0_1 = fma4(c0_1, a, b1); c0_2 = fma4(c0_2, a, b2); c0_3 = fma4(c0_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 1u), 0); c1_0 = fma4(c1_0, a, b0); c1_1 = fma4(c1_1, a, b1); c1_2 = fma4(c1_2, a, b2); c1_3 = fma4(c1_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 2u), 0); c2_0 = fma4(c2_0, a, b0); c2_1 = fma4(c2_1, a, b1); c2_2 = fma4(c2_2, a, b2); c2_3 = fma4(c2_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 3u), 0); c3_0 = fma4(c3_0, a, b0); c3_1 = fma4(c3_1, a, b1); c3_2 = fma4(c3_2, a, b2); c3_3 = fma4(c3_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 4u), 0); c4_0 = fma4(c4_0, a, b0); c4_1 = fma4(c4_1, a, b1); c4_2 = fma4(c4_2, a, b2); c4_3 = fma4(c4_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 5u), 0); c5_0 = fma4(c5_0, a, b0); c5_1 = fma4(c5_1, a, b1); c5_2 = fma4(c5_2, a, b2); c5_3 = fma4(c5_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 6u), 0); c6_0 = fma4(c6_0, a, b0); c6_1 = fma4(c6_1, a, b1); c6_2 = fma4(c6_2, a, b2); c6_3 = fma4(c6_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 7u), 0); c7_0 = fma4(c7_0, a, b0); c7_1 = fma4(c7_1, a, b1); c7_2 = fma4(c7_2, a, b2); c7_3 = fma4(c7_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 8u), 0); c8_0 = fma4(c8_0, a, b0); c8_1 = fma4(c8_1, a, b1); c8_2 = fma4(c8_2, a, b2); c8_3 = fma4(c8_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 9u), 0); c9_0 = fma4(c9_0, a, b0); c9_1 = fma4(c9_1, a, b1); c9_2 = fma4(c9_2, a, b2); c9_3 = fma4(c9_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 10u), 0); c10_0 = fma4(c10_0, a, b0); c10_1 = fma4(c10_1, a, b1); c10_2 = fma4(c10_2, a, b2); c10_3 = fma4(c10_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 11u), 0); c11_0 = fma4(c11_0, a, b0); c11_1 = fma4(c11_1, a, b1); c11_2 = fma4(c11_2, a, b2); c11_3 = fma4(c11_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 12u), 0); c12_0 = fma4(c12_0, a, b0); c12_1 = fma4(c12_1, a, b1); c12_2 = fma4(c12_2, a, b2); c12_3 = fma4(c12_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 13u), 0); c13_0 = fma4(c13_0, a, b0); c13_1 = fma4(c13_1, a, b1); c13_2 = fma4(c13_2, a, b2); c13_3 = fma4(c13_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 14u), 0); c14_0 = fma4(c14_0, a, b0); c14_1 = fma4(c14_1, a, b1); c14_2 = fma4(c14_2, a, b2); c14_3 = fma4(c14_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 15u), 0); c15_0 = fma4(c15_0, a, b0); c15_1 = fma4(c15_1, a, b1); c15_2 = fma4(c15_2, a, b2); c15_3 = fma4(c15_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 16u), 0); c16_0 = fma4(c16_0, a, b0); c16_1 = fma4(c16_1, a, b1); c16_2 = fma4(c16_2, a, b2); c16_3 = fma4(c16_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 17u), 0); c17_0 = fma4(c17_0, a, b0); c17_1 = fma4(c17_1, a, b1); c17_2 = fma4(c17_2, a, b2); c17_3 = fma4(c17_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 18u), 0); c18_0 = fma4(c18_0, a, b0); c18_1 = fma4(c18_1, a, b1); c18_2 = fma4(c18_2, a, b2); c18_3 = fma4(c18_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 19u), 0); c19_0 = fma4(c19_0, a, b0); c19_1 = fma4(c19_1, a, b1); c19_2 = fma4(c19_2, a, b2); c19_3 = fma4(c19_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 20u), 0); c20_0 = fma4(c20_0, a, b0); c20_1 = fma4(c20_1, a, b1); c20_2 = fma4(c20_2, a, b2); c20_3 = fma4(c20_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 21u), 0); c21_0 = fma4(c21_0, a, b0); c21_1 = fma4(c21_1, a, b1); c21_2 = fma4(c21_2, a, b2); c21_3 = fma4(c21_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 22u), 0); c22_0 = fma4(c22_0, a, b0); c22_1 = fma4(c22_1, a, b1); c22_2 = fma4(c22_2, a, b2); c22_3 = fma4(c22_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 23u), 0); c23_0 = fma4(c23_0, a, b0); c23_1 = fma4(c23_1, a, b1); c23_2 = fma4(c23_2, a, b2); c23_3 = fma4(c23_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 24u), 0); c24_0 = fma4(c24_0, a, b0); c24_1 = fma4(c24_1, a, b1); c24_2 = fma4(c24_2, a, b2); c24_3 = fma4(c24_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 25u), 0); c25_0 = fma4(c25_0, a, b0); c25_1 = fma4(c25_1, a, b1); c25_2 = fma4(c25_2, a, b2); c25_3 = fma4(c25_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 26u), 0); c26_0 = fma4(c26_0, a, b0); c26_1 = fma4(c26_1, a, b1); c26_2 = fma4(c26_2, a, b2); c26_3 = fma4(c26_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 27u), 0); c27_0 = fma4(c27_0, a, b0); c27_1 = fma4(c27_1, a, b1); c27_2 = fma4(c27_2, a, b2); c27_3 = fma4(c27_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 28u), 0); c28_0 = fma4(c28_0, a, b0); c28_1 = fma4(c28_1, a, b1); c28_2 = fma4(c28_2, a, b2); c28_3 = fma4(c28_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 29u), 0); c29_0 = fma4(c29_0, a, b0); c29_1 = fma4(c29_1, a, b1); c29_2 = fma4(c29_2, a, b2); c29_3 = fma4(c29_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 30u), 0); c30_0 = fma4(c30_0, a, b0); c30_1 = fma4(c30_1, a, b1); c30_2 = fma4(c30_2, a, b2); c30_3 = fma4(c30_3, a, b3);
    a = textureLoad(ta, vec2<u32>(q, r + 31u), 0); c31_0 = fma4(c31_0, a, b0); c31_1 = fma4(c31_1, a, b1); c31_2 = fma4(c31_2, a, b2); c31_3 = fma4(c31_3, a, b3);
  }
  // #insert matmul_nt_tile_end
  put(r + 31u, quad + 0u, c31_0 + bias0); put(r + 31u, quad + 1u, c31_1 + bias1); put(r + 31u, quad + 2u, c31_2 + bias2); put(r + 31u, quad + 3u, c31_3 + bias3);
}

// Same tile with bf16 operands: each texel step covers 8 k values (q counts 8-value texels).
@compute @workgroup_size(16, 1, 1)
fn matmul_nt_bf16(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  // #insert matmul_nt_tile_begin
  for (var q = 0u; q < p.kq; q++) {
    let b0 = panel_bf16(q, col + 0u);
    let b1 = panel_bf16(q, col + 4u);
    let b2 = panel_bf16(q, col + 8u);
    let b3 = panel_bf16(q, col + 12u);
    var a: vec4<u32>;
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 0u), 0); c0_0 = fma8(c0_0, a, b0); c0_1 = fma8(c0_1, a, b1); c0_2 = fma8(c0_2, a, b2); c0_3 = fma8(c0_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 1u), 0); c1_0 = fma8(c1_0, a, b0); c1_1 = fma8(c1_1, a, b1); c1_2 = fma8(c1_2, a, b2); c1_3 = fma8(c1_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 2u), 0); c2_0 = fma8(c2_0, a, b0); c2_1 = fma8(c2_1, a, b1); c2_2 = fma8(c2_2, a, b2); c2_3 = fma8(c2_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 3u), 0); c3_0 = fma8(c3_0, a, b0); c3_1 = fma8(c3_1, a, b1); c3_2 = fma8(c3_2, a, b2); c3_3 = fma8(c3_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 4u), 0); c4_0 = fma8(c4_0, a, b0); c4_1 = fma8(c4_1, a, b1); c4_2 = fma8(c4_2, a, b2); c4_3 = fma8(c4_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 5u), 0); c5_0 = fma8(c5_0, a, b0); c5_1 = fma8(c5_1, a, b1); c5_2 = fma8(c5_2, a, b2); c5_3 = fma8(c5_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 6u), 0); c6_0 = fma8(c6_0, a, b0); c6_1 = fma8(c6_1, a, b1); c6_2 = fma8(c6_2, a, b2); c6_3 = fma8(c6_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 7u), 0); c7_0 = fma8(c7_0, a, b0); c7_1 = fma8(c7_1, a, b1); c7_2 = fma8(c7_2, a, b2); c7_3 = fma8(c7_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 8u), 0); c8_0 = fma8(c8_0, a, b0); c8_1 = fma8(c8_1, a, b1); c8_2 = fma8(c8_2, a, b2); c8_3 = fma8(c8_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 9u), 0); c9_0 = fma8(c9_0, a, b0); c9_1 = fma8(c9_1, a, b1); c9_2 = fma8(c9_2, a, b2); c9_3 = fma8(c9_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 10u), 0); c10_0 = fma8(c10_0, a, b0); c10_1 = fma8(c10_1, a, b1); c10_2 = fma8(c10_2, a, b2); c10_3 = fma8(c10_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 11u), 0); c11_0 = fma8(c11_0, a, b0); c11_1 = fma8(c11_1, a, b1); c11_2 = fma8(c11_2, a, b2); c11_3 = fma8(c11_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 12u), 0); c12_0 = fma8(c12_0, a, b0); c12_1 = fma8(c12_1, a, b1); c12_2 = fma8(c12_2, a, b2); c12_3 = fma8(c12_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 13u), 0); c13_0 = fma8(c13_0, a, b0); c13_1 = fma8(c13_1, a, b1); c13_2 = fma8(c13_2, a, b2); c13_3 = fma8(c13_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 14u), 0); c14_0 = fma8(c14_0, a, b0); c14_1 = fma8(c14_1, a, b1); c14_2 = fma8(c14_2, a, b2); c14_3 = fma8(c14_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 15u), 0); c15_0 = fma8(c15_0, a, b0); c15_1 = fma8(c15_1, a, b1); c15_2 = fma8(c15_2, a, b2); c15_3 = fma8(c15_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 16u), 0); c16_0 = fma8(c16_0, a, b0); c16_1 = fma8(c16_1, a, b1); c16_2 = fma8(c16_2, a, b2); c16_3 = fma8(c16_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 17u), 0); c17_0 = fma8(c17_0, a, b0); c17_1 = fma8(c17_1, a, b1); c17_2 = fma8(c17_2, a, b2); c17_3 = fma8(c17_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 18u), 0); c18_0 = fma8(c18_0, a, b0); c18_1 = fma8(c18_1, a, b1); c18_2 = fma8(c18_2, a, b2); c18_3 = fma8(c18_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 19u), 0); c19_0 = fma8(c19_0, a, b0); c19_1 = fma8(c19_1, a, b1); c19_2 = fma8(c19_2, a, b2); c19_3 = fma8(c19_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 20u), 0); c20_0 = fma8(c20_0, a, b0); c20_1 = fma8(c20_1, a, b1); c20_2 = fma8(c20_2, a, b2); c20_3 = fma8(c20_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 21u), 0); c21_0 = fma8(c21_0, a, b0); c21_1 = fma8(c21_1, a, b1); c21_2 = fma8(c21_2, a, b2); c21_3 = fma8(c21_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 22u), 0); c22_0 = fma8(c22_0, a, b0); c22_1 = fma8(c22_1, a, b1); c22_2 = fma8(c22_2, a, b2); c22_3 = fma8(c22_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 23u), 0); c23_0 = fma8(c23_0, a, b0); c23_1 = fma8(c23_1, a, b1); c23_2 = fma8(c23_2, a, b2); c23_3 = fma8(c23_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 24u), 0); c24_0 = fma8(c24_0, a, b0); c24_1 = fma8(c24_1, a, b1); c24_2 = fma8(c24_2, a, b2); c24_3 = fma8(c24_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 25u), 0); c25_0 = fma8(c25_0, a, b0); c25_1 = fma8(c25_1, a, b1); c25_2 = fma8(c25_2, a, b2); c25_3 = fma8(c25_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 26u), 0); c26_0 = fma8(c26_0, a, b0); c26_1 = fma8(c26_1, a, b1); c26_2 = fma8(c26_2, a, b2); c26_3 = fma8(c26_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 27u), 0); c27_0 = fma8(c27_0, a, b0); c27_1 = fma8(c27_1, a, b1); c27_2 = fma8(c27_2, a, b2); c27_3 = fma8(c27_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 28u), 0); c28_0 = fma8(c28_0, a, b0); c28_1 = fma8(c28_1, a, b1); c28_2 = fma8(c28_2, a, b2); c28_3 = fma8(c28_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 29u), 0); c29_0 = fma8(c29_0, a, b0); c29_1 = fma8(c29_1, a, b1); c29_2 = fma8(c29_2, a, b2); c29_3 = fma8(c29_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 30u), 0); c30_0 = fma8(c30_0, a, b0); c30_1 = fma8(c30_1, a, b1); c30_2 = fma8(c30_2, a, b2); c30_3 = fma8(c30_3, a, b3);
    a = textureLoad(ta_bf16, vec2<u32>(q, r + 31u), 0); c31_0 = fma8(c31_0, a, b0); c31_1 = fma8(c31_1, a, b1); c31_2 = fma8(c31_2, a, b2); c31_3 = fma8(c31_3, a, b3);
  }
  // #insert matmul_nt_tile_end
  put(r + 31u, quad + 0u, c31_0 + bias0); put(r + 31u, quad + 1u, c31_1 + bias1); put(r + 31u, quad + 2u, c31_2 + bias2); put(r + 31u, quad + 3u, c31_3 + bias3);
}
