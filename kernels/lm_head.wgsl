// Vocab-chunked LM head: the per-chunk logits come from the matmul kernels; these entry points
// turn one chunk of raw logits [rows × cols] (vocab columns start .. start + cols) into
// (a) capped logits placed in the full [T × V] matrix, (b) running log-sum-exp and the tgt's
// logit per row, (c) the logit gradient, in place.
// Transform of a raw logit l: z = softcap·tanh(l/softcap) (when softcap > 0), then z / temperature.
//
// Napkin math (reference decoder, 1024 tokens × V 8192 = 8 M logits): every pass reads each logit
// once (stats) or reads and writes it (grad, place). llvmpipe pays per lane and per load: a vec4
// storage load costs ~41 ns per 8 lanes against ~18 ns for a scalar one, and exp is a polynomial
// of ~20 vector ops, so the vec4 kernels (chunk widths that are multiples of 4) read whole vec4s
// and spend ~1 exp per logit: stats 8 M loads/32 + 8 M exps ≈ 16 ms of one core (the scalar
// workgroup-per-row kernel: ~45 ms), gradient ≈ 36 ms (+19 ms when it also writes dlᵀ; the
// scalar kernel: ~58 ms), against ~110 ms of two cores for each 1024×8192×256 f32 product.

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
  // 1: lm_head_grad_quads also writes the gradient transposed, lm_head_grad_bf16 its pack along
  // the tokens.
  write_t: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64u;
// Whether the logits are soft-capped (p.softcap > 0): a pipeline constant rather than a uniform
// branch, so a model without the cap compiles no tanh (~0.2 s of the cold JIT of
// lm_head_grad_bf16 alone, which inlines 16 of them).
override SOFTCAP: bool = false;
// Lanes per row in lm_head_stats (a power of two for the tree).
const RED: u32 = 64u;
const NEG: f32 = -3.0e38;

fn transform(l: f32) -> f32 {
  var z = l;
  if (SOFTCAP) {
    z = tanh(l / p.softcap) * p.softcap;
  }
  return z * p.inv_temp;
}

// dz/dl.
fn slope(l: f32) -> f32 {
  if (SOFTCAP) {
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
  let tgt = targets[p.row0 + t];
  var z_here = 0.0;
  if (in_chunk(tgt)) {
    z_here = transform(chunk[base + u32(tgt) - p.start]);
  }
  finish_stats(p.row0 + t, part_m[0], part_s[0], tgt, z_here);
}

fn in_chunk(tgt: i32) -> bool {
  return tgt >= i32(p.start) && tgt < i32(p.start + p.cols);
}

// Merges a row's (max, Σexp) over this chunk into the running stats, keeps the target's logit
// (`z_here` when the target lies in this chunk) and, after the last chunk, writes lse and logprob.
fn finish_stats(row: u32, m_chunk: f32, s_chunk: f32, tgt: i32, z_here: f32) {
  var m = m_chunk;
  var s = s_chunk;
  var zt = 0.0;
  if (p.first == 0u) {
    let mo = stats[row * 3u];
    let mx = max(m, mo);
    s = merged_sum(m, s, mo, stats[row * 3u + 1u], mx);
    m = mx;
    zt = stats[row * 3u + 2u];
  }
  if (in_chunk(tgt)) {
    zt = z_here;
  }
  stats[row * 3u] = m;
  stats[row * 3u + 1u] = s;
  stats[row * 3u + 2u] = zt;
  if (p.last == 1u) {
    let l = m + log(s);
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

// ---------------------------------------------------------------------------------------------
// Vec4 fast paths for chunks whose width (cols) is a multiple of 4 (every row starts on a vec4).

fn transform4(l: vec4<f32>) -> vec4<f32> {
  var z = l;
  if (SOFTCAP) {
    z = tanh(l / p.softcap) * p.softcap;
  }
  return z * p.inv_temp;
}

fn slope4(l: vec4<f32>) -> vec4<f32> {
  if (SOFTCAP) {
    let t = tanh(l / p.softcap);
    return (1.0 - t * t) * p.inv_temp;
  }
  return vec4(p.inv_temp);
}

fn max4(v: vec4<f32>) -> f32 {
  return max(max(v.x, v.y), max(v.z, v.w));
}

fn sum4(v: vec4<f32>) -> f32 {
  return dot(v, vec4(1.0));
}

// Running stats with one lane per row: no cross-lane reduction, no barrier. Blocks of 16 logits
// share one rescale, so each logit costs ~1 exp (the scalar kernel pays 2).
@group(0) @binding(1) var<storage, read> chunk4: array<vec4<f32>>;

@compute @workgroup_size(16)
fn lm_head_stats_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= p.rows) {
    return;
  }
  let n4 = p.cols / 4u;
  let base4 = t * n4;
  var m = NEG;
  var s = 0.0;
  var j = 0u;
  for (; j + 4u <= n4; j += 4u) {
    let z0 = transform4(chunk4[base4 + j]);
    let z1 = transform4(chunk4[base4 + j + 1u]);
    let z2 = transform4(chunk4[base4 + j + 2u]);
    let z3 = transform4(chunk4[base4 + j + 3u]);
    let mx = max(m, max4(max(max(z0, z1), max(z2, z3))));
    let e = exp(z0 - mx) + exp(z1 - mx) + exp(z2 - mx) + exp(z3 - mx);
    s = s * exp(m - mx) + sum4(e);
    m = mx;
  }
  for (; j < n4; j++) {
    let z = transform4(chunk4[base4 + j]);
    let mx = max(m, max4(z));
    s = s * exp(m - mx) + sum4(exp(z - mx));
    m = mx;
  }
  let tgt = targets[p.row0 + t];
  var z_here = 0.0;
  if (in_chunk(tgt)) {
    let j = u32(tgt) - p.start;
    z_here = transform4(chunk4[base4 + j / 4u])[j % 4u];
  }
  finish_stats(p.row0 + t, m, s, tgt, z_here);
}

// Gradient of 4 rows × QSPAN column quads per invocation, in place, and (when p.write_t is 1)
// also transposed into grad_t [cols × rows] (rows a multiple of 4), which the dHead product then
// reads as a plain row-major A instead of transposing 8 M values in a packing pass.
const QSPAN: u32 = 4u;

@group(0) @binding(4) var<storage, read_write> grad4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> grad_t4: array<vec4<f32>>;

struct RowGrad {
  tgt: i32,
  lse: f32,
  w: f32,
}

fn row_grad(t: u32) -> RowGrad {
  if (t >= p.rows) {
    return RowGrad(-1, 0.0, 0.0);
  }
  let row = p.row0 + t;
  let tgt = targets_g[row];
  return RowGrad(tgt, lse_g[row], select(weights[row], 0.0, tgt < 0));
}

// dl of row t, columns 4q … 4q+3, stored in place; rows past the end are left alone.
fn grad_quad(t: u32, q: u32, r: RowGrad) -> vec4<f32> {
  if (t >= p.rows) {
    return vec4<f32>();
  }
  let i = t * (p.cols / 4u) + q;
  let l = grad4[i];
  let cols = vec4(i32(p.start + 4u * q)) + vec4(0, 1, 2, 3);
  let onehot = select(vec4(0.0), vec4(1.0), cols == vec4(r.tgt));
  let g = r.w * (onehot - exp(transform4(l) - r.lse)) * slope4(l);
  grad4[i] = g;
  return g;
}

@compute @workgroup_size(16)
fn lm_head_grad_quads(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t0 = gid.y * 4u;
  let r0 = row_grad(t0);
  let r1 = row_grad(t0 + 1u);
  let r2 = row_grad(t0 + 2u);
  let r3 = row_grad(t0 + 3u);
  let n4 = p.cols / 4u;
  let end = min(gid.x * QSPAN + QSPAN, n4);
  for (var q = gid.x * QSPAN; q < end; q++) {
    let g = transpose(mat4x4(grad_quad(t0, q, r0), grad_quad(t0 + 1u, q, r1), grad_quad(t0 + 2u, q, r2), grad_quad(t0 + 3u, q, r3)));
    if (p.write_t == 1u) {
      let base = (4u * q * p.rows + t0) / 4u;
      let pitch = p.rows / 4u;
      grad_t4[base] = g[0];
      grad_t4[base + pitch] = g[1];
      grad_t4[base + 2u * pitch] = g[2];
      grad_t4[base + 3u * pitch] = g[3];
    }
  }
}

// The gradient of 8 rows × 8 columns per invocation, written straight into the two bf16 packs the
// packed matmuls read (see matmul_pack.wgsl) instead of into the f32 logits: `grad_packed` along
// the vocab (texel (q, t) holds columns 8q … 8q+7 of row t: A of dh = dl·W) and `grad_packed_t`
// along the tokens (texel (t/8, v) holds rows t … t+7 of column v: A of dHead = dlᵀ·h). Saves the
// f32 write and two packing passes over 8 M values; the second pack only when p.write_t is 1 (a
// frozen head needs no dHead). Values past the rows and the chunk's columns are zeros (the
// products read whole texels along k). Grid: x by texel q (lanes along the vocab, so the first
// pack's stores are neighbours in one row), y by 8-row block.
// #include bf16
@group(0) @binding(4) var<storage, read> logits4: array<vec4<f32>>;
@group(0) @binding(5) var grad_packed: texture_storage_2d<rgba32uint, write>;
@group(0) @binding(6) var grad_packed_t: texture_storage_2d<rgba32uint, write>;

fn grad_value(t: u32, q: u32, r: RowGrad) -> vec4<f32> {
  if (t >= p.rows || q >= p.cols / 4u) {
    return vec4<f32>();
  }
  let l = logits4[t * (p.cols / 4u) + q];
  let cols = vec4(i32(p.start + 4u * q)) + vec4(0, 1, 2, 3);
  let onehot = select(vec4(0.0), vec4(1.0), cols == vec4(r.tgt));
  // transform4 and slope4 sharing one tanh.
  var z = l;
  var dz = vec4(1.0);
  if (SOFTCAP) {
    let th = tanh(l / p.softcap);
    z = th * p.softcap;
    dz = 1.0 - th * th;
  }
  return r.w * (onehot - exp(z * p.inv_temp - r.lse)) * dz * p.inv_temp;
}

// Row t's 8 columns of texel q, stored into `grad_packed` and returned as bf16 bits.
fn grad_eight(t: u32, q: u32) -> Bf16Eight {
  let r = row_grad(t);
  let e = bf16_eight(grad_value(t, 2u * q, r), grad_value(t, 2u * q + 1u, r));
  textureStore(grad_packed, vec2(q, t), eight_texel(e));
  return e;
}

// The 8 rows are written out: a loop over them keeps the transposed texels in memory between
// iterations here and ran ~1.5× slower (~38 vs ~25 ms at 1024 × 8192) for ~0.35 s less cold JIT.
@compute @workgroup_size(16)
fn lm_head_grad_bf16(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  let t0 = 8u * gid.y;
  if (q >= (p.cols + 7u) / 8u) {
    return;
  }
  let g0 = grad_eight(t0, q);
  let g1 = grad_eight(t0 + 1u, q);
  let g2 = grad_eight(t0 + 2u, q);
  let g3 = grad_eight(t0 + 3u, q);
  let g4 = grad_eight(t0 + 4u, q);
  let g5 = grad_eight(t0 + 5u, q);
  let g6 = grad_eight(t0 + 6u, q);
  let g7 = grad_eight(t0 + 7u, q);
  if (p.write_t == 0u) {
    return;
  }
  let v = 8u * q;
  textureStore(grad_packed_t, vec2(gid.y, v), column_texel(g0.a.x, g1.a.x, g2.a.x, g3.a.x, g4.a.x, g5.a.x, g6.a.x, g7.a.x));
  textureStore(grad_packed_t, vec2(gid.y, v + 1u), column_texel(g0.a.y, g1.a.y, g2.a.y, g3.a.y, g4.a.y, g5.a.y, g6.a.y, g7.a.y));
  textureStore(grad_packed_t, vec2(gid.y, v + 2u), column_texel(g0.a.z, g1.a.z, g2.a.z, g3.a.z, g4.a.z, g5.a.z, g6.a.z, g7.a.z));
  textureStore(grad_packed_t, vec2(gid.y, v + 3u), column_texel(g0.a.w, g1.a.w, g2.a.w, g3.a.w, g4.a.w, g5.a.w, g6.a.w, g7.a.w));
  textureStore(grad_packed_t, vec2(gid.y, v + 4u), column_texel(g0.b.x, g1.b.x, g2.b.x, g3.b.x, g4.b.x, g5.b.x, g6.b.x, g7.b.x));
  textureStore(grad_packed_t, vec2(gid.y, v + 5u), column_texel(g0.b.y, g1.b.y, g2.b.y, g3.b.y, g4.b.y, g5.b.y, g6.b.y, g7.b.y));
  textureStore(grad_packed_t, vec2(gid.y, v + 6u), column_texel(g0.b.z, g1.b.z, g2.b.z, g3.b.z, g4.b.z, g5.b.z, g6.b.z, g7.b.z));
  textureStore(grad_packed_t, vec2(gid.y, v + 7u), column_texel(g0.b.w, g1.b.w, g2.b.w, g3.b.w, g4.b.w, g5.b.w, g6.b.w, g7.b.w));
}
