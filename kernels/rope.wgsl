// Rotate-half RoPE (HF Llama/Qwen): for each token t, head h and i < D/2 with angle a = pos[t]·invFreq[i]
//   y[i] = x[i]·cos a − x[i + D/2]·sin a,  y[i + D/2] = x[i + D/2]·cos a + x[i]·sin a,
// and the backward (the transposed rotation) dx[i] += dy[i]·cos a + dy[i+D/2]·sin a,
// dx[i+D/2] += dy[i+D/2]·cos a − dy[i]·sin a.
//
// The angle is the f32 product pos·invFreq, as HF computes it; invFreq arrives in the uniform block
// (computed on the CPU, including any rope scaling) because an in-shader pow() would be off by a few
// ulp, which at position 4096 is ~1e-3 rad. cos/sin of angles up to ~10⁴ rad are reduced to [−π, π]
// first (Cody–Waite with 2π split in an exact 8-bit head and a tail), so the result stays within a few
// 1e-7 of cos/sin of the f32 angle regardless of how llvmpipe reduces large arguments.
//
// Napkin math (T = 4096, 14 heads × 64): 3.7 M elements, 2 loads + 2 stores per pair, ~40 FLOP per
// pair for cos+sin → ~30 MB moved, ~70 MFLOP: memory/loop bound, ~10 ms at 3 GB/s on llvmpipe.
// Layout: one invocation per (token, head, i < D/2) pair; x along i (vectorised), 2-D grid past
// 65535 workgroups. Each invocation reads and writes only its own pair, so in-place is safe.

struct Params { n: u32, heads: u32, half: u32, row_stride: u32, inv_freq: array<vec4<f32>, 64> }

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64;

const TWO_PI_HEAD: f32 = 6.28125; // 201/32: k·head is exact for k < 2^16
const TWO_PI_TAIL: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

struct Pair { lo: u32, hi: u32, cs: vec2<f32> }

// Element offsets of the rotated pair and (cos, sin) of its angle.
fn pair(i: u32, position: i32) -> Pair {
  let j = i % p.half;
  let head_row = i / p.half;
  let lo = head_row * 2u * p.half + j;
  let a = f32(position) * p.inv_freq[j / 4u][j % 4u];
  let k = round(a * INV_TWO_PI);
  let r = (a - k * TWO_PI_HEAD) - k * TWO_PI_TAIL;
  return Pair(lo, lo + p.half, vec2<f32>(cos(r), sin(r)));
}

// (a, b) rotated by the angle whose (cos, sin) is cs.
fn rotate(a: f32, b: f32, cs: vec2<f32>) -> vec2<f32> {
  return vec2<f32>(a * cs.x - b * cs.y, b * cs.x + a * cs.y);
}

@group(0) @binding(1) var<storage, read> positions: array<i32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn rope_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  let q = pair(i, positions[i / (p.half * p.heads)]);
  let r = rotate(x[q.lo], x[q.hi], q.cs);
  y[q.lo] = r.x;
  y[q.hi] = r.y;
}

@group(0) @binding(2) var<storage, read_write> xy: array<f32>;

@compute @workgroup_size(WG)
fn rope_forward_inplace(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  let q = pair(i, positions[i / (p.half * p.heads)]);
  let r = rotate(xy[q.lo], xy[q.hi], q.cs);
  xy[q.lo] = r.x;
  xy[q.hi] = r.y;
}

@compute @workgroup_size(WG)
fn rope_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  let q = pair(i, positions[i / (p.half * p.heads)]);
  let r = rotate(x[q.lo], x[q.hi], vec2<f32>(q.cs.x, -q.cs.y));
  y[q.lo] += r.x;
  y[q.hi] += r.y;
}
