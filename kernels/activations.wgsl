// Gated activations out = act(gate)·up with act = SiLU (SwiGLU, GELU = false) or tanh-approximated
// GELU (GeGLU, HF `gelu_pytorch_tanh`, GELU = true), their backward
//   dgate += dout·up·act'(gate),  dup += dout·act(gate),
// and scaling y = s·x with dx += s·dy.
//
// Napkin math (T = 4096 × ff = 4864, Qwen2.5-0.5B MLP): 20 M elements; forward 2 loads + 1 store,
// backward 3 loads + 2 read-modify-writes, ~20–30 FLOP incl. one exp or tanh per element → ~240 MB
// (forward) / ~560 MB (backward) of per-lane traffic: memory bound at 2–5 GB/s on llvmpipe, ~50–150 ms
// (forward) per layer at this size; the reference decoder's (1024 × 1024) is ~4 ms.
// Layout: one invocation per element, 2-D grid past 65535 workgroups.

struct Params { n: u32, scale: f32, row_stride: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 64;
override GELU: bool = false;

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_CUBIC: f32 = 0.044715;

struct Activation { value: vec4<f32>, slope: vec4<f32> }

// act(g) and act'(g) for 4 gates at once (the scalar kernels splat one gate).
fn activation(g: vec4<f32>) -> Activation {
  if (GELU) {
    // tanh saturates to ±1 in f32 beyond |u| = 9.1; the clamp keeps llvmpipe's exp-based tanh finite.
    let u = clamp(SQRT_2_OVER_PI * (g + GELU_CUBIC * g * g * g), vec4<f32>(-10.0), vec4<f32>(10.0));
    let t = tanh(u);
    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * g * g);
    return Activation(0.5 * g * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * g * (1.0 - t * t) * du);
  }
  let s = 1.0 / (1.0 + exp(-g));
  return Activation(g * s, s * (1.0 + g * (1.0 - s)));
}

@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn glu_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  out[i] = activation(vec4<f32>(gate[i])).value.x * up[i];
}

@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read> gate_b: array<f32>;
@group(0) @binding(3) var<storage, read> up_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> dup: array<f32>;

@compute @workgroup_size(WG)
fn glu_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  let a = activation(vec4<f32>(gate_b[i]));
  let g = dout[i];
  dgate[i] += g * up_b[i] * a.slope.x;
  dup[i] += g * a.value.x;
}

// vec4 variants for sizes divisible by 4 (every MLP): a vec4 load costs ~2.2× an f32 load on
// llvmpipe for 4× the data (compute-notes §2.1). `p.n` counts vec4s here.
@group(0) @binding(1) var<storage, read> gate4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> up4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn glu_forward_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  out4[i] = activation(gate4[i]).value * up4[i];
}

@group(0) @binding(1) var<storage, read> dout4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> gate_b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> up_b4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dgate4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dup4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn glu_backward_vec4(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  let a = activation(gate_b4[i]);
  let g = dout4[i];
  dgate4[i] += g * up_b4[i] * a.slope;
  dup4[i] += g * a.value;
}

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn scale_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  y[i] = p.scale * x[i];
}

// Backward: dx += s·dy (bindings: dy, dx).
@compute @workgroup_size(WG)
fn scale_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  y[i] += p.scale * x[i];
}

// The GLU backward of a [rows × cols] matrix (cols a multiple of 4) that also writes the bf16 row
// packs of dgate and dup for the gate/up layers' backward products with frozen weights (LoRA),
// from the values it holds in registers: a separate pack would load each value again (~1.7 ns
// per element, all per-lane memory ops, compute-notes §2.1). It overwrites dgate and dup (their
// first writer: no clear and no read of them). Texel layout as matmul_pack.wgsl's
// matmul_pack_bf16_rows: texel (q, r) holds columns 8q … 8q+7 of row r, zeros past the matrix.
// Grid: x by texel q (lanes along a row), y by row. A variant for trainable weights that also
// wrote the transposed packs (an 8 × 8 block per lane, as matmul_pack_bf16_both) measured 27 ms
// over the reference decoder's 4 layers against 20 ms for this backward plus the both-ways packs:
// the 8-row blocks alone, without the transposed stores, took 22 ms against 10.7 ms here.
// #include bf16

struct PackParams { rows: u32, quads: u32, width: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> pk: PackParams;
@group(0) @binding(6) var dgate_rows: texture_storage_2d<rgba32uint, write>;
@group(0) @binding(7) var dup_rows: texture_storage_2d<rgba32uint, write>;

struct GluQuads { dgate: vec4<f32>, dup: vec4<f32> }

// Columns 4u … 4u+3 of row `row` (< rows): dgate and dup stored, and returned (zeros past the
// matrix).
fn glu_quads(row: u32, u: u32) -> GluQuads {
  let i = row * pk.quads + u;
  let a = activation(gate_b4[i]);
  let g = dout4[i];
  let q = GluQuads(g * up_b4[i] * a.slope, g * a.value);
  if (u < pk.quads) {
    dgate4[i] = q.dgate;
    dup4[i] = q.dup;
    return q;
  }
  return GluQuads(vec4<f32>(), vec4<f32>());
}

@compute @workgroup_size(16, 1, 1)
fn glu_backward_pack_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  let row = gid.y;
  if (q >= pk.width || row >= pk.rows) { return; }
  let a = glu_quads(row, 2u * q);
  let b = glu_quads(row, 2u * q + 1u);
  textureStore(dgate_rows, gid.xy, bf16_texel(a.dgate, b.dgate));
  textureStore(dup_rows, gid.xy, bf16_texel(a.dup, b.dup));
}

// The GLU forward with the bf16 row pack of its output (the down layer's input, when its weight is
// frozen: LoRA), written from the values in registers as glu_backward_pack_rows writes its packs.
@group(0) @binding(4) var out_rows: texture_storage_2d<rgba32uint, write>;

// Columns 4u … 4u+3 of row `row` (< rows): stored, and returned (zeros past the matrix).
fn glu_out_quad(row: u32, u: u32) -> vec4<f32> {
  let i = row * pk.quads + u;
  let v = activation(gate4[i]).value * up4[i];
  if (u < pk.quads) {
    out4[i] = v;
    return v;
  }
  return vec4<f32>();
}

@compute @workgroup_size(16, 1, 1)
fn glu_forward_pack_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  let row = gid.y;
  if (q >= pk.width || row >= pk.rows) { return; }
  textureStore(out_rows, gid.xy, bf16_texel(glu_out_quad(row, 2u * q), glu_out_quad(row, 2u * q + 1u)));
}
