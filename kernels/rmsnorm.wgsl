// RMSNorm y = (w + offset)·x·rstd, rstd = 1/sqrt(mean(x²) + eps) per row (offset 0: Qwen/Llama,
// offset 1: Gemma's (1 + w)), with backward
//   dx += rstd·(g − x̂·mean(g·x̂)),  g = dy·(w + offset), x̂ = x·rstd   (rmsnorm_backward_x)
//   dw[c] += Σ_rows dy[r,c]·x̂[r,c]                                    (rmsnorm_backward_w)
//
// Napkin math (T = 4096 rows × d = 896): forward reads x twice + w, writes y: ~4·3.7 M·4 B ≈ 59 MB
// of per-lane loads/stores, ~5 FLOP per element → memory bound at the 2–5 GB/s llvmpipe reaches for
// row reductions (compute-notes §4): ~10–20 ms. Backward x reads dy, x, w twice (~6 loads + 1 RMW per
// element) ≈ 2× that. The dw reduction walks rows in order for each column (deterministic, no
// atomics): 2 varying loads + 1 uniform rstd load per element, ~d/64 workgroups.
// Layout: one workgroup of 64 lanes per row for the row kernels (lanes stride the columns; one tree
// reduce with 6 barriers per row, outside the hot loop); one lane per column for dw.

const WG: u32 = 64u;

struct Params { rows: u32, cols: u32, eps: f32, offset: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;

var<workgroup> partial: array<f32, WG>;

// Sum of `value` over the workgroup; every lane gets the total. Call from uniform control flow.
fn workgroup_sum(value: f32, lane: u32) -> f32 {
  partial[lane] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) { partial[lane] += partial[lane + stride]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn rmsnorm_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  for (var row = wid.x; row < p.rows; row += groups.x) {
    let base = row * p.cols;
    var squares = 0.0;
    for (var c = lid.x; c < p.cols; c += WG) {
      let v = x[base + c];
      squares += v * v;
    }
    let r = 1.0 / sqrt(workgroup_sum(squares, lid.x) / f32(p.cols) + p.eps);
    for (var c = lid.x; c < p.cols; c += WG) {
      y[base + c] = (w[c] + p.offset) * (x[base + c] * r);
    }
    if (lid.x == 0u) { rstd[row] = r; }
  }
}

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> xb: array<f32>;
@group(0) @binding(3) var<storage, read> wb: array<f32>;
@group(0) @binding(4) var<storage, read> rstd_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn rmsnorm_backward_x(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  for (var row = wid.x; row < p.rows; row += groups.x) {
    let base = row * p.cols;
    let r = rstd_in[row];
    var dot = 0.0;
    for (var c = lid.x; c < p.cols; c += WG) {
      dot += dy[base + c] * (wb[c] + p.offset) * xb[base + c];
    }
    // mean(g·x̂) = r·Σ g·x / cols
    let mean_gx = workgroup_sum(dot, lid.x) * r / f32(p.cols);
    for (var c = lid.x; c < p.cols; c += WG) {
      let g = dy[base + c] * (wb[c] + p.offset);
      dx[base + c] += r * (g - xb[base + c] * r * mean_gx);
    }
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
