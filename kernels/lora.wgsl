// LoRA rank-r products of a linear layer, y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with A [r × in], B [out × r],
// in f32 (no operand rounding): the rank is tiny, so these are memory passes, not matmuls.
//   lora_forward:          u = x·Aᵀ (saved), y += s·u·Bᵀ           one pass over x and y
//   lora_backward_input:   du = s·dy·B (saved), dx += du·A          one pass over dy and dx
//   lora_backward_weight:  grad += scale·vᵀ·m over the tokens        dB (v = u, m = dy), dA (v = du, m = x)
// With bf16 packed operands the up-projections ride on the base product instead (src/model/linear.ts):
//   lora_forward_texels:        u = x·Aᵀ (saved) and bf16(u) into spare texels of x's pack
//   lora_backward_input_texels: du = s·dy·B (saved) and bf16(du) into spare texels of dy's pack
//   lora_factor_texels:         s·B (or A) into the matching spare texels of W's (or Wᵀ's) pack
// so that one product over k + the rank computes x·Wᵀ + u·(s·B)ᵀ (or dy·W + du·A). Texel
// column `texel + g` holds rank quad g (ranks 4g … 4g+3, then four zeros): the passes skip the
// read-modify-write of y or dx, ~2/3 of their memory operations.
// Napkin math (compute-notes §2.1): every storage load or store is a per-lane loop, ~1.3 ns per
// lane-component for a lane-varying vec4, ~0.9 ns for a uniform one. The row passes put lanes on
// rows, 4 rows per lane (hand-unrolled: Mesa keeps loops over register arrays in scratch memory),
// so each 4×4 block of A or B (uniform loads) serves 4 rows; their floor is the read of x or dy and
// the read + write of y or dx (~3.9 ns per element per core; measured here at T 1024, r 4:
// 0.65 ms for 256 → 256, 1.4 ms for 256 → 768). The weight pass puts lanes on pairs of feature
// quads and walks the tokens: one uniform vec4 of ranks and two lane-varying vec4s per token
// (~0.25 ms per 256 features; one quad per lane measured 15–40 % slower, and splitting the tokens
// over more workgroups, with a second pass summing their partials, no faster).
// Ranks run in quads (one dispatch per quad of ranks: r ≤ 4 is one); ranks past r read as zero.
// Features must be multiples of 4 (rows of whole vec4s).

const LANES = 16u;

struct RowParams {
  rows: u32,
  // vec4s per row of the input (x or dy) and of the output (y or dx)
  down_quads: u32,
  up_quads: u32,
  rank: u32,
  rank_quad: u32,
  // vec4s per row of the saved rank values (u or du)
  rank_quads: u32,
  down_scale: f32,
  up_scale: f32,
  // first spare texel column of the pack (texel entry points)
  texel: u32,
}

@group(0) @binding(0) var<uniform> rp: RowParams;
@group(0) @binding(1) var<storage, read> row_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lora_a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> lora_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> ranks: array<vec4<f32>>;
@group(0) @binding(4) var rank_texels: texture_storage_2d<rgba32uint, write>;

// #include bf16

// Rank q of this dispatch's quad, or r when past the last rank (its values read as zero).
fn rank_of(q: u32) -> u32 {
  return min(rp.rank_quad * 4u + q, rp.rank);
}

// Column q: A[rank q, features 4·fq … 4·fq+3] (A has `quads` vec4s per row).
fn a_block(fq: u32, quads: u32) -> mat4x4<f32> {
  var m: mat4x4<f32>;
  for (var q = 0u; q < 4u; q++) {
    let r = rank_of(q);
    m[q] = select(vec4<f32>(), lora_a[min(r, rp.rank - 1u) * quads + fq], r < rp.rank);
  }
  return m;
}

// Column c: B[feature 4·fq + c, ranks of the quad].
fn b_block(fq: u32) -> mat4x4<f32> {
  var m: mat4x4<f32>;
  for (var c = 0u; c < 4u; c++) {
    let row = (fq * 4u + c) * rp.rank;
    for (var q = 0u; q < 4u; q++) {
      let r = rank_of(q);
      m[c][q] = select(0.0, lora_b[row + min(r, rp.rank - 1u)], r < rp.rank);
    }
  }
  return m;
}

// The rank-major 4×4 block used to go down (x → u: columns over features, rows over ranks) or up.
fn down_block(fq: u32, forward: bool) -> mat4x4<f32> {
  if (forward) { return transpose(a_block(fq, rp.down_quads)); }
  return b_block(fq);
}

fn up_block(fq: u32, forward: bool) -> mat4x4<f32> {
  if (forward) { return transpose(b_block(fq)); }
  return a_block(fq, rp.up_quads);
}

fn add_up(row: u32, fq: u32, block: mat4x4<f32>, v: vec4<f32>) {
  if (row < rp.rows) {
    let at = row * rp.up_quads + fq;
    row_out[at] += block * v;
  }
}

fn save_ranks(row: u32, v: vec4<f32>) {
  if (row < rp.rows) { ranks[row * rp.rank_quads + rp.rank_quad] = v; }
}

// Four rows' rank values (one rank quad), rows first + k·LANES.
struct RankRows {
  first: u32,
  v0: vec4<f32>,
  v1: vec4<f32>,
  v2: vec4<f32>,
  v3: vec4<f32>,
}

// Down: v = down_scale · Σ_f in[row, f]·D(f, ranks), saved. down_block(fq)·x4 sums a quad of
// features into the 4 ranks (4 vec4 FMAs).
fn down_pass(group: u32, lane: u32, forward: bool) -> RankRows {
  let first = group * (4u * LANES) + lane;
  let last = rp.rows - 1u;
  let i0 = min(first, last) * rp.down_quads;
  let i1 = min(first + LANES, last) * rp.down_quads;
  let i2 = min(first + 2u * LANES, last) * rp.down_quads;
  let i3 = min(first + 3u * LANES, last) * rp.down_quads;
  var v0 = vec4<f32>();
  var v1 = vec4<f32>();
  var v2 = vec4<f32>();
  var v3 = vec4<f32>();
  for (var fq = 0u; fq < rp.down_quads; fq++) {
    let block = down_block(fq, forward);
    v0 += block * row_in[i0 + fq];
    v1 += block * row_in[i1 + fq];
    v2 += block * row_in[i2 + fq];
    v3 += block * row_in[i3 + fq];
  }
  let out = RankRows(first, v0 * rp.down_scale, v1 * rp.down_scale, v2 * rp.down_scale, v3 * rp.down_scale);
  save_ranks(first, out.v0);
  save_ranks(first + LANES, out.v1);
  save_ranks(first + 2u * LANES, out.v2);
  save_ranks(first + 3u * LANES, out.v3);
  return out;
}

// Up: out[row, :] += up_scale · v·U(ranks, :); up_block(fq)·v spreads 4 ranks over a quad of
// features (4 vec4 FMAs).
fn row_pass(group: u32, lane: u32, forward: bool) {
  let d = down_pass(group, lane, forward);
  let v0 = d.v0 * rp.up_scale;
  let v1 = d.v1 * rp.up_scale;
  let v2 = d.v2 * rp.up_scale;
  let v3 = d.v3 * rp.up_scale;
  for (var fq = 0u; fq < rp.up_quads; fq++) {
    let block = up_block(fq, forward);
    add_up(d.first, fq, block, v0);
    add_up(d.first + LANES, fq, block, v1);
    add_up(d.first + 2u * LANES, fq, block, v2);
    add_up(d.first + 3u * LANES, fq, block, v3);
  }
}

fn store_texel(row: u32, v: vec4<f32>) {
  if (row < rp.rows) { textureStore(rank_texels, vec2(rp.texel + rp.rank_quad, row), bf16_texel(v, vec4<f32>())); }
}

// Down pass, then its bf16 rank values into the pack's spare texel column of this rank quad.
fn texel_pass(group: u32, lane: u32, forward: bool) {
  let d = down_pass(group, lane, forward);
  store_texel(d.first, d.v0);
  store_texel(d.first + LANES, d.v1);
  store_texel(d.first + 2u * LANES, d.v2);
  store_texel(d.first + 3u * LANES, d.v3);
}

// Rows of x [rows × in] → u [rows × r] (saved, unscaled), y [rows × out] += s·u·Bᵀ.
@compute @workgroup_size(LANES)
fn lora_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  row_pass(wg.x, lid.x, true);
}

// Rows of dy [rows × out] → du = s·dy·B [rows × r] (saved), dx [rows × in] += du·A.
@compute @workgroup_size(LANES)
fn lora_backward_input(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  row_pass(wg.x, lid.x, false);
}

// Rows of x → u (saved, unscaled) and bf16(u) into texel columns texel + rank_quad of x's pack.
@compute @workgroup_size(LANES)
fn lora_forward_texels(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  texel_pass(wg.x, lid.x, true);
}

// Rows of dy → du = s·dy·B (saved) and bf16(du) into texel columns texel + rank_quad of dy's pack.
@compute @workgroup_size(LANES)
fn lora_backward_input_texels(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  texel_pass(wg.x, lid.x, false);
}

struct FactorParams {
  rows: u32,
  rank: u32,
  // factor value (row i, rank q) at i·row_stride + q·rank_stride
  row_stride: u32,
  rank_stride: u32,
  rank_quads: u32,
  texel: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> fp: FactorParams;
@group(0) @binding(1) var<storage, read> factor: array<f32>;
@group(0) @binding(2) var factor_texels: texture_storage_2d<rgba32uint, write>;

fn factor_at(row: u32, q: u32) -> f32 {
  let r = min(q, fp.rank - 1u);
  return select(0.0, fp.scale * factor[row * fp.row_stride + r * fp.rank_stride], q < fp.rank);
}

// Row i of a weight's pack (an output feature of W, or an input feature of Wᵀ): texel column
// texel + g holds scale · the factor's ranks 4g … 4g+3 at that feature (s·B[i, ·] or A[·, i]).
@compute @workgroup_size(LANES)
fn lora_factor_texels(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= fp.rows) { return; }
  for (var g = 0u; g < fp.rank_quads; g++) {
    let q = g * 4u;
    let v = vec4(factor_at(row, q), factor_at(row, q + 1u), factor_at(row, q + 2u), factor_at(row, q + 3u));
    textureStore(factor_texels, vec2(fp.texel + g, row), bf16_texel(v, vec4<f32>()));
  }
}

struct WeightParams {
  rows: u32,
  // vec4s per row of m
  quads: u32,
  rank: u32,
  rank_quad: u32,
  rank_quads: u32,
  // where grad(rank q, feature f) lives: q·rank_stride + f·feature_stride
  rank_stride: u32,
  feature_stride: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> wp: WeightParams;
@group(0) @binding(1) var<storage, read> saved: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> tokens: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
// The token matrix as a bf16 row pack (texel (t, i): features 8t … 8t+7 of token i), for
// lora_backward_weight_packed.
@group(0) @binding(2) var tokens_bf16: texture_2d<u32>;

// One quad of features (4 columns of m) against the ranks of v: acc[c] += m[c]·v.
fn outer(acc: mat4x4<f32>, m: vec4<f32>, v: vec4<f32>) -> mat4x4<f32> {
  return mat4x4(fma(vec4(m.x), v, acc[0]), fma(vec4(m.y), v, acc[1]), fma(vec4(m.z), v, acc[2]), fma(vec4(m.w), v, acc[3]));
}

// grad(ranks, features 4·fq … 4·fq+3) += scale·acc (acc[c]: the ranks of feature 4·fq + c). The
// rank loop's trip count is not a constant, so it stays a loop: unrolled, the 16 guarded scalar
// read-modify-writes doubled this kernel's cold JIT (to ~0.2 s).
fn add_grad(fq: u32, acc: mat4x4<f32>) {
  if (fq >= wp.quads) { return; }
  let first = wp.rank_quad * 4u;
  let ranks = min(4u, wp.rank - first);
  for (var c = 0u; c < 4u; c++) {
    let column = acc[c];
    for (var q = 0u; q < ranks; q++) {
      let at = (first + q) * wp.rank_stride + (fq * 4u + c) * wp.feature_stride;
      grad[at] += wp.scale * column[q];
    }
  }
}

// grad(q, f) += scale · Σ_i saved[i, q]·tokens[i, f]: lane = two neighbouring quads of features
// (one uniform load of v serves both), walking every token.
@compute @workgroup_size(LANES)
fn lora_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
  let fq0 = gid.x * 2u;
  if (fq0 >= wp.quads) { return; }
  let fq1 = min(fq0 + 1u, wp.quads - 1u);
  var acc0 = mat4x4<f32>();
  var acc1 = mat4x4<f32>();
  for (var i = 0u; i < wp.rows; i++) {
    let v = saved[i * wp.rank_quads + wp.rank_quad];
    acc0 = outer(acc0, tokens[i * wp.quads + fq0], v);
    acc1 = outer(acc1, tokens[i * wp.quads + fq1], v);
  }
  add_grad(fq0, acc0);
  add_grad(fq0 + 1u, acc1);
}

// The same from the tokens' bf16 row pack (the base products' operand): one texel fetch gives the
// lane's 8 features of a token, where the f32 rows took two lane-varying vec4 loads (~4× the
// time). Values past the features read as zero (the pack zeroes them); add_grad skips them.
@compute @workgroup_size(LANES)
fn lora_backward_weight_packed(@builtin(global_invocation_id) gid: vec3<u32>) {
  let fq0 = gid.x * 2u;
  if (fq0 >= wp.quads) { return; }
  var acc0 = mat4x4<f32>();
  var acc1 = mat4x4<f32>();
  for (var i = 0u; i < wp.rows; i++) {
    let v = saved[i * wp.rank_quads + wp.rank_quad];
    let t = textureLoad(tokens_bf16, vec2(gid.x, i), 0);
    let even = lo(t);
    let odd = hi(t);
    acc0 = outer(acc0, vec4(even.x, odd.x, even.y, odd.y), v);
    acc1 = outer(acc1, vec4(even.z, odd.z, even.w, odd.w), v);
  }
  add_grad(fq0, acc0);
  add_grad(fq0 + 1u, acc1);
}
