// Embedding gather out[t,:] = scale·table[ids[t],:] over one vocab chunk of a row-chunked table,
// and its deterministic scatter-add gradient dTable[row,:] += scale·Σ_{t: ids[t]=row} dOut[t,:].
//
// Napkin math (Qwen2.5-0.5B, T = 4096 tokens, d = 896): the gather moves T·d·4 B = 14.7 MB read
// + 14.7 MB written and does no arithmetic → memory bound; at the 2–5 GB/s llvmpipe reaches for
// element-wise kernels that is ~6–15 ms. The table is split into ≤ 128 MiB chunks (5 for Qwen), so
// the launcher dispatches once per chunk; tokens whose id is in another chunk cost one i32 load per
// column workgroup, i.e. T·⌈d/WG⌉ loads per chunk ≈ 57 k per chunk: negligible.
// The gradient reads dOut once through a CPU-built CSR (unique id → its positions, ascending), so
// every table row is summed by one invocation per column in a fixed order: deterministic, no atomics,
// ~T·d loads + U·d read-modify-writes (U unique ids ≤ T).
// Layout: x = columns (llvmpipe vectorises along x), y = tokens / unique ids (strided loop, because
// at most 65535 workgroups fit one dimension).

override WG: u32 = 64;

struct GatherParams { tokens: u32, cols: u32, start: i32, rows: i32, scale: f32 }

@group(0) @binding(0) var<uniform> gp: GatherParams;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
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
    let row = ids[t] - gp.start;
    if (row < 0 || row >= gp.rows) { continue; }
    out[t * gp.cols + col] = gp.scale * table[u32(row) * gp.cols + col];
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
    let at = u32(unique_rows[k]) * sp.cols + col;
    dtable[at] += sp.scale * sum;
  }
}
