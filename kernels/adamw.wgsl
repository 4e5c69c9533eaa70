// AdamW (PyTorch semantics: decoupled weight decay, bias correction) with global L2 gradient-norm
// clipping (torch.nn.utils.clip_grad_norm_: coef = min(1, max_norm / (norm + 1e-6))), all on the GPU:
//   adamw_sumsq   per tensor: Σ g² per lane of 8-lane blocks → partials[first + 8·block + lane]
//   adamw_norm    one workgroup: norm = sqrt(Σ partials) → grad_norm[0]; coef → partials[count]
//   adamw_update  per tensor, element-wise: g·coef, then the AdamW update of param, m, v
//                 (adamw_update_packed: and the bf16 row pack of the new param).
// Every sum runs in a fixed order (no atomics), so the step is bit-reproducible.
//
// Napkin math (7.6 M params, the reference decoder): sumsq reads g once (30 MB); the update reads
// param, g, m, v and writes param, m, v: 7 × 30 MB = 213 MB of per-lane traffic, ~15 FLOP + 1 sqrt
// + 1 divide per element → memory bound at 2–5 GB/s on llvmpipe: ~50–100 ms per step; the norm adds
// ~15 %. Dispatch overhead is 2·tensors + 1 dispatches × ~50 µs.

const WG: u32 = 64u;

struct SumParams { n: u32, first: u32, block: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> sp: SumParams;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

var<workgroup> lanes: array<f32, WG>;

// Sum of `value` over the workgroup; every lane gets the total. Call from uniform control flow.
fn workgroup_sum(value: f32, lane: u32) -> f32 {
  lanes[lane] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) { lanes[lane] += lanes[lane + stride]; }
    workgroupBarrier();
  }
  let total = lanes[0];
  workgroupBarrier();
  return total;
}

// The sums of squares stream every gradient once (30 MB for the reference decoder: more than the
// caches hold), so the access pattern decides: a workgroup is one llvmpipe SIMD vector of 8 lanes walking one
// contiguous block, 128 bytes per vec4 load, and each lane writes its own partial, with no barrier
// (a barrier makes llvmpipe run the workgroup as coroutines). Interleaved A/B over the reference
// decoder's 51 tensors: 64-lane workgroups with a barrier tree 11–19 ms, 16 lanes striding by 16
// 9 ms, this layout 5.6–8 ms.
const SUM_WG: u32 = 8u;

@compute @workgroup_size(SUM_WG)
fn adamw_sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let start = wid.x * sp.block;
  let end = min(start + sp.block, sp.n);
  var squares = 0.0;
  for (var i = start + lid.x; i < end; i += SUM_WG) {
    let g = grad[i];
    squares += g * g;
  }
  partials[sp.first + wid.x * SUM_WG + lid.x] = squares;
}

@group(0) @binding(1) var<storage, read> grad4_sum: array<vec4<f32>>;

// Tensors whose size is a multiple of 4: `sp.n` and `sp.block` count vec4s.
@compute @workgroup_size(SUM_WG)
fn adamw_sumsq_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let start = wid.x * sp.block;
  let end = min(start + sp.block, sp.n);
  var squares = vec4<f32>();
  for (var i = start + lid.x; i < end; i += SUM_WG) {
    let g = grad4_sum[i];
    squares += g * g;
  }
  partials[sp.first + wid.x * SUM_WG + lid.x] = dot(squares, vec4(1.0));
}

struct NormParams { count: u32, max_norm: f32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<uniform> np: NormParams;
@group(0) @binding(1) var<storage, read_write> all_partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> grad_norm: array<f32>;

@compute @workgroup_size(WG)
fn adamw_norm(@builtin(local_invocation_id) lid: vec3<u32>) {
  var sum = 0.0;
  for (var i = lid.x; i < np.count; i += WG) { sum += all_partials[i]; }
  let norm = sqrt(workgroup_sum(sum, lid.x));
  if (lid.x == 0u) {
    grad_norm[0] = norm;
    var coef = 1.0;
    if (np.max_norm > 0.0) { coef = min(1.0, np.max_norm / (norm + 1e-6)); }
    all_partials[np.count] = coef;
  }
}

struct UpdateParams {
  n: u32,
  row_stride: u32,
  coef_at: u32,
  texels_per_row: u32, // adamw_update_packed only
  decay: f32, // 1 − lr·weight_decay
  beta1: f32,
  one_minus_beta1: f32, // rounded from f64 like PyTorch's Python-float scalars
  beta2: f32,
  one_minus_beta2: f32,
  eps: f32,
  step_size: f32, // lr / (1 − beta1^step)
  bias_correction2_sqrt: f32, // sqrt(1 − beta2^step)
}

@group(0) @binding(0) var<uniform> up: UpdateParams;

struct Moments { param: vec4<f32>, m: vec4<f32>, v: vec4<f32> }

// One AdamW update of 4 parameters, in torch.optim.AdamW's operation order (single-tensor path).
fn adamw(param: vec4<f32>, grad: vec4<f32>, m: vec4<f32>, v: vec4<f32>, coef: f32) -> Moments {
  let g = grad * coef;
  let decayed = param * up.decay;
  let m1 = m + up.one_minus_beta1 * (g - m);
  let v1 = v * up.beta2 + up.one_minus_beta2 * g * g;
  let denom = sqrt(v1) / up.bias_correction2_sqrt + up.eps;
  return Moments(decayed - up.step_size * (m1 / denom), m1, v1);
}

@group(0) @binding(1) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> coef: array<f32>;

// Tensors whose size is a multiple of 4 (all of a transformer's): a vec4 load costs ~2.2× an f32
// load on llvmpipe (compute-notes §2.1) for 4× the data. `up.n` counts vec4s here.
@compute @workgroup_size(WG)
fn adamw_update_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * up.row_stride;
  if (i >= up.n) { return; }
  let next = adamw(param4[i], grad4[i], m4[i], v4[i], coef[up.coef_at]);
  param4[i] = next.param;
  m4[i] = next.m;
  v4[i] = next.v;
}

@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad_u: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(WG)
fn adamw_update(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * up.row_stride;
  if (i >= up.n) { return; }
  let next = adamw(vec4<f32>(param[i]), vec4<f32>(grad_u[i]), vec4<f32>(m[i]), vec4<f32>(v[i]), coef[up.coef_at]);
  param[i] = next.param.x;
  m[i] = next.m.x;
  v[i] = next.v.x;
}

// #include bf16

@group(0) @binding(6) var row_pack: texture_storage_2d<rgba32uint, write>;

// Weights whose rows are whole bf16 texels (cols a multiple of 8; `up.texels_per_row` = cols / 8,
// `up.n` counts texels): each lane updates 8 consecutive values and writes them, rounded, as one
// texel of the weight's row pack, so the next step's products read the updated weight without a
// packing pass of their own. Writing the transposed pack too (a lane per 8 × 8 block, 8 row and 8
// column texels) was slower than this plus separate transposing packs: 37.5 vs 32.5 ms over the
// reference decoder's weights, and 0.28 s of cold JIT.
@compute @workgroup_size(WG)
fn adamw_update_packed(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x + gid.y * up.row_stride;
  if (t >= up.n) { return; }
  let c = coef[up.coef_at];
  let low = adamw(param4[2u * t], grad4[2u * t], m4[2u * t], v4[2u * t], c);
  let high = adamw(param4[2u * t + 1u], grad4[2u * t + 1u], m4[2u * t + 1u], v4[2u * t + 1u], c);
  param4[2u * t] = low.param;
  m4[2u * t] = low.m;
  v4[2u * t] = low.v;
  param4[2u * t + 1u] = high.param;
  m4[2u * t + 1u] = high.m;
  v4[2u * t + 1u] = high.v;
  textureStore(row_pack, vec2(t % up.texels_per_row, t / up.texels_per_row), bf16_texel(low.param, high.param));
}
