// General matmul from storage buffers, any shape and layout: C (= or +=) alpha·op(A)·op(B) + bias.
// Layouts are strides: element (i, p) of op(A) is a[i·a_row + p·a_k], element (p, j) of op(B) is
// b[p·b_k + j·b_col], so NN, NT and TN share one entry point.
// Napkin math: each lane owns an 8-row × 4-column register tile and loads 8 + 4 scalars per k
// for 32 FMAs (A addresses are the same for all lanes). On lavapipe a storage load costs
// ~12–18 ns per 8 lanes, so this path runs at a few GFLOP/s; it serves tiny problems, single
// rows (decode; NT ones take matmul_gemv_nt below) and k beyond a texture row — everything else
// takes matmul_tex.wgsl.
// Tails: indices are clamped for loads (no branches in the k loop) and stores are guarded.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  a_row: u32,
  a_k: u32,
  b_k: u32,
  b_col: u32,
  alpha: f32,
  flags: u32,
}

const HAS_BIAS = 1u;
const ACCUMULATE = 2u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const WX = 16u;

// The columns a lane owns, as element offsets into B (clamped: the tail lanes compute duplicates
// that are never stored) and as column indices.
struct Cols {
  offset: vec4<u32>,
  index: vec4<u32>,
}

fn lane_cols(col0: u32) -> Cols {
  let index = vec4(col0, col0 + WX, col0 + 2u * WX, col0 + 3u * WX);
  return Cols(min(index, vec4(p.n - 1u)) * p.b_col, index);
}

fn a_at(row: u32, kk: u32) -> f32 {
  return a[min(row, p.m - 1u) * p.a_row + kk * p.a_k];
}

// alpha·v + bias (+ old C) into row `row` at the lane's four columns, skipping the tails.
fn put(row: u32, cols: Cols, v: vec4<f32>) {
  if (row >= p.m) { return; }
  for (var j = 0u; j < 4u; j++) {
    let col = cols.index[j];
    if (col >= p.n) { return; }
    var x = p.alpha * v[j];
    if ((p.flags & HAS_BIAS) != 0u) { x += bias[col]; }
    let at = row * p.n + col;
    if ((p.flags & ACCUMULATE) != 0u) { x += c[at]; }
    c[at] = x;
  }
}

// A workgroup covers 8 rows × 64 columns; lane x owns columns x, x + 16, x + 32, x + 48
// (neighbouring lanes read neighbouring B elements in the NN layout). The 8 × 4 tile is written
// out (acc0 … acc7, one vec4 per row): Mesa leaves loops over register arrays in scratch memory.
@compute @workgroup_size(WX, 1, 1)
fn matmul_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r = wg.y * 8u;
  let cols = lane_cols(wg.x * (4u * WX) + lid.x);
  var acc0 = vec4<f32>(); var acc1 = vec4<f32>(); var acc2 = vec4<f32>(); var acc3 = vec4<f32>();
  var acc4 = vec4<f32>(); var acc5 = vec4<f32>(); var acc6 = vec4<f32>(); var acc7 = vec4<f32>();
  for (var kk = 0u; kk < p.k; kk++) {
    let row_b = kk * p.b_k;
    let bv = vec4(b[row_b + cols.offset.x], b[row_b + cols.offset.y], b[row_b + cols.offset.z], b[row_b + cols.offset.w]);
    acc0 = fma(vec4(a_at(r, kk)), bv, acc0);
    acc1 = fma(vec4(a_at(r + 1u, kk)), bv, acc1);
    acc2 = fma(vec4(a_at(r + 2u, kk)), bv, acc2);
    acc3 = fma(vec4(a_at(r + 3u, kk)), bv, acc3);
    acc4 = fma(vec4(a_at(r + 4u, kk)), bv, acc4);
    acc5 = fma(vec4(a_at(r + 5u, kk)), bv, acc5);
    acc6 = fma(vec4(a_at(r + 6u, kk)), bv, acc6);
    acc7 = fma(vec4(a_at(r + 7u, kk)), bv, acc7);
  }
  put(r, cols, acc0);
  put(r + 1u, cols, acc1);
  put(r + 2u, cols, acc2);
  put(r + 3u, cols, acc3);
  put(r + 4u, cols, acc4);
  put(r + 5u, cols, acc5);
  put(r + 6u, cols, acc6);
  put(r + 7u, cols, acc7);
}

// One row of A times Bᵀ (NT, m = 1: decoding one token through a linear layer or the LM head)
// with vec4 loads along k. Memory-bound: every B element is read once, one wide load per 4 values
// (~1.5 ns per element per core against ~5 ns with the tiled kernel's scalar loads, which also
// waste 7 of its 8 rows here). Needs k a multiple of 4. Lane columns and epilogue as above.
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;

@compute @workgroup_size(WX, 1, 1)
fn matmul_gemv_nt(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let cols = lane_cols(wg.x * (4u * WX) + lid.x);
  let rows = cols.offset / vec4(4u);
  var acc = vec4<f32>();
  for (var t = 0u; t < p.k / 4u; t++) {
    let x = a4[t];
    acc += vec4(dot(x, b4[rows.x + t]), dot(x, b4[rows.y + t]), dot(x, b4[rows.z + t]), dot(x, b4[rows.w + t]));
  }
  put(0u, cols, acc);
}

struct BiasParams { rows: u32, cols: u32 }

@group(0) @binding(0) var<uniform> bp: BiasParams;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;

// dbias[j] += Σ_i dy[i, j]: one lane per column walks the rows (reads 4·rows·cols bytes once).
// For cols % 4 != 0; the others take the vec4 variant below.
@compute @workgroup_size(WX, 1, 1)
fn matmul_bias_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  if (col >= bp.cols) { return; }
  var s = 0.0;
  for (var i = 0u; i < bp.rows; i++) { s += dy[i * bp.cols + col]; }
  dbias[col] += s;
}

@group(0) @binding(1) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dbias4: array<vec4<f32>>;

const BIAS_LANES: u32 = 8u;
const BIAS_QUADS: u32 = 4u;

// Same sums for cols % 4 == 0: a workgroup is one llvmpipe SIMD vector of BIAS_LANES lanes, each
// summing BIAS_QUADS vec4 columns BIAS_LANES apart, so every row read is 512 contiguous bytes; no
// barrier. Interleaved A/B: 12 × 1024×256 (a step's q/k/v biases) 4.3 → 2.1 ms, one cache-hot
// 0.31 → 0.20 ms, 4096×896 3.5 → 2.6 ms (row slices with a shared-memory tree: no faster).
@compute @workgroup_size(BIAS_LANES, 1, 1)
fn matmul_bias_backward_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let quads = bp.cols / 4u;
  let first = wg.x * (BIAS_LANES * BIAS_QUADS) + lid.x;
  var sums: array<vec4<f32>, BIAS_QUADS>;
  for (var i = 0u; i < bp.rows; i++) {
    for (var k = 0u; k < BIAS_QUADS; k++) {
      // Clamped: a lane past the last column loads a valid one and never stores it.
      sums[k] += dy4[i * quads + min(first + k * BIAS_LANES, quads - 1u)];
    }
  }
  for (var k = 0u; k < BIAS_QUADS; k++) {
    let col = first + k * BIAS_LANES;
    if (col < quads) { dbias4[col] += sums[k]; }
  }
}
