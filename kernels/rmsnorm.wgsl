// RMSNorm y = (w + offset)·x·rstd, rstd = 1/sqrt(mean(x²) + eps) per row (offset 0: Qwen/Llama,
// offset 1: Gemma's (1 + w)), with backward
//   dx += rstd·(g − x̂·mean(g·x̂)),  g = dy·(w + offset), x̂ = x·rstd   (rmsnorm_backward_x)
//   dw[c] += Σ_rows dy[r,c]·x̂[r,c]                                    (rmsnorm_backward_w)
//
// Napkin math (T = 4096 rows × d = 896): forward reads x twice + w (uniform across lanes), writes y:
// ~3 varying loads/stores per element, ~5 FLOP → memory bound; compute-notes §4 measured this
// one-row-per-invocation layout at 2.3–3.5 GB/s (a workgroup per row with a barrier tree was slower),
// so ~10–20 ms. Backward x: 5 varying loads + 1 read-modify-write per element, ~2× the forward.
// The dw reduction sums the rows in a fixed order for each column (deterministic, no atomics): 2
// varying loads + 1 uniform rstd load per element.
// Layout: lanes along rows for the row kernels (no barriers at all; rows = 1 at decode is a
// serial loop over d in one lane, ~20 µs), lanes along columns for dw. 2-D grid past 65535 groups.

override WG: u32 = 64;

struct Params { rows: u32, cols: u32, eps: f32, offset: f32, row_stride: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;

@compute @workgroup_size(WG)
fn rmsnorm_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x + gid.y * p.row_stride;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var squares = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let v = x[base + c];
    squares += v * v;
  }
  let r = 1.0 / sqrt(squares / f32(p.cols) + p.eps);
  for (var c = 0u; c < p.cols; c++) {
    y[base + c] = (w[c] + p.offset) * (x[base + c] * r);
  }
  rstd[row] = r;
}

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> xb: array<f32>;
@group(0) @binding(3) var<storage, read> wb: array<f32>;
@group(0) @binding(4) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn rmsnorm_backward_x(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x + gid.y * p.row_stride;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let r = rstd_in[row];
  var dot = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    dot += dy[base + c] * (wb[c] + p.offset) * xb[base + c];
  }
  // mean(g·x̂) = r·Σ g·x / cols
  let mean_gx = dot * r / f32(p.cols);
  for (var c = 0u; c < p.cols; c++) {
    let g = dy[base + c] * (wb[c] + p.offset);
    dx[base + c] += r * (g - xb[base + c] * r * mean_gx);
  }
}

@group(0) @binding(3) var<storage, read> rstd_w: array<f32>;
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;

@compute @workgroup_size(WG)
fn rmsnorm_backward_w(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.cols) { return; }
  var sum = 0.0;
  for (var row = 0u; row < p.rows; row++) {
    sum += dy[row * p.cols + c] * xb[row * p.cols + c] * rstd_w[row];
  }
  dw[c] += sum;
}

// vec4 variants for cols % 4 == 0 (every real model width): a vec4 load costs ~2.2× an f32 load
// on llvmpipe for 4× the data (compute-notes §2.1). `p.cols` still counts floats.
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn rmsnorm_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x + gid.y * p.row_stride;
  if (row >= p.rows) { return; }
  let quads = p.cols / 4u;
  let base = row * quads;
  var squares = 0.0;
  for (var c = 0u; c < quads; c++) {
    let v = x4[base + c];
    squares += dot(v, v);
  }
  let r = 1.0 / sqrt(squares / f32(p.cols) + p.eps);
  for (var c = 0u; c < quads; c++) {
    y4[base + c] = (w4[c] + p.offset) * (x4[base + c] * r);
  }
  rstd[row] = r;
}

@group(0) @binding(1) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> xb4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> wb4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dx4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn rmsnorm_backward_x_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x + gid.y * p.row_stride;
  if (row >= p.rows) { return; }
  let quads = p.cols / 4u;
  let base = row * quads;
  let r = rstd_in[row];
  var dot_gx = 0.0;
  for (var c = 0u; c < quads; c++) {
    dot_gx += dot(dy4[base + c] * (wb4[c] + p.offset), xb4[base + c]);
  }
  let mean_gx = dot_gx * r / f32(p.cols);
  for (var c = 0u; c < quads; c++) {
    let g = dy4[base + c] * (wb4[c] + p.offset);
    dx4[base + c] += r * (g - xb4[base + c] * r * mean_gx);
  }
}

@group(0) @binding(4) var<storage, read_write> dw4: array<vec4<f32>>;

// dw for cols % 4 == 0 while dy and x fit the caches (the launcher falls back to the scalar
// kernel above beyond that: from memory, vec4 loads keep fewer cache misses in flight and the
// scalar walk wins). A workgroup is one llvmpipe SIMD vector of DW_LANES lanes along columns, each
// lane owning DW_QUADS vec4 columns DW_LANES apart, so every row read is 512 contiguous bytes; rows
// in order, no barrier, no atomics. Interleaved A/B at 1024×256: 9 norms' buffers (as in a step)
// 5.3 → 2.7 ms, one cache-hot norm 0.54 → 0.25 ms; 2048×896 3.6 → 1.9 ms; 4096×896 (29 MB) 7.9 ms
// scalar, 8.8 here. Splitting rows into slices summed by a shared-memory tree was 10–20 % slower.
const DW_LANES: u32 = 8u;
const DW_QUADS: u32 = 4u;

@compute @workgroup_size(DW_LANES)
fn rmsnorm_backward_w_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let quads = p.cols / 4u;
  let first = wid.x * (DW_LANES * DW_QUADS) + lid.x;
  var sums: array<vec4<f32>, DW_QUADS>;
  for (var row = 0u; row < p.rows; row++) {
    let r = rstd_w[row];
    for (var k = 0u; k < DW_QUADS; k++) {
      // Clamped: a lane past the last column loads a valid one and never stores it.
      let i = row * quads + min(first + k * DW_LANES, quads - 1u);
      sums[k] += dy4[i] * xb4[i] * r;
    }
  }
  for (var k = 0u; k < DW_QUADS; k++) {
    let c = first + k * DW_LANES;
    if (c < quads) { dw4[c] += sums[k]; }
  }
}
