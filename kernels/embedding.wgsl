// Embedding gather out[t,:] = scale·table[ids[t],:] over one vocab chunk of a row-chunked table,
// and its deterministic scatter-add gradient dTable[row,:] += scale·Σ_{t: ids[t]=row} dOut[t,:].
//
// Napkin math (Qwen2.5-0.5B, T = 4096 tokens, d = 896): the gather moves T·d·4 B = 14.7 MB read
// + 14.7 MB written and does no arithmetic → memory bound; at the 2–5 GB/s llvmpipe reaches for
// element-wise kernels that is ~6–15 ms. The table is split into ≤ 128 MiB chunks (5 for Qwen), so
// the launcher dispatches once per chunk; tokens whose id is in another chunk cost one i32 load per
// column workgroup, i.e. T·⌈d/WG⌉ loads per chunk: negligible.
// The gradient reads dOut once through a CPU-built CSR (unique id → its positions, ascending), so
// every table row is summed by one invocation per column in a fixed order: deterministic, no atomics,
// ~T·d loads + U·d read-modify-writes (U unique ids ≤ T).
// Layout: x = columns (llvmpipe vectorises along x; vec4 kernels when d divides by 4), y = a few
// hundred workgroups striding over tokens / unique ids: one workgroup per token would spend more on
// workgroup start-up than on the copy (that layout, without vec4, was 4× slower at the Qwen size).

override WG: u32 = 64;

struct GatherParams { tokens: u32, cols: u32, start: i32, rows: i32, scale: f32 }

@group(0) @binding(0) var<uniform> gp: GatherParams;
@group(0) @binding(1) var<storage, read> ids: array<i32>;

// Chunk-local row of token t, or −1 when its id lies in another chunk.
fn local_row(t: u32) -> i32 {
  let row = ids[t] - gp.start;
  return select(-1, row, row >= 0 && row < gp.rows);
}

@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn embedding_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let col = wid.x * WG + lid.x;
  if (col >= gp.cols) { return; }
  for (var t = wid.y; t < gp.tokens; t += groups.y) {
    let row = local_row(t);
    if (row >= 0) { out[t * gp.cols + col] = gp.scale * table[u32(row) * gp.cols + col]; }
  }
}

// vec4 variant: `gp.cols` counts vec4s.
@group(0) @binding(2) var<storage, read> table4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn embedding_forward_vec4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let col = wid.x * WG + lid.x;
  if (col >= gp.cols) { return; }
  for (var t = wid.y; t < gp.tokens; t += groups.y) {
    let row = local_row(t);
    if (row >= 0) { out4[t * gp.cols + col] = gp.scale * table4[u32(row) * gp.cols + col]; }
  }
}

struct ScatterParams { count: u32, cols: u32, first: u32, scale: f32 }

@group(0) @binding(0) var<uniform> sp: ScatterParams;
// Chunk-local table row of each unique id, CSR offsets into `positions` (length U + 1), and the
// token positions of each unique id in ascending order.
@group(0) @binding(1) var<storage, read> unique_rows: array<i32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read_write> dtable: array<f32>;

@compute @workgroup_size(WG)
fn embedding_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let col = wid.x * WG + lid.x;
  if (col >= sp.cols) { return; }
  for (var u = wid.y; u < sp.count; u += groups.y) {
    let k = sp.first + u;
    var sum = 0.0;
    for (var i = offsets[k]; i < offsets[k + 1u]; i++) {
      sum += dout[positions[i] * sp.cols + col];
    }
    dtable[u32(unique_rows[k]) * sp.cols + col] += sp.scale * sum;
  }
}

// vec4 variant: `sp.cols` counts vec4s.
@group(0) @binding(4) var<storage, read> dout4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dtable4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn embedding_backward_vec4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let col = wid.x * WG + lid.x;
  if (col >= sp.cols) { return; }
  for (var u = wid.y; u < sp.count; u += groups.y) {
    let k = sp.first + u;
    var sum = vec4<f32>(0.0);
    for (var i = offsets[k]; i < offsets[k + 1u]; i++) {
      sum += dout4[positions[i] * sp.cols + col];
    }
    dtable4[u32(unique_rows[k]) * sp.cols + col] += sp.scale * sum;
  }
}
