// Recommendation scores: row L2 normalisation (and its backward) around the cosine-score matmul,
// and a masked softmax cross-entropy over score rows (and its backward).
//
// Napkin math: users are a handful of rows, the catalogue ~10k rows × d (256 in the reference
// decoder, 2304 for Gemma-2-2b). Normalising 10k × 2304 reads 92 MB once (plus a write) at the
// ~1.5–3 GB/s of llvmpipe reductions → ~50 ms, once per catalogue refresh; the score matmul
// (B × 10k × d) is tiny. The softmax over B × 10k scores is ~0.3 MB: dispatch overhead only.
// One workgroup of RED lanes per row; shared-memory trees, one barrier per level, none in loops.

struct Params {
  rows: u32,
  cols: u32,
  grid_stride: u32,
  _pad0: u32,
  eps: f32,
  _pad1: f32,
  _pad2: f32,
  _pad3: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const RED: u32 = 64u;
const NEG: f32 = -3.0e38;

override WG: u32 = 64u;

var<workgroup> part_a: array<f32, RED>;
var<workgroup> part_b: array<f32, RED>;

// Sums part_a and part_b over the workgroup into index 0.
fn reduce_sums(lane: u32) {
  workgroupBarrier();
  for (var stride = RED / 2u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      part_a[lane] += part_a[lane + stride];
      part_b[lane] += part_b[lane + stride];
    }
    workgroupBarrier();
  }
}

fn row_of(wid: vec3<u32>) -> u32 {
  return wid.x + wid.y * p.grid_stride;
}

// ---------------------------------------------------------------------------------------------
// y = x / max(‖x‖, eps), per row of [rows × cols].

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(RED)
fn l2_normalize_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = row_of(wid);
  if (row >= p.rows) {
    return;
  }
  let base = row * p.cols;
  var ss = 0.0;
  for (var j = lid.x; j < p.cols; j += RED) {
    ss += x[base + j] * x[base + j];
  }
  part_a[lid.x] = ss;
  part_b[lid.x] = 0.0;
  reduce_sums(lid.x);
  let inv = 1.0 / max(sqrt(part_a[0]), p.eps);
  for (var j = lid.x; j < p.cols; j += RED) {
    y[base + j] = x[base + j] * inv;
  }
}

// dx += (g − x̂·(x̂·g)) / ‖x‖, or g / eps where the norm was clamped to eps.

@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(RED)
fn l2_normalize_backward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = row_of(wid);
  if (row >= p.rows) {
    return;
  }
  let base = row * p.cols;
  var ss = 0.0;
  var xg = 0.0;
  for (var j = lid.x; j < p.cols; j += RED) {
    let xv = x[base + j];
    ss += xv * xv;
    xg += xv * g[base + j];
  }
  part_a[lid.x] = ss;
  part_b[lid.x] = xg;
  reduce_sums(lid.x);
  let norm = sqrt(part_a[0]);
  let clamped = norm <= p.eps;
  let inv = 1.0 / max(norm, p.eps);
  // x·(x̂·g)/‖x‖ = x·(x·g)/‖x‖³.
  let along = select(part_b[0] * inv * inv * inv, 0.0, clamped);
  for (var j = lid.x; j < p.cols; j += RED) {
    dx[base + j] += g[base + j] * inv - x[base + j] * along;
  }
}

// ---------------------------------------------------------------------------------------------
// Masked softmax cross-entropy per row of scores [rows × cols]: probs = softmax over entries with
// mask 1 (0 elsewhere); loss = lse − s[target]; 0 for target −1 or a masked target.

@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> probs: array<f32>;

var<workgroup> row_lse: f32;

@compute @workgroup_size(RED)
fn score_softmax_ce(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = row_of(wid);
  if (row >= p.rows) {
    return;
  }
  let base = row * p.cols;
  var m = NEG;
  var s = 0.0;
  for (var j = lid.x; j < p.cols; j += RED) {
    if (mask[base + j] != 0.0) {
      let z = scores[base + j];
      let mx = max(m, z);
      s = s * exp(m - mx) + exp(z - mx);
      m = mx;
    }
  }
  part_a[lid.x] = m;
  part_b[lid.x] = s;
  workgroupBarrier();
  for (var stride = RED / 2u; stride > 0u; stride /= 2u) {
    if (lid.x < stride) {
      let m2 = part_a[lid.x + stride];
      let mx = max(part_a[lid.x], m2);
      part_b[lid.x] = part_b[lid.x] * exp(part_a[lid.x] - mx) + part_b[lid.x + stride] * exp(m2 - mx);
      part_a[lid.x] = mx;
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    row_lse = part_a[0] + log(part_b[0]);
    let t = targets[row];
    var l = 0.0;
    if (t >= 0 && u32(t) < p.cols && mask[base + u32(t)] != 0.0) {
      l = row_lse - scores[base + u32(t)];
    }
    loss[row] = l;
  }
  let lse = workgroupUniformLoad(&row_lse);
  for (var j = lid.x; j < p.cols; j += RED) {
    probs[base + j] = select(0.0, exp(scores[base + j] - lse), mask[base + j] != 0.0);
  }
}

// dScores += dLoss_r·(probs − onehot(target)) for rows whose loss counted.

@group(0) @binding(1) var<storage, read> probs_in: array<f32>;
@group(0) @binding(2) var<storage, read> targets_in: array<i32>;
@group(0) @binding(3) var<storage, read> mask_in: array<f32>;
@group(0) @binding(4) var<storage, read> dloss: array<f32>;
@group(0) @binding(5) var<storage, read_write> dscores: array<f32>;

@compute @workgroup_size(WG)
fn score_softmax_ce_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x + gid.y * p.grid_stride;
  if (n >= p.rows * p.cols) {
    return;
  }
  let row = n / p.cols;
  let col = n % p.cols;
  let t = targets_in[row];
  if (t < 0 || u32(t) >= p.cols || mask_in[row * p.cols + u32(t)] == 0.0) {
    return;
  }
  let onehot = select(0.0, 1.0, u32(t) == col);
  dscores[n] += dloss[row] * (probs_in[n] - onehot);
}
