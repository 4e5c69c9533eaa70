// Rotate-half RoPE (HF Llama/Qwen): for each token t, head h and i < D/2 with angle a = pos[t]·invFreq[i]
//   y[i] = x[i]·cos a − x[i + D/2]·sin a,  y[i + D/2] = x[i + D/2]·cos a + x[i]·sin a,
// and the backward (the transposed rotation, i.e. sin → −sin) dx[i] += dy[i]·cos a + dy[i+D/2]·sin a,
// dx[i+D/2] += dy[i+D/2]·cos a − dy[i]·sin a.
//
// The angle is the f32 product pos·invFreq, as HF computes it; invFreq arrives in the uniform block
// (computed on the CPU, including any rope scaling) because an in-shader pow() would be off by a few
// ulp, which at position 4096 is ~1e-3 rad. cos/sin of angles up to ~10⁴ rad are reduced to [−π, π]
// first (Cody–Waite with 2π split in an exact 8-bit head and a tail), so the result stays within a few
// 1e-7 of cos/sin of the f32 angle regardless of how llvmpipe reduces large arguments.
//
// Napkin math (T = 4096, 14 heads × 64): 3.7 M elements, 2 loads + 2 stores per pair → ~30 MB moved;
// cos+sin (~40 FLOP) once per (token, i), shared by all heads → memory/loop bound, ~10–20 ms on llvmpipe.
// Layout: one invocation per (token, i) — per (token, 4 consecutive i) in the vec4 kernels, used when
// D/2 is divisible by 4 — looping over the heads; lanes along i. 2-D grid past 65535 workgroups. Each
// invocation reads and writes only its own pairs, so in-place is safe.

struct Params { n: u32, heads: u32, half: u32, row_stride: u32, inv_freq: array<vec4<f32>, 64> }

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64;

const TWO_PI_HEAD: f32 = 6.28125; // 201/32: k·head is exact for k < 2^16
const TWO_PI_TAIL: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

struct Rotation { cos: vec4<f32>, sin: vec4<f32> }

// cos/sin of the f32 angles position·freq, range-reduced; `sign` −1 gives the transposed rotation.
fn rotation(position: i32, freq: vec4<f32>, sign: f32) -> Rotation {
  let a = f32(position) * freq;
  let k = round(a * INV_TWO_PI);
  let r = (a - k * TWO_PI_HEAD) - k * TWO_PI_TAIL;
  return Rotation(cos(r), sign * sin(r));
}

// (a, b) rotated: (a·cos − b·sin, b·cos + a·sin).
fn rotate_lo(a: vec4<f32>, b: vec4<f32>, r: Rotation) -> vec4<f32> {
  return a * r.cos - b * r.sin;
}

fn rotate_hi(a: vec4<f32>, b: vec4<f32>, r: Rotation) -> vec4<f32> {
  return b * r.cos + a * r.sin;
}

@group(0) @binding(1) var<storage, read> positions: array<i32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> xy: array<f32>;

// Scalar kernels: invocation i = t·(D/2) + j.
fn rotation_of(i: u32, sign: f32) -> Rotation {
  let j = i % p.half;
  return rotation(positions[i / p.half], vec4<f32>(p.inv_freq[j / 4u][j % 4u]), sign);
}

fn first_lo(i: u32) -> u32 {
  return (i / p.half) * p.heads * 2u * p.half + i % p.half;
}

fn rotate_out(i: u32, sign: f32, accumulate: bool) {
  let r = rotation_of(i, sign);
  for (var h = 0u; h < p.heads; h++) {
    let lo = first_lo(i) + h * 2u * p.half;
    let a = vec4<f32>(x[lo]);
    let b = vec4<f32>(x[lo + p.half]);
    if (accumulate) {
      y[lo] += rotate_lo(a, b, r).x;
      y[lo + p.half] += rotate_hi(a, b, r).x;
    } else {
      y[lo] = rotate_lo(a, b, r).x;
      y[lo + p.half] = rotate_hi(a, b, r).x;
    }
  }
}

@compute @workgroup_size(WG)
fn rope_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i < p.n) { rotate_out(i, 1.0, false); }
}

@compute @workgroup_size(WG)
fn rope_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i < p.n) { rotate_out(i, -1.0, true); }
}

@compute @workgroup_size(WG)
fn rope_forward_inplace(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  let r = rotation_of(i, 1.0);
  for (var h = 0u; h < p.heads; h++) {
    let lo = first_lo(i) + h * 2u * p.half;
    let a = vec4<f32>(xy[lo]);
    let b = vec4<f32>(xy[lo + p.half]);
    xy[lo] = rotate_lo(a, b, r).x;
    xy[lo + p.half] = rotate_hi(a, b, r).x;
  }
}

// vec4 kernels (D/2 divisible by 4): invocation i = t·(D/8) + q covers i ∈ [4q, 4q + 4); indices in vec4s.
@group(0) @binding(2) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> xy4: array<vec4<f32>>;

fn rotation_of4(i: u32, sign: f32) -> Rotation {
  let quads = p.half / 4u;
  return rotation(positions[i / quads], p.inv_freq[i % quads], sign);
}

fn first_lo4(i: u32) -> u32 {
  let quads = p.half / 4u;
  return (i / quads) * p.heads * 2u * quads + i % quads;
}

fn rotate_out4(i: u32, sign: f32, accumulate: bool) {
  let quads = p.half / 4u;
  let r = rotation_of4(i, sign);
  for (var h = 0u; h < p.heads; h++) {
    let lo = first_lo4(i) + h * 2u * quads;
    let a = x4[lo];
    let b = x4[lo + quads];
    if (accumulate) {
      y4[lo] += rotate_lo(a, b, r);
      y4[lo + quads] += rotate_hi(a, b, r);
    } else {
      y4[lo] = rotate_lo(a, b, r);
      y4[lo + quads] = rotate_hi(a, b, r);
    }
  }
}

@compute @workgroup_size(WG)
fn rope_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i < p.n) { rotate_out4(i, 1.0, false); }
}

@compute @workgroup_size(WG)
fn rope_backward_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i < p.n) { rotate_out4(i, -1.0, true); }
}

@compute @workgroup_size(WG)
fn rope_forward_inplace_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  let quads = p.half / 4u;
  let r = rotation_of4(i, 1.0);
  for (var h = 0u; h < p.heads; h++) {
    let lo = first_lo4(i) + h * 2u * quads;
    let a = xy4[lo];
    let b = xy4[lo + quads];
    xy4[lo] = rotate_lo(a, b, r);
    xy4[lo + quads] = rotate_hi(a, b, r);
  }
}
