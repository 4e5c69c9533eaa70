// Vocab-chunked LM head: the per-chunk logits come from the matmul kernels; these entry points
// turn one chunk of raw logits [rows × cols] (vocab columns start .. start + cols) into
// (a) capped logits placed in the full [T × V] matrix, (b) running log-sum-exp and the tgt's
// logit per row, (c) the logit gradient, in place.
// Transform of a raw logit l: z = softcap·tanh(l/softcap) (when softcap > 0), then z / temperature.
//
// Napkin math (reference decoder, 1024 tokens × V 8192 = 8 M logits): every pass reads each logit
// once (stats) or reads and writes it (grad, place): 32–64 MB at the 1.5–3 GB/s that reductions
// and elementwise kernels reach on llvmpipe (compute-notes §4) → ~15–25 ms per pass, against
// ~90 ms for each of the three 1024×8192×256 matmuls around them.

struct Params {
  rows: u32,
  cols: u32,
  start: u32,
  vocab: u32,
  // First token row of this block in the targets / weights / per-token outputs.
  row0: u32,
  // 1 for the first vocab chunk (initialise running stats), else 0.
  first: u32,
  // 1 for the last vocab chunk (write lse and logprob), else 0.
  last: u32,
  grid_stride: u32,
  softcap: f32,
  inv_temp: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64u;
// Lanes per row in lm_head_stats (a power of two for the tree).
const RED: u32 = 64u;
const NEG: f32 = -3.0e38;

fn transform(l: f32) -> f32 {
  var z = l;
  if (p.softcap > 0.0) {
    z = tanh(l / p.softcap) * p.softcap;
  }
  return z * p.inv_temp;
}

// dz/dl.
fn slope(l: f32) -> f32 {
  if (p.softcap > 0.0) {
    let t = tanh(l / p.softcap);
    return (1.0 - t * t) * p.inv_temp;
  }
  return p.inv_temp;
}

// ---------------------------------------------------------------------------------------------
// Capped logits into the full matrix: logits[(row0 + t)·V + start + j].

@group(0) @binding(1) var<storage, read> chunk: array<f32>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;

@compute @workgroup_size(WG)
fn lm_head_place(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x + gid.y * p.grid_stride;
  if (n >= p.rows * p.cols) {
    return;
  }
  let t = n / p.cols;
  let j = n % p.cols;
  logits[(p.row0 + t) * p.vocab + p.start + j] = transform(chunk[n]);
}

// ---------------------------------------------------------------------------------------------
// Running (max, Σexp, tgt logit) per row across chunks: one workgroup of RED lanes per row,
// a strided online pass, then a shared-memory tree (one barrier per level, outside any loop).

@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> logprob: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

var<workgroup> part_m: array<f32, RED>;
var<workgroup> part_s: array<f32, RED>;

fn merged_sum(m1: f32, s1: f32, m2: f32, s2: f32, m: f32) -> f32 {
  return s1 * exp(m1 - m) + s2 * exp(m2 - m);
}

@compute @workgroup_size(RED)
fn lm_head_stats(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = wid.x + wid.y * p.grid_stride;
  if (t >= p.rows) {
    return;
  }
  let base = t * p.cols;
  var m = NEG;
  var s = 0.0;
  for (var j = lid.x; j < p.cols; j += RED) {
    let z = transform(chunk[base + j]);
    let mx = max(m, z);
    s = s * exp(m - mx) + exp(z - mx);
    m = mx;
  }
  part_m[lid.x] = m;
  part_s[lid.x] = s;
  workgroupBarrier();
  for (var stride = RED / 2u; stride > 0u; stride /= 2u) {
    if (lid.x < stride) {
      let m2 = part_m[lid.x + stride];
      let mx = max(part_m[lid.x], m2);
      part_s[lid.x] = merged_sum(part_m[lid.x], part_s[lid.x], m2, part_s[lid.x + stride], mx);
      part_m[lid.x] = mx;
    }
    workgroupBarrier();
  }
  if (lid.x != 0u) {
    return;
  }
  let row = p.row0 + t;
  var mt = part_m[0];
  var st = part_s[0];
  var zt = 0.0;
  if (p.first == 0u) {
    let mo = stats[row * 3u];
    let mx = max(mt, mo);
    st = merged_sum(mt, st, mo, stats[row * 3u + 1u], mx);
    mt = mx;
    zt = stats[row * 3u + 2u];
  }
  let tgt = targets[row];
  if (tgt >= i32(p.start) && tgt < i32(p.start + p.cols)) {
    zt = transform(chunk[base + u32(tgt) - p.start]);
  }
  stats[row * 3u] = mt;
  stats[row * 3u + 1u] = st;
  stats[row * 3u + 2u] = zt;
  if (p.last == 1u) {
    let l = mt + log(st);
    lse[row] = l;
    logprob[row] = select(zt - l, 0.0, tgt < 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient of Σ_t w_t·logprob_t w.r.t. the raw logits, in place:
// dl = w_t·(onehot − exp(z − lse_t))·dz/dl; ignored targets (−1) give 0. One invocation = SPAN
// consecutive logits of one row (grid y = row), so the row's target, lse and weight are loaded
// once per SPAN logits instead of per logit (2 instead of 5 memory accesses per logit).

const SPAN: u32 = 32u;

@group(0) @binding(1) var<storage, read> targets_g: array<i32>;
@group(0) @binding(2) var<storage, read> lse_g: array<f32>;
@group(0) @binding(3) var<storage, read> weights: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;

@compute @workgroup_size(WG)
fn lm_head_grad(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.y;
  let first = gid.x * SPAN;
  if (t >= p.rows || first >= p.cols) {
    return;
  }
  let row = p.row0 + t;
  let tgt = targets_g[row];
  let l_row = lse_g[row];
  let w = select(weights[row], 0.0, tgt < 0);
  let base = t * p.cols;
  let end = min(first + SPAN, p.cols);
  for (var j = first; j < end; j++) {
    let l = grad[base + j];
    let onehot = select(0.0, 1.0, i32(p.start + j) == tgt);
    grad[base + j] = w * (onehot - exp(transform(l) - l_row)) * slope(l);
  }
}
