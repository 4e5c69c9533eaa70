// Causal self-attention with GQA, HF sliding window and Gemma-2 logit soft-capping, flash-style:
// the forward keeps an online softmax per query row and saves lse; the backward recomputes the
// probabilities from lse instead of storing T×T per head.
//
// Layouts (row-major, vec4 along head_dim, so head_dim % 4 == 0):
//   q, out, dout, dq: [B·Tq × H × D]; k, v, dk, dv: [B × Tmax × KVH × D] (a KV cache in decoding);
//   lse, delta: [B × H × Tq]; q_offset, kv_len: [B] (absolute position of q row 0; valid keys).
// Key j is visible from a query at absolute position pos when j ≤ pos, j < kv_len and, with a
// window w > 0, j > pos − w. Scores: s = scale·q·k, then s = cap·tanh(s/cap) when cap > 0.
//
// Napkin math (reference decoder: B 4, T 256, H 4, D 64). Work per layer: QKᵀ and PV are
// 2·B·H·T²/2·D·2 ≈ 67 MFLOP forward, ≈ 2.5× that backward — little for ~85 GFLOP/s of register
// FMA. What costs is memory traffic: a storage-buffer vec4 load is ~27–41 ns per 8 lanes on
// llvmpipe, and a dynamically indexed private array lives in scratch memory at about the same
// price (and, once NIR unrolls it, JITs for minutes). So the kernels hold their tiles in named
// mat4x4 / vec4 values only, the head dimension streams through in vec4 steps, and every loaded
// vec4 feeds 4 rows × 4 keys:
// * forward / dq: one invocation = 4 query rows (lanes along rows), keys in blocks of 16 (four
//   mat4x4 "quads" of keys). Per block and vec4 of D: 4 q loads + 16 k (+ 16 v) loads for 64
//   row-keys, plus a read-modify-write of the 4 output (dq) rows — accumulating straight into
//   the output keeps registers small. ≈ 0.7 loads per row-key per vec4 → ~B·H·T²/2·(1.25 for the
//   block diagonal)·D/4·0.7·35 ns / 8 lanes ≈ 15 ms on one core forward, ~2× that for dq.
// * dk/dv: one invocation = 4 keys (lanes along keys), query rows in blocks of 16, over every
//   query head of the KV group in a fixed order: each gradient element is summed by exactly one
//   invocation (deterministic, no atomics).
// The online softmax rescales once per 16-key block. No shared memory, no barriers.
// Measured here (lavapipe, host heavily shared, process CPU time per call): forward ~50 ms,
// dq ~50–70 ms, dk/dv ~75–95 ms of core time; JIT 0.2–0.45 s per kernel. The previous design
// (private arrays for a D ≤ 256 register tile) took 110 / 120 / 210 ms wall (similar load) at
// R = 1, and 10–140 s of JIT at R = 4. Tried and dropped: 8 keys per dk/dv invocation (no measurable gain, slower JIT).
// Pitfall: naga does not re-zero a `var` declared without initialiser inside a loop body on each
// iteration; every accumulator here is initialised explicitly.

struct Params {
  batch: u32,
  tq: u32,
  tmax: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  scale: f32,
  softcap: f32,
  window: u32,
  // Element stride of one grid row for kv_cache_write's 2-D grid.
  grid_stride: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Rows (forward, dq) or keys (dk/dv) per invocation, and keys (query rows) per block: 4 quads.
const RQ: u32 = 4u;
const KB: u32 = 16u;
const NEG: f32 = -3.0e38;

override WG: u32 = 16u;
override HD4: u32 = 16u;

// Scaled and optionally soft-capped scores of raw dot products.
fn capped4(raw: vec4<f32>) -> vec4<f32> {
  let s = raw * p.scale;
  if (p.softcap > 0.0) {
    return tanh(s / p.softcap) * p.softcap;
  }
  return s;
}

// d(score)/d(raw dot product), given the scores.
fn slope4(s: vec4<f32>) -> vec4<f32> {
  if (p.softcap > 0.0) {
    let t = s / p.softcap;
    return p.scale * (1.0 - t * t);
  }
  return vec4<f32>(p.scale);
}

// Whether keys j .. j+3 are visible from absolute position pos (keys ≥ j_end are padding).
fn key_mask(pos: i32, j: i32, j_end: i32) -> vec4<bool> {
  let keys = vec4<i32>(j) + vec4<i32>(0, 1, 2, 3);
  var ok = (keys <= vec4<i32>(pos)) & (keys < vec4<i32>(j_end));
  if (p.window > 0u) {
    ok = ok & (keys > vec4<i32>(pos - i32(p.window)));
  }
  return ok;
}

// Whether key j (< len) is visible from query rows i .. i+3 (rows ≥ i_end are padding).
fn query_mask(j: i32, i: i32, i_end: i32, off: i32, len: i32) -> vec4<bool> {
  let rows = vec4<i32>(i) + vec4<i32>(0, 1, 2, 3);
  let pos = rows + vec4<i32>(off);
  var ok = (vec4<i32>(j) <= pos) & (rows < vec4<i32>(i_end)) & vec4<bool>(j < len);
  if (p.window > 0u) {
    ok = ok & (vec4<i32>(j) > pos - vec4<i32>(i32(p.window)));
  }
  return ok;
}

fn max4(v: vec4<f32>) -> f32 {
  return max(max(v.x, v.y), max(v.z, v.w));
}

fn sum4(v: vec4<f32>) -> f32 {
  return v.x + v.y + v.z + v.w;
}

// Dot products of one vec4 slice with 16 others (4 quads, one per matrix column): a 1×16 tile.
fn dots16(x: vec4<f32>, m0: mat4x4<f32>, m1: mat4x4<f32>, m2: mat4x4<f32>, m3: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(x * m0, x * m1, x * m2, x * m3);
}

// Σ over 16 columns of column·weight: the vec4 slice of a weighted sum of 16 rows.
fn mix16(m0: mat4x4<f32>, m1: mat4x4<f32>, m2: mat4x4<f32>, m3: mat4x4<f32>, w: mat4x4<f32>) -> vec4<f32> {
  return m0 * w[0] + m1 * w[1] + m2 * w[2] + m3 * w[3];
}

// Keys [x, y) that any of the query rows block .. block + WG·RQ − 1 can see. One range for the
// whole workgroup keeps the key loop uniform; per-row masks do the rest.
fn key_range(block: u32, off: i32, len: i32) -> vec2<i32> {
  let last = min(block + WG * RQ, p.tq) - 1u;
  var j_begin = 0;
  if (p.window > 0u) {
    j_begin = max(0, off + i32(block) - i32(p.window) + 1);
  }
  return vec2<i32>(j_begin, min(off + i32(last) + 1, len));
}

fn q_index(b: u32, i: u32, h: u32) -> u32 {
  return ((b * p.tq + i) * p.heads + h) * HD4;
}

fn kv_index(b: u32, j: u32, kvh: u32) -> u32 {
  return ((b * p.tmax + j) * p.kv_heads + kvh) * HD4;
}

// Start of the vec4 rows of query rows i .. i+3 (clamped to the last row) of head h.
fn q_rows(b: u32, i: u32, h: u32) -> vec4<u32> {
  let last = p.tq - 1u;
  return vec4<u32>(q_index(b, min(i, last), h), q_index(b, min(i + 1u, last), h),
                   q_index(b, min(i + 2u, last), h), q_index(b, min(i + 3u, last), h));
}

// Per-row softmax state of 4 rows, one component per row.
struct RowStats {
  m: vec4<f32>,
  l: vec4<f32>,
}

// Prologue shared by the row-tiled kernels: 4 query rows per invocation.
struct RowTile {
  b: u32,
  h: u32,
  kvh: u32,
  rows: vec4<u32>,
  valid: vec4<bool>,
  pos: vec4<i32>,
  base: vec4<u32>,
  keys: vec2<i32>,
  kv_stride: u32,
}

fn row_tile(lid: vec3<u32>, wid: vec3<u32>) -> RowTile {
  let b = wid.z;
  let h = wid.y;
  let block = wid.x * WG * RQ;
  let rows = vec4<u32>(block + lid.x) + vec4<u32>(0u, WG, 2u * WG, 3u * WG);
  let off = q_offset[b];
  let last = p.tq - 1u;
  return RowTile(
    b,
    h,
    h / (p.heads / p.kv_heads),
    rows,
    rows < vec4<u32>(p.tq),
    vec4<i32>(off) + vec4<i32>(rows),
    vec4<u32>(q_index(b, min(rows.x, last), h), q_index(b, min(rows.y, last), h),
              q_index(b, min(rows.z, last), h), q_index(b, min(rows.w, last), h)),
    key_range(block, off, kv_len[b]),
    p.kv_heads * HD4,
  );
}

fn lse_row(t: RowTile, r: u32) -> u32 {
  return (t.b * p.heads + t.h) * p.tq + min(t.rows[r], p.tq - 1u);
}

@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> q_offset: array<i32>;
@group(0) @binding(5) var<storage, read> kv_len: array<i32>;

// Slice c of 16 consecutive keys from key block base `kb` (rows past `last` repeat it).
fn k_quads(kb: u32, stride: u32, last: u32, c: u32, quad: u32) -> mat4x4<f32> {
  let j = quad * 4u;
  return mat4x4<f32>(k[kb + min(j, last) * stride + c], k[kb + min(j + 1u, last) * stride + c],
                     k[kb + min(j + 2u, last) * stride + c], k[kb + min(j + 3u, last) * stride + c]);
}

fn v_quads(kb: u32, stride: u32, last: u32, c: u32, quad: u32) -> mat4x4<f32> {
  let j = quad * 4u;
  return mat4x4<f32>(v[kb + min(j, last) * stride + c], v[kb + min(j + 1u, last) * stride + c],
                     v[kb + min(j + 2u, last) * stride + c], v[kb + min(j + 3u, last) * stride + c]);
}

// Raw dot products of the tile's 4 rows with the 16 keys of a block.
struct Tile4 {
  r0: mat4x4<f32>,
  r1: mat4x4<f32>,
  r2: mat4x4<f32>,
  r3: mat4x4<f32>,
}

fn qk_tile(t: RowTile, kb: u32, last: u32) -> Tile4 {
  var s = Tile4();
  for (var c = 0u; c < HD4; c++) {
    let k0 = k_quads(kb, t.kv_stride, last, c, 0u);
    let k1 = k_quads(kb, t.kv_stride, last, c, 1u);
    let k2 = k_quads(kb, t.kv_stride, last, c, 2u);
    let k3 = k_quads(kb, t.kv_stride, last, c, 3u);
    s.r0 += dots16(q[t.base.x + c], k0, k1, k2, k3);
    s.r1 += dots16(q[t.base.y + c], k0, k1, k2, k3);
    s.r2 += dots16(q[t.base.z + c], k0, k1, k2, k3);
    s.r3 += dots16(q[t.base.w + c], k0, k1, k2, k3);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Forward. The output rows double as the (unnormalised) accumulators.

@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;

struct Online {
  p: mat4x4<f32>,
  m: f32,
  l: f32,
  alpha: f32,
}

// One 16-key block of the online softmax of one row: probabilities against the new max.
fn online(s: mat4x4<f32>, pos: i32, j0: i32, j_end: i32, m: f32, l: f32) -> Online {
  let c = mat4x4<f32>(
    select(vec4<f32>(NEG), capped4(s[0]), key_mask(pos, j0, j_end)),
    select(vec4<f32>(NEG), capped4(s[1]), key_mask(pos, j0 + 4, j_end)),
    select(vec4<f32>(NEG), capped4(s[2]), key_mask(pos, j0 + 8, j_end)),
    select(vec4<f32>(NEG), capped4(s[3]), key_mask(pos, j0 + 12, j_end)),
  );
  let mx = max(m, max(max(max4(c[0]), max4(c[1])), max(max4(c[2]), max4(c[3]))));
  let e = mat4x4<f32>(
    select(vec4<f32>(0.0), exp(c[0] - mx), c[0] > vec4<f32>(NEG)),
    select(vec4<f32>(0.0), exp(c[1] - mx), c[1] > vec4<f32>(NEG)),
    select(vec4<f32>(0.0), exp(c[2] - mx), c[2] > vec4<f32>(NEG)),
    select(vec4<f32>(0.0), exp(c[3] - mx), c[3] > vec4<f32>(NEG)),
  );
  let alpha = exp(m - mx);
  return Online(e, mx, l * alpha + sum4(e[0] + e[1] + e[2] + e[3]), alpha);
}

fn accumulate_out(valid: bool, at: u32, alpha: f32, add: vec4<f32>) {
  if (valid) {
    out[at] = out[at] * alpha + add;
  }
}

@compute @workgroup_size(WG)
fn attention_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = row_tile(lid, wid);
  for (var c = 0u; c < HD4; c++) {
    for (var r = 0u; r < RQ; r++) {
      if (t.valid[r]) {
        out[t.base[r] + c] = vec4<f32>(0.0);
      }
    }
  }
  var st = RowStats(vec4<f32>(NEG), vec4<f32>(0.0));
  for (var j0 = t.keys.x; j0 < t.keys.y; j0 += i32(KB)) {
    let kb = kv_index(t.b, u32(j0), t.kvh);
    let last = u32(t.keys.y - 1 - j0);
    let s = qk_tile(t, kb, last);
    let o0 = online(s.r0, t.pos.x, j0, t.keys.y, st.m.x, st.l.x);
    let o1 = online(s.r1, t.pos.y, j0, t.keys.y, st.m.y, st.l.y);
    let o2 = online(s.r2, t.pos.z, j0, t.keys.y, st.m.z, st.l.z);
    let o3 = online(s.r3, t.pos.w, j0, t.keys.y, st.m.w, st.l.w);
    st = RowStats(vec4<f32>(o0.m, o1.m, o2.m, o3.m), vec4<f32>(o0.l, o1.l, o2.l, o3.l));
    for (var c = 0u; c < HD4; c++) {
      let v0 = v_quads(kb, t.kv_stride, last, c, 0u);
      let v1 = v_quads(kb, t.kv_stride, last, c, 1u);
      let v2 = v_quads(kb, t.kv_stride, last, c, 2u);
      let v3 = v_quads(kb, t.kv_stride, last, c, 3u);
      accumulate_out(t.valid.x, t.base.x + c, o0.alpha, mix16(v0, v1, v2, v3, o0.p));
      accumulate_out(t.valid.y, t.base.y + c, o1.alpha, mix16(v0, v1, v2, v3, o1.p));
      accumulate_out(t.valid.z, t.base.z + c, o2.alpha, mix16(v0, v1, v2, v3, o2.p));
      accumulate_out(t.valid.w, t.base.w + c, o3.alpha, mix16(v0, v1, v2, v3, o3.p));
    }
  }
  // A row that sees no key (only possible with kv_len ≤ pos − window) outputs zeros.
  let inv = select(vec4<f32>(0.0), 1.0 / st.l, st.l > vec4<f32>(0.0));
  for (var r = 0u; r < RQ; r++) {
    if (!t.valid[r]) {
      continue;
    }
    for (var c = 0u; c < HD4; c++) {
      out[t.base[r] + c] *= inv[r];
    }
    lse[lse_row(t, r)] = select(NEG, st.m[r] + log(st.l[r]), st.l[r] > 0.0);
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, kernel 1: dq (+=) and delta_i = Σ_d dout·out (read by kernel 2). Same tiling as the
// forward; no online softmax is needed since P = exp(s − lse). Per block: one pass over D for
// the scores and dP = dout·v, one for dq += dS·K.

@group(0) @binding(6) var<storage, read> out_in: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> lse_in: array<f32>;
@group(0) @binding(8) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;
@group(0) @binding(10) var<storage, read_write> dq: array<vec4<f32>>;

// dP = dout·v of the tile's 4 rows with the 16 keys of a block.
fn dov_tile(t: RowTile, kb: u32, last: u32) -> Tile4 {
  var dp = Tile4();
  for (var c = 0u; c < HD4; c++) {
    let v0 = v_quads(kb, t.kv_stride, last, c, 0u);
    let v1 = v_quads(kb, t.kv_stride, last, c, 1u);
    let v2 = v_quads(kb, t.kv_stride, last, c, 2u);
    let v3 = v_quads(kb, t.kv_stride, last, c, 3u);
    dp.r0 += dots16(dout[t.base.x + c], v0, v1, v2, v3);
    dp.r1 += dots16(dout[t.base.y + c], v0, v1, v2, v3);
    dp.r2 += dots16(dout[t.base.z + c], v0, v1, v2, v3);
    dp.r3 += dots16(dout[t.base.w + c], v0, v1, v2, v3);
  }
  return dp;
}

// dS·d(score)/d(raw) of 4 visible keys; 0 where masked.
fn dscore4(s: vec4<f32>, dp: vec4<f32>, ok: vec4<bool>, lse_r: vec4<f32>, delta_r: vec4<f32>) -> vec4<f32> {
  let sc = capped4(s);
  return select(vec4<f32>(0.0), exp(sc - lse_r) * (dp - delta_r) * slope4(sc), ok);
}

fn dscores_row(s: mat4x4<f32>, dp: mat4x4<f32>, pos: i32, j0: i32, j_end: i32, l: f32, d: f32) -> mat4x4<f32> {
  return mat4x4<f32>(
    dscore4(s[0], dp[0], key_mask(pos, j0, j_end), vec4<f32>(l), vec4<f32>(d)),
    dscore4(s[1], dp[1], key_mask(pos, j0 + 4, j_end), vec4<f32>(l), vec4<f32>(d)),
    dscore4(s[2], dp[2], key_mask(pos, j0 + 8, j_end), vec4<f32>(l), vec4<f32>(d)),
    dscore4(s[3], dp[3], key_mask(pos, j0 + 12, j_end), vec4<f32>(l), vec4<f32>(d)),
  );
}

fn accumulate_dq(valid: bool, at: u32, add: vec4<f32>) {
  if (valid) {
    dq[at] += add;
  }
}

@compute @workgroup_size(WG)
fn attention_backward_dq(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = row_tile(lid, wid);
  var d4 = mat4x4<f32>();
  for (var c = 0u; c < HD4; c++) {
    d4[0] += dout[t.base.x + c] * out_in[t.base.x + c];
    d4[1] += dout[t.base.y + c] * out_in[t.base.y + c];
    d4[2] += dout[t.base.z + c] * out_in[t.base.z + c];
    d4[3] += dout[t.base.w + c] * out_in[t.base.w + c];
  }
  let dl = vec4<f32>(sum4(d4[0]), sum4(d4[1]), sum4(d4[2]), sum4(d4[3]));
  var rl = vec4<f32>(0.0);
  for (var r = 0u; r < RQ; r++) {
    rl[r] = lse_in[lse_row(t, r)];
    if (t.valid[r]) {
      delta[lse_row(t, r)] = dl[r];
    }
  }
  for (var j0 = t.keys.x; j0 < t.keys.y; j0 += i32(KB)) {
    let kb = kv_index(t.b, u32(j0), t.kvh);
    let last = u32(t.keys.y - 1 - j0);
    let s = qk_tile(t, kb, last);
    let dp = dov_tile(t, kb, last);
    let g0 = dscores_row(s.r0, dp.r0, t.pos.x, j0, t.keys.y, rl.x, dl.x);
    let g1 = dscores_row(s.r1, dp.r1, t.pos.y, j0, t.keys.y, rl.y, dl.y);
    let g2 = dscores_row(s.r2, dp.r2, t.pos.z, j0, t.keys.y, rl.z, dl.z);
    let g3 = dscores_row(s.r3, dp.r3, t.pos.w, j0, t.keys.y, rl.w, dl.w);
    for (var c = 0u; c < HD4; c++) {
      let k0 = k_quads(kb, t.kv_stride, last, c, 0u);
      let k1 = k_quads(kb, t.kv_stride, last, c, 1u);
      let k2 = k_quads(kb, t.kv_stride, last, c, 2u);
      let k3 = k_quads(kb, t.kv_stride, last, c, 3u);
      accumulate_dq(t.valid.x, t.base.x + c, mix16(k0, k1, k2, k3, g0));
      accumulate_dq(t.valid.y, t.base.y + c, mix16(k0, k1, k2, k3, g1));
      accumulate_dq(t.valid.z, t.base.z + c, mix16(k0, k1, k2, k3, g2));
      accumulate_dq(t.valid.w, t.base.w + c, mix16(k0, k1, k2, k3, g3));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, kernel 2: dk and dv (+=). Lanes run along keys, 4 keys per invocation; query rows
// come in blocks of 16 (uniform across lanes), for every query head of the KV group.

@group(0) @binding(6) var<storage, read> lse_kv: array<f32>;
@group(0) @binding(7) var<storage, read> dout_kv: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> delta_kv: array<f32>;
@group(0) @binding(9) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dv: array<vec4<f32>>;

fn q_quad(rows: vec4<u32>, c: u32) -> mat4x4<f32> {
  return mat4x4<f32>(q[rows.x + c], q[rows.y + c], q[rows.z + c], q[rows.w + c]);
}

fn dout_quad(rows: vec4<u32>, c: u32) -> mat4x4<f32> {
  return mat4x4<f32>(dout_kv[rows.x + c], dout_kv[rows.y + c], dout_kv[rows.z + c], dout_kv[rows.w + c]);
}

// lse and delta of query rows i .. i+3 (clamped) of head h.
fn row_values(b: u32, h: u32, i: u32, want_delta: bool) -> vec4<f32> {
  let base = (b * p.heads + h) * p.tq;
  let last = p.tq - 1u;
  let at = vec4<u32>(base) + min(vec4<u32>(i) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last));
  if (want_delta) {
    return vec4<f32>(delta_kv[at.x], delta_kv[at.y], delta_kv[at.z], delta_kv[at.w]);
  }
  return vec4<f32>(lse_kv[at.x], lse_kv[at.y], lse_kv[at.z], lse_kv[at.w]);
}

struct KeyGrads {
  p: mat4x4<f32>,
  ds: mat4x4<f32>,
}

// Probabilities and dS·slope of one key against 16 query rows (columns = quads of rows).
fn key_grads(s: mat4x4<f32>, dp: mat4x4<f32>, j: i32, i0: i32, i_end: i32, off: i32, len: i32,
             lse4: mat4x4<f32>, delta4: mat4x4<f32>) -> KeyGrads {
  var g: KeyGrads;
  for (var quad = 0; quad < 4; quad++) {
    let ok = query_mask(j, i0 + 4 * quad, i_end, off, len);
    let sc = capped4(s[quad]);
    let pr = select(vec4<f32>(0.0), exp(sc - lse4[quad]), ok);
    g.p[quad] = pr;
    g.ds[quad] = pr * (dp[quad] - delta4[quad]) * slope4(sc);
  }
  return g;
}

fn accumulate_kv(valid: bool, at: u32, add_k: vec4<f32>, add_v: vec4<f32>) {
  if (valid) {
    dk[at] += add_k;
    dv[at] += add_v;
  }
}

@compute @workgroup_size(WG)
fn attention_backward_dkdv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  let kvh = wid.y;
  let group = p.heads / p.kv_heads;
  let block = wid.x * WG * RQ;
  let off = q_offset[b];
  let len = kv_len[b];
  let keys = vec4<u32>(block + lid.x) + vec4<u32>(0u, WG, 2u * WG, 3u * WG);
  let valid = keys < vec4<u32>(p.tmax);
  let last_key = p.tmax - 1u;
  let kb = vec4<u32>(kv_index(b, min(keys.x, last_key), kvh), kv_index(b, min(keys.y, last_key), kvh),
                     kv_index(b, min(keys.z, last_key), kvh), kv_index(b, min(keys.w, last_key), kvh));
  let j = vec4<i32>(keys);
  // Query rows that can see a key of this block: pos ≥ block, and pos < last key + window.
  let i_begin = max(0, i32(block) - off);
  var i_end = i32(p.tq);
  if (p.window > 0u) {
    i_end = min(i_end, i32(min(block + WG * RQ, p.tmax) - 1u) + i32(p.window) - off);
  }
  for (var g = 0u; g < group; g++) {
    let h = kvh * group + g;
    for (var i0 = i_begin; i0 < i_end; i0 += i32(KB)) {
      let r0 = q_rows(b, u32(i0), h);
      let r1 = q_rows(b, u32(i0) + 4u, h);
      let r2 = q_rows(b, u32(i0) + 8u, h);
      let r3 = q_rows(b, u32(i0) + 12u, h);
      var s0 = mat4x4<f32>();
      var s1 = mat4x4<f32>();
      var s2 = mat4x4<f32>();
      var s3 = mat4x4<f32>();
      var p0 = mat4x4<f32>();
      var p1 = mat4x4<f32>();
      var p2 = mat4x4<f32>();
      var p3 = mat4x4<f32>();
      for (var c = 0u; c < HD4; c++) {
        let q0 = q_quad(r0, c);
        let q1 = q_quad(r1, c);
        let q2 = q_quad(r2, c);
        let q3 = q_quad(r3, c);
        s0 += dots16(k[kb.x + c], q0, q1, q2, q3);
        s1 += dots16(k[kb.y + c], q0, q1, q2, q3);
        s2 += dots16(k[kb.z + c], q0, q1, q2, q3);
        s3 += dots16(k[kb.w + c], q0, q1, q2, q3);
        let o0 = dout_quad(r0, c);
        let o1 = dout_quad(r1, c);
        let o2 = dout_quad(r2, c);
        let o3 = dout_quad(r3, c);
        p0 += dots16(v[kb.x + c], o0, o1, o2, o3);
        p1 += dots16(v[kb.y + c], o0, o1, o2, o3);
        p2 += dots16(v[kb.z + c], o0, o1, o2, o3);
        p3 += dots16(v[kb.w + c], o0, o1, o2, o3);
      }
      let iu = u32(i0);
      let lse4 = mat4x4<f32>(row_values(b, h, iu, false), row_values(b, h, iu + 4u, false),
                             row_values(b, h, iu + 8u, false), row_values(b, h, iu + 12u, false));
      let delta4 = mat4x4<f32>(row_values(b, h, iu, true), row_values(b, h, iu + 4u, true),
                               row_values(b, h, iu + 8u, true), row_values(b, h, iu + 12u, true));
      let g0 = key_grads(s0, p0, j.x, i0, i_end, off, len, lse4, delta4);
      let g1 = key_grads(s1, p1, j.y, i0, i_end, off, len, lse4, delta4);
      let g2 = key_grads(s2, p2, j.z, i0, i_end, off, len, lse4, delta4);
      let g3 = key_grads(s3, p3, j.w, i0, i_end, off, len, lse4, delta4);
      for (var c = 0u; c < HD4; c++) {
        let q0 = q_quad(r0, c);
        let q1 = q_quad(r1, c);
        let q2 = q_quad(r2, c);
        let q3 = q_quad(r3, c);
        let o0 = dout_quad(r0, c);
        let o1 = dout_quad(r1, c);
        let o2 = dout_quad(r2, c);
        let o3 = dout_quad(r3, c);
        accumulate_kv(valid.x, kb.x + c, mix16(q0, q1, q2, q3, g0.ds), mix16(o0, o1, o2, o3, g0.p));
        accumulate_kv(valid.y, kb.y + c, mix16(q0, q1, q2, q3, g1.ds), mix16(o0, o1, o2, o3, g1.p));
        accumulate_kv(valid.z, kb.z + c, mix16(q0, q1, q2, q3, g2.ds), mix16(o0, o1, o2, o3, g2.p));
        accumulate_kv(valid.w, kb.w + c, mix16(q0, q1, q2, q3, g3.ds), mix16(o0, o1, o2, o3, g3.p));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// KV-cache write: new rows [B·Tq × KVH × D] go to cache rows q_offset[b] + i. A pure copy of
// Tq·KVH·D values per sequence and layer: one dispatch overhead (~50 µs) dominates.

@group(0) @binding(1) var<storage, read> fresh: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> write_offset: array<i32>;
@group(0) @binding(3) var<storage, read_write> cache: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn kv_cache_write(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row_len = p.kv_heads * HD4;
  let n = gid.x + gid.y * p.grid_stride;
  if (n >= p.batch * p.tq * row_len) {
    return;
  }
  let c = n % row_len;
  let i = (n / row_len) % p.tq;
  let b = n / (row_len * p.tq);
  let dst = write_offset[b] + i32(i);
  if (dst < 0 || u32(dst) >= p.tmax) {
    return;
  }
  cache[(b * p.tmax + u32(dst)) * row_len + c] = fresh[n];
}
