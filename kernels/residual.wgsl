// Residual add with scale: y = a + s·b, and its backward da += dy, db += s·dy.
// Napkin math: 3 loads/stores of 4 B per element, no reuse → memory bound; on lavapipe
// ~2–5 GB/s, so a 1024×256 residual (1 MiB per operand) costs ~1 ms.
// Dispatch: 1-D over elements, 2-D grid when more than 65535 workgroups are needed.

struct Params { n: u32, scale: f32, row_stride: u32, _pad: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

override WG: u32 = 64;

@compute @workgroup_size(WG)
fn residual_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  y[i] = a[i] + p.scale * b[i];
}

// Backward: accumulate into existing gradients (gradient accumulation is free).
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> da: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(WG)
fn residual_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * p.row_stride;
  if (i >= p.n) { return; }
  let g = dy[i];
  da[i] += g;
  db[i] += p.scale * g;
}
