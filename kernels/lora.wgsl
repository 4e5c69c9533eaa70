// LoRA rank-r products of a linear layer, y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with A [r × in], B [out × r],
// in f32 (no operand rounding): the rank is tiny, so these are memory passes, not matmuls.
//   lora_forward:          u = x·Aᵀ (saved), y += s·u·Bᵀ           one pass over x and y
//   lora_backward_input:   du = s·dy·B (saved), dx += du·A          one pass over dy and dx
//   lora_backward_weight:  grad += scale·vᵀ·m over the tokens        dB (v = u, m = dy), dA (v = du, m = x)
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
}

@group(0) @binding(0) var<uniform> rp: RowParams;
@group(0) @binding(1) var<storage, read> row_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> lora_a: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> lora_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> row_out: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> ranks: array<vec4<f32>>;

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

// Down: v = down_scale · Σ_f in[row, f]·D(f, ranks); up: out[row, :] += up_scale · v·U(ranks, :).
// down_block(fq)·x4 sums a quad of features into the 4 ranks; up_block(fq)·v spreads 4 ranks over a
// quad of features (both are 4 vec4 FMAs).
fn row_pass(group: u32, lane: u32, forward: bool) {
  let first = group * (4u * LANES) + lane;
  let r0 = first;
  let r1 = first + LANES;
  let r2 = first + 2u * LANES;
  let r3 = first + 3u * LANES;
  let last = rp.rows - 1u;
  let i0 = min(r0, last) * rp.down_quads;
  let i1 = min(r1, last) * rp.down_quads;
  let i2 = min(r2, last) * rp.down_quads;
  let i3 = min(r3, last) * rp.down_quads;
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
  v0 *= rp.down_scale;
  v1 *= rp.down_scale;
  v2 *= rp.down_scale;
  v3 *= rp.down_scale;
  save_ranks(r0, v0);
  save_ranks(r1, v1);
  save_ranks(r2, v2);
  save_ranks(r3, v3);
  v0 *= rp.up_scale;
  v1 *= rp.up_scale;
  v2 *= rp.up_scale;
  v3 *= rp.up_scale;
  for (var fq = 0u; fq < rp.up_quads; fq++) {
    let block = up_block(fq, forward);
    add_up(r0, fq, block, v0);
    add_up(r1, fq, block, v1);
    add_up(r2, fq, block, v2);
    add_up(r3, fq, block, v3);
  }
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
