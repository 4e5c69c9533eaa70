// Fast matmul C (= or +=) alpha·A·Bᵀ (+ bias) with both operands in rgba32float textures whose
// rows run along k (a texel holds 4 consecutive k values). The launcher (src/ops/matmul_tex.ts)
// packs every layout into this form, so one pipeline serves NN, NT and TN. Design: compute-notes
// §2.5 (fp32 variant).
//
// Napkin math: each lane owns a 32-row × 16-column register tile (128 vec4 accumulators). Per
// texel step (4 k values) it issues 16 + 32 = 48 texture fetches (~17 ns per 8 lanes each, the
// cheap path on llvmpipe; storage loads cost ~41 ns) for 32·16·4 = 2048 FMAs: ~0.8 µs of fetches
// plus ~0.7 µs of FMAs per 8 lanes and step, i.e. ~21 GFLOP/s per core, 35–50 on 2 cores.
// Workgroup (16, 1): lanes walk along N (llvmpipe vectorises along x only); a workgroup covers
// 32 rows × 256 columns. The body is written out row by row because Mesa does not unroll loops
// over register arrays: a loop here leaves the tile in scratch memory and runs ~3× slower.
// No shared memory, no barriers (a barrier is a coroutine switch on llvmpipe).
//
// Constraints (met by the packing): texture A has ≥ ceil(m/32)·32 rows and B ≥ ceil(n/256)·256
// rows, both kq = ceil(k/4) texels wide and zero-padded along k. Rows beyond m and n only feed
// accumulators that are never stored.

struct Params {
  m: u32,
  n: u32,
  kq: u32,
  alpha: f32,
  flags: u32,
}

const HAS_BIAS = 1u;
const ACCUMULATE = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var ta: texture_2d<f32>;
@group(0) @binding(2) var tb: texture_2d<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

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

// Writes four adjacent outputs of one row with alpha, bias and accumulation, skipping the tails.
fn put(row: u32, col0: u32, v: vec4<f32>) {
  if (row >= p.m) { return; }
  for (var e = 0u; e < 4u; e++) {
    let col = col0 + e;
    if (col >= p.n) { return; }
    var x = p.alpha * v[e];
    if ((p.flags & HAS_BIAS) != 0u) { x += bias[col]; }
    let at = row * p.n + col;
    if ((p.flags & ACCUMULATE) != 0u) { x += c[at]; }
    c[at] = x;
  }
}

@compute @workgroup_size(16, 1, 1)
fn matmul_nt(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wg.y * 32u;
  let col = wg.x * 256u + lid.x * 16u;
  // Accumulator cI_Q: row r + I, columns col + 4Q … col + 4Q + 3.
  var c0_0 = vec4<f32>(); var c0_1 = vec4<f32>(); var c0_2 = vec4<f32>(); var c0_3 = vec4<f32>();
  var c1_0 = vec4<f32>(); var c1_1 = vec4<f32>(); var c1_2 = vec4<f32>(); var c1_3 = vec4<f32>();
  var c2_0 = vec4<f32>(); var c2_1 = vec4<f32>(); var c2_2 = vec4<f32>(); var c2_3 = vec4<f32>();
  var c3_0 = vec4<f32>(); var c3_1 = vec4<f32>(); var c3_2 = vec4<f32>(); var c3_3 = vec4<f32>();
  var c4_0 = vec4<f32>(); var c4_1 = vec4<f32>(); var c4_2 = vec4<f32>(); var c4_3 = vec4<f32>();
  var c5_0 = vec4<f32>(); var c5_1 = vec4<f32>(); var c5_2 = vec4<f32>(); var c5_3 = vec4<f32>();
  var c6_0 = vec4<f32>(); var c6_1 = vec4<f32>(); var c6_2 = vec4<f32>(); var c6_3 = vec4<f32>();
  var c7_0 = vec4<f32>(); var c7_1 = vec4<f32>(); var c7_2 = vec4<f32>(); var c7_3 = vec4<f32>();
  var c8_0 = vec4<f32>(); var c8_1 = vec4<f32>(); var c8_2 = vec4<f32>(); var c8_3 = vec4<f32>();
  var c9_0 = vec4<f32>(); var c9_1 = vec4<f32>(); var c9_2 = vec4<f32>(); var c9_3 = vec4<f32>();
  var c10_0 = vec4<f32>(); var c10_1 = vec4<f32>(); var c10_2 = vec4<f32>(); var c10_3 = vec4<f32>();
  var c11_0 = vec4<f32>(); var c11_1 = vec4<f32>(); var c11_2 = vec4<f32>(); var c11_3 = vec4<f32>();
  var c12_0 = vec4<f32>(); var c12_1 = vec4<f32>(); var c12_2 = vec4<f32>(); var c12_3 = vec4<f32>();
  var c13_0 = vec4<f32>(); var c13_1 = vec4<f32>(); var c13_2 = vec4<f32>(); var c13_3 = vec4<f32>();
  var c14_0 = vec4<f32>(); var c14_1 = vec4<f32>(); var c14_2 = vec4<f32>(); var c14_3 = vec4<f32>();
  var c15_0 = vec4<f32>(); var c15_1 = vec4<f32>(); var c15_2 = vec4<f32>(); var c15_3 = vec4<f32>();
  var c16_0 = vec4<f32>(); var c16_1 = vec4<f32>(); var c16_2 = vec4<f32>(); var c16_3 = vec4<f32>();
  var c17_0 = vec4<f32>(); var c17_1 = vec4<f32>(); var c17_2 = vec4<f32>(); var c17_3 = vec4<f32>();
  var c18_0 = vec4<f32>(); var c18_1 = vec4<f32>(); var c18_2 = vec4<f32>(); var c18_3 = vec4<f32>();
  var c19_0 = vec4<f32>(); var c19_1 = vec4<f32>(); var c19_2 = vec4<f32>(); var c19_3 = vec4<f32>();
  var c20_0 = vec4<f32>(); var c20_1 = vec4<f32>(); var c20_2 = vec4<f32>(); var c20_3 = vec4<f32>();
  var c21_0 = vec4<f32>(); var c21_1 = vec4<f32>(); var c21_2 = vec4<f32>(); var c21_3 = vec4<f32>();
  var c22_0 = vec4<f32>(); var c22_1 = vec4<f32>(); var c22_2 = vec4<f32>(); var c22_3 = vec4<f32>();
  var c23_0 = vec4<f32>(); var c23_1 = vec4<f32>(); var c23_2 = vec4<f32>(); var c23_3 = vec4<f32>();
  var c24_0 = vec4<f32>(); var c24_1 = vec4<f32>(); var c24_2 = vec4<f32>(); var c24_3 = vec4<f32>();
  var c25_0 = vec4<f32>(); var c25_1 = vec4<f32>(); var c25_2 = vec4<f32>(); var c25_3 = vec4<f32>();
  var c26_0 = vec4<f32>(); var c26_1 = vec4<f32>(); var c26_2 = vec4<f32>(); var c26_3 = vec4<f32>();
  var c27_0 = vec4<f32>(); var c27_1 = vec4<f32>(); var c27_2 = vec4<f32>(); var c27_3 = vec4<f32>();
  var c28_0 = vec4<f32>(); var c28_1 = vec4<f32>(); var c28_2 = vec4<f32>(); var c28_3 = vec4<f32>();
  var c29_0 = vec4<f32>(); var c29_1 = vec4<f32>(); var c29_2 = vec4<f32>(); var c29_3 = vec4<f32>();
  var c30_0 = vec4<f32>(); var c30_1 = vec4<f32>(); var c30_2 = vec4<f32>(); var c30_3 = vec4<f32>();
  var c31_0 = vec4<f32>(); var c31_1 = vec4<f32>(); var c31_2 = vec4<f32>(); var c31_3 = vec4<f32>();
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
  put(r + 0u, col, c0_0); put(r + 0u, col + 4u, c0_1); put(r + 0u, col + 8u, c0_2); put(r + 0u, col + 12u, c0_3);
  put(r + 1u, col, c1_0); put(r + 1u, col + 4u, c1_1); put(r + 1u, col + 8u, c1_2); put(r + 1u, col + 12u, c1_3);
  put(r + 2u, col, c2_0); put(r + 2u, col + 4u, c2_1); put(r + 2u, col + 8u, c2_2); put(r + 2u, col + 12u, c2_3);
  put(r + 3u, col, c3_0); put(r + 3u, col + 4u, c3_1); put(r + 3u, col + 8u, c3_2); put(r + 3u, col + 12u, c3_3);
  put(r + 4u, col, c4_0); put(r + 4u, col + 4u, c4_1); put(r + 4u, col + 8u, c4_2); put(r + 4u, col + 12u, c4_3);
  put(r + 5u, col, c5_0); put(r + 5u, col + 4u, c5_1); put(r + 5u, col + 8u, c5_2); put(r + 5u, col + 12u, c5_3);
  put(r + 6u, col, c6_0); put(r + 6u, col + 4u, c6_1); put(r + 6u, col + 8u, c6_2); put(r + 6u, col + 12u, c6_3);
  put(r + 7u, col, c7_0); put(r + 7u, col + 4u, c7_1); put(r + 7u, col + 8u, c7_2); put(r + 7u, col + 12u, c7_3);
  put(r + 8u, col, c8_0); put(r + 8u, col + 4u, c8_1); put(r + 8u, col + 8u, c8_2); put(r + 8u, col + 12u, c8_3);
  put(r + 9u, col, c9_0); put(r + 9u, col + 4u, c9_1); put(r + 9u, col + 8u, c9_2); put(r + 9u, col + 12u, c9_3);
  put(r + 10u, col, c10_0); put(r + 10u, col + 4u, c10_1); put(r + 10u, col + 8u, c10_2); put(r + 10u, col + 12u, c10_3);
  put(r + 11u, col, c11_0); put(r + 11u, col + 4u, c11_1); put(r + 11u, col + 8u, c11_2); put(r + 11u, col + 12u, c11_3);
  put(r + 12u, col, c12_0); put(r + 12u, col + 4u, c12_1); put(r + 12u, col + 8u, c12_2); put(r + 12u, col + 12u, c12_3);
  put(r + 13u, col, c13_0); put(r + 13u, col + 4u, c13_1); put(r + 13u, col + 8u, c13_2); put(r + 13u, col + 12u, c13_3);
  put(r + 14u, col, c14_0); put(r + 14u, col + 4u, c14_1); put(r + 14u, col + 8u, c14_2); put(r + 14u, col + 12u, c14_3);
  put(r + 15u, col, c15_0); put(r + 15u, col + 4u, c15_1); put(r + 15u, col + 8u, c15_2); put(r + 15u, col + 12u, c15_3);
  put(r + 16u, col, c16_0); put(r + 16u, col + 4u, c16_1); put(r + 16u, col + 8u, c16_2); put(r + 16u, col + 12u, c16_3);
  put(r + 17u, col, c17_0); put(r + 17u, col + 4u, c17_1); put(r + 17u, col + 8u, c17_2); put(r + 17u, col + 12u, c17_3);
  put(r + 18u, col, c18_0); put(r + 18u, col + 4u, c18_1); put(r + 18u, col + 8u, c18_2); put(r + 18u, col + 12u, c18_3);
  put(r + 19u, col, c19_0); put(r + 19u, col + 4u, c19_1); put(r + 19u, col + 8u, c19_2); put(r + 19u, col + 12u, c19_3);
  put(r + 20u, col, c20_0); put(r + 20u, col + 4u, c20_1); put(r + 20u, col + 8u, c20_2); put(r + 20u, col + 12u, c20_3);
  put(r + 21u, col, c21_0); put(r + 21u, col + 4u, c21_1); put(r + 21u, col + 8u, c21_2); put(r + 21u, col + 12u, c21_3);
  put(r + 22u, col, c22_0); put(r + 22u, col + 4u, c22_1); put(r + 22u, col + 8u, c22_2); put(r + 22u, col + 12u, c22_3);
  put(r + 23u, col, c23_0); put(r + 23u, col + 4u, c23_1); put(r + 23u, col + 8u, c23_2); put(r + 23u, col + 12u, c23_3);
  put(r + 24u, col, c24_0); put(r + 24u, col + 4u, c24_1); put(r + 24u, col + 8u, c24_2); put(r + 24u, col + 12u, c24_3);
  put(r + 25u, col, c25_0); put(r + 25u, col + 4u, c25_1); put(r + 25u, col + 8u, c25_2); put(r + 25u, col + 12u, c25_3);
  put(r + 26u, col, c26_0); put(r + 26u, col + 4u, c26_1); put(r + 26u, col + 8u, c26_2); put(r + 26u, col + 12u, c26_3);
  put(r + 27u, col, c27_0); put(r + 27u, col + 4u, c27_1); put(r + 27u, col + 8u, c27_2); put(r + 27u, col + 12u, c27_3);
  put(r + 28u, col, c28_0); put(r + 28u, col + 4u, c28_1); put(r + 28u, col + 8u, c28_2); put(r + 28u, col + 12u, c28_3);
  put(r + 29u, col, c29_0); put(r + 29u, col + 4u, c29_1); put(r + 29u, col + 8u, c29_2); put(r + 29u, col + 12u, c29_3);
  put(r + 30u, col, c30_0); put(r + 30u, col + 4u, c30_1); put(r + 30u, col + 8u, c30_2); put(r + 30u, col + 12u, c30_3);
  put(r + 31u, col, c31_0); put(r + 31u, col + 4u, c31_1); put(r + 31u, col + 8u, c31_2); put(r + 31u, col + 12u, c31_3);
}
