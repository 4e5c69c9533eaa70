// General matmul from storage buffers, any shape and layout: C (= or +=) alpha·op(A)·op(B) + bias.
// Layouts are strides: element (i, p) of op(A) is a[i·a_row + p·a_k], element (p, j) of op(B) is
// b[p·b_k + j·b_col], so NN, NT and TN share one entry point.
// Napkin math: each lane owns an 8-row × 4-column register tile and loads 8 + 4 scalars per k
// for 32 FMAs. On lavapipe a lane-varying storage load costs ~18 ns per 8 lanes, so this path
// runs at ~5–15 GFLOP/s; large problems take the texture path (matmul_tex.wgsl) instead.
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
const TM = 8u;
const TN = 4u;

// A workgroup covers TM rows × WX·TN columns; lane x owns columns x, x + WX, … (neighbouring
// lanes read neighbouring B elements in the NN layout).
@compute @workgroup_size(WX, 1, 1)
fn matmul_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row0 = wg.y * TM;
  let col0 = wg.x * (WX * TN) + lid.x;
  var rows: array<u32, TM>;
  var cols: array<u32, TN>;
  for (var i = 0u; i < TM; i++) { rows[i] = min(row0 + i, p.m - 1u) * p.a_row; }
  for (var j = 0u; j < TN; j++) { cols[j] = min(col0 + j * WX, p.n - 1u) * p.b_col; }
  var acc: array<array<f32, TN>, TM>;
  for (var kk = 0u; kk < p.k; kk++) {
    var av: array<f32, TM>;
    var bv: array<f32, TN>;
    for (var i = 0u; i < TM; i++) { av[i] = a[rows[i] + kk * p.a_k]; }
    for (var j = 0u; j < TN; j++) { bv[j] = b[kk * p.b_k + cols[j]]; }
    for (var i = 0u; i < TM; i++) {
      for (var j = 0u; j < TN; j++) { acc[i][j] = fma(av[i], bv[j], acc[i][j]); }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let row = row0 + i;
    if (row >= p.m) { break; }
    for (var j = 0u; j < TN; j++) {
      let col = col0 + j * WX;
      if (col >= p.n) { break; }
      var v = p.alpha * acc[i][j];
      if ((p.flags & HAS_BIAS) != 0u) { v += bias[col]; }
      let at = row * p.n + col;
      if ((p.flags & ACCUMULATE) != 0u) { v += c[at]; }
      c[at] = v;
    }
  }
}

struct BiasParams { rows: u32, cols: u32 }

@group(0) @binding(0) var<uniform> bp: BiasParams;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;

// dbias[j] += Σ_i dy[i, j]: one lane per column walks the rows (reads 4·rows·cols bytes once;
// ~1 ms for 2048×256 here).
@compute @workgroup_size(WX, 1, 1)
fn matmul_bias_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  if (col >= bp.cols) { return; }
  var s = 0.0;
  for (var i = 0u; i < bp.rows; i++) { s += dy[i * bp.cols + col]; }
  dbias[col] += s;
}
