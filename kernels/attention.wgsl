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
// 2·B·H·T²/2·D·2 ≈ 67 MFLOP forward, ≈ 2.5× that backward — nothing for 85 GFLOP/s of register
// FMA. What costs is loads: a storage-buffer vec4 load is ~27–41 ns per 8 lanes on llvmpipe, and
// llvmpipe keeps dynamically indexed private arrays (q row, accumulators) in scratch memory, so
// every access to them costs about as much as a load. Lanes run along query rows (keys in
// dk/dv), one row per invocation; per visible key a lane touches ~4·D/4 vec4 values → ~90 row-keys
// per µs per core. B·H·T²/2 ≈ 131k row-keys plus the masked diagonal of each 16-row block.
// Measured here (2 busy cores, B4 T256 H4 D64): forward ~110 ms, dq ~120 ms, dk/dv ~210 ms — NOT
// yet the "small part of a step" wanted. Faster layouts tried: R = 4 rows per lane with 1-D or
// 2-D register arrays sized for D ≤ 256 JIT in 10–140 s (NIR unrolls the HD4 loops into huge
// bodies) and still run 60–100 ms. The way forward is named-variable 4×4 tiles (no arrays) over
// materialised score tiles, as in the matmul kernels (compute-notes §2.5).
// Softmax rescaling is per block of KB keys, not per key. No shared memory, no barriers.

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

// Rows (forward, dq) or keys (dk/dv) per invocation. Larger R amortises K/V loads but makes the
// JIT explode with the array-based code below (see the napkin math).
const R: u32 = 1u;
// Keys per online-softmax block in the forward.
const KB: u32 = 8u;
// Register arrays are sized for head_dim ≤ 256; loops run to HD4 (an override), so after
// specialisation they unroll and the unused tail is dead.
const D4_MAX: u32 = 64u;
const NEG: f32 = -3.0e38;

override WG: u32 = 16u;
override HD4: u32 = 16u;

fn visible(pos: i32, j: i32, len: i32) -> bool {
  return j <= pos && j < len && (p.window == 0u || j > pos - i32(p.window));
}

// Scaled and optionally soft-capped score of a raw dot product.
fn capped(raw: f32) -> f32 {
  let s = raw * p.scale;
  if (p.softcap > 0.0) {
    return tanh(s / p.softcap) * p.softcap;
  }
  return s;
}

// d(score)/d(raw dot product), given the score.
fn capped_slope(s: f32) -> f32 {
  if (p.softcap > 0.0) {
    let t = s / p.softcap;
    return p.scale * (1.0 - t * t);
  }
  return p.scale;
}

// Keys [x, y) that any of the query rows block .. block + WG·R − 1 can see. One range for the
// whole workgroup keeps the key loop uniform; per-row masks do the rest.
fn key_range(block: u32, off: i32, len: i32) -> vec2<i32> {
  let last = min(block + WG * R, p.tq) - 1u;
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

// ---------------------------------------------------------------------------------------------
// Forward: one invocation = R query rows (lid.x + r·WG inside the block of WG·R rows) of one head.

@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> q_offset: array<i32>;
@group(0) @binding(5) var<storage, read> kv_len: array<i32>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(WG)
fn attention_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  let h = wid.y;
  let kvh = h / (p.heads / p.kv_heads);
  let block = wid.x * WG * R;
  let off = q_offset[b];
  let len = kv_len[b];
  let keys = key_range(block, off, len);
  let j_begin = keys.x;
  let j_end = keys.y;

  var qr: array<vec4<f32>, R * D4_MAX>;
  var acc: array<vec4<f32>, R * D4_MAX>;
  var m: array<f32, R>;
  var l: array<f32, R>;
  var pos: array<i32, R>;
  for (var r = 0u; r < R; r++) {
    let i = block + lid.x + r * WG;
    pos[r] = off + i32(i);
    m[r] = NEG;
    l[r] = 0.0;
    let base = q_index(b, min(i, p.tq - 1u), h);
    for (var c = 0u; c < HD4; c++) {
      qr[r * D4_MAX + c] = q[base + c];
      acc[r * D4_MAX + c] = vec4<f32>(0.0);
    }
  }

  for (var j0 = j_begin; j0 < j_end; j0 += i32(KB)) {
    var s = array<f32, R * KB>();
    for (var kk = 0u; kk < KB; kk++) {
      let kb = kv_index(b, u32(min(j0 + i32(kk), j_end - 1)), kvh);
      for (var c = 0u; c < HD4; c++) {
        let kv = k[kb + c];
        for (var r = 0u; r < R; r++) {
          s[r * KB + kk] += dot(qr[r * D4_MAX + c], kv);
        }
      }
    }
    for (var r = 0u; r < R; r++) {
      var mx = m[r];
      for (var kk = 0u; kk < KB; kk++) {
        let j = j0 + i32(kk);
        let sc = select(NEG, capped(s[r * KB + kk]), j < j_end && visible(pos[r], j, len));
        s[r * KB + kk] = sc;
        mx = max(mx, sc);
      }
      let alpha = exp(m[r] - mx);
      m[r] = mx;
      var sum = l[r] * alpha;
      for (var kk = 0u; kk < KB; kk++) {
        let pr = select(0.0, exp(s[r * KB + kk] - mx), s[r * KB + kk] > NEG);
        s[r * KB + kk] = pr;
        sum += pr;
      }
      l[r] = sum;
      for (var c = 0u; c < HD4; c++) {
        acc[r * D4_MAX + c] *= alpha;
      }
    }
    for (var kk = 0u; kk < KB; kk++) {
      let vb = kv_index(b, u32(min(j0 + i32(kk), j_end - 1)), kvh);
      for (var c = 0u; c < HD4; c++) {
        let vv = v[vb + c];
        for (var r = 0u; r < R; r++) {
          acc[r * D4_MAX + c] += s[r * KB + kk] * vv;
        }
      }
    }
  }

  for (var r = 0u; r < R; r++) {
    let i = block + lid.x + r * WG;
    if (i >= p.tq) {
      continue;
    }
    // A row that sees no key (only possible with kv_len ≤ pos − window) outputs zeros.
    let inv = select(0.0, 1.0 / l[r], l[r] > 0.0);
    let base = q_index(b, i, h);
    for (var c = 0u; c < HD4; c++) {
      out[base + c] = acc[r * D4_MAX + c] * inv;
    }
    lse[(b * p.heads + h) * p.tq + i] = select(NEG, m[r] + log(l[r]), l[r] > 0.0);
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, kernel 1: dq and delta_i = Σ_d dout·out (read by kernel 2). Same tiling as the
// forward; no online softmax is needed since P = exp(s − lse). Per key: D/4 loads of k (kept in
// registers for the dq update) and D/4 of v.

@group(0) @binding(6) var<storage, read> out_in: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> lse_in: array<f32>;
@group(0) @binding(8) var<storage, read> dout: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> delta: array<f32>;
@group(0) @binding(10) var<storage, read_write> dq: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn attention_backward_dq(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  let h = wid.y;
  let kvh = h / (p.heads / p.kv_heads);
  let block = wid.x * WG * R;
  let off = q_offset[b];
  let len = kv_len[b];
  let keys = key_range(block, off, len);
  let j_begin = keys.x;
  let j_end = keys.y;

  var qr: array<vec4<f32>, R * D4_MAX>;
  var dor: array<vec4<f32>, R * D4_MAX>;
  var dqr: array<vec4<f32>, R * D4_MAX>;
  var kr: array<vec4<f32>, D4_MAX>;
  var rl: array<f32, R>;
  var dl: array<f32, R>;
  var pos: array<i32, R>;
  for (var r = 0u; r < R; r++) {
    let i = block + lid.x + r * WG;
    let ic = min(i, p.tq - 1u);
    pos[r] = off + i32(i);
    let base = q_index(b, ic, h);
    var d4 = vec4<f32>(0.0);
    for (var c = 0u; c < HD4; c++) {
      qr[r * D4_MAX + c] = q[base + c];
      let g = dout[base + c];
      dor[r * D4_MAX + c] = g;
      d4 += g * out_in[base + c];
      dqr[r * D4_MAX + c] = vec4<f32>(0.0);
    }
    let row = (b * p.heads + h) * p.tq + ic;
    dl[r] = d4.x + d4.y + d4.z + d4.w;
    rl[r] = lse_in[row];
    if (i < p.tq) {
      delta[row] = dl[r];
    }
  }

  for (var j = j_begin; j < j_end; j++) {
    let kb = kv_index(b, u32(j), kvh);
    var s = array<f32, R>();
    var dp = array<f32, R>();
    for (var c = 0u; c < HD4; c++) {
      let kv = k[kb + c];
      kr[c] = kv;
      for (var r = 0u; r < R; r++) {
        s[r] += dot(qr[r * D4_MAX + c], kv);
      }
    }
    for (var c = 0u; c < HD4; c++) {
      let vv = v[kb + c];
      for (var r = 0u; r < R; r++) {
        dp[r] += dot(dor[r * D4_MAX + c], vv);
      }
    }
    for (var r = 0u; r < R; r++) {
      let sc = capped(s[r]);
      let pr = exp(sc - rl[r]);
      let ds = select(0.0, pr * (dp[r] - dl[r]) * capped_slope(sc), visible(pos[r], j, len));
      for (var c = 0u; c < HD4; c++) {
        dqr[r * D4_MAX + c] += ds * kr[c];
      }
    }
  }

  for (var r = 0u; r < R; r++) {
    let i = block + lid.x + r * WG;
    if (i >= p.tq) {
      continue;
    }
    let base = q_index(b, i, h);
    for (var c = 0u; c < HD4; c++) {
      dq[base + c] += dqr[r * D4_MAX + c];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, kernel 2: dk and dv. Lanes run along keys, R keys per invocation, and each invocation
// sums over every query row and every query head of its KV group in a fixed order: deterministic,
// no atomics. Per query row: D/4 loads of q and of dout plus lse and delta (uniform addresses).

@group(0) @binding(6) var<storage, read> lse_kv: array<f32>;
@group(0) @binding(7) var<storage, read> dout_kv: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> delta_kv: array<f32>;
@group(0) @binding(9) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dv: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn attention_backward_dkdv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  let kvh = wid.y;
  let group = p.heads / p.kv_heads;
  let block = wid.x * WG * R;
  let off = q_offset[b];
  let len = kv_len[b];
  let last_key = min(block + WG * R, p.tmax) - 1u;
  // Query rows that can see a key of this block: pos ≥ block, and pos < last_key + window.
  let i_begin = max(0, i32(block) - off);
  var i_end = i32(p.tq);
  if (p.window > 0u) {
    i_end = min(i_end, i32(last_key) + i32(p.window) - off);
  }

  var kr: array<vec4<f32>, R * D4_MAX>;
  var vr: array<vec4<f32>, R * D4_MAX>;
  var dkr: array<vec4<f32>, R * D4_MAX>;
  var dvr: array<vec4<f32>, R * D4_MAX>;
  var qi: array<vec4<f32>, D4_MAX>;
  var gi: array<vec4<f32>, D4_MAX>;
  var key: array<i32, R>;
  for (var r = 0u; r < R; r++) {
    let j = block + lid.x + r * WG;
    key[r] = i32(j);
    let base = kv_index(b, min(j, p.tmax - 1u), kvh);
    for (var c = 0u; c < HD4; c++) {
      kr[r * D4_MAX + c] = k[base + c];
      vr[r * D4_MAX + c] = v[base + c];
      dkr[r * D4_MAX + c] = vec4<f32>(0.0);
      dvr[r * D4_MAX + c] = vec4<f32>(0.0);
    }
  }

  for (var g = 0u; g < group; g++) {
    let h = kvh * group + g;
    for (var i = i_begin; i < i_end; i++) {
      let qb = q_index(b, u32(i), h);
      let row = (b * p.heads + h) * p.tq + u32(i);
      let li = lse_kv[row];
      let di = delta_kv[row];
      var s = array<f32, R>();
      var dp = array<f32, R>();
      for (var c = 0u; c < HD4; c++) {
        let qv = q[qb + c];
        let gv = dout_kv[qb + c];
        qi[c] = qv;
        gi[c] = gv;
        for (var r = 0u; r < R; r++) {
          s[r] += dot(qv, kr[r * D4_MAX + c]);
          dp[r] += dot(gv, vr[r * D4_MAX + c]);
        }
      }
      for (var r = 0u; r < R; r++) {
        let sc = capped(s[r]);
        let vis = visible(off + i, key[r], len);
        let pr = select(0.0, exp(sc - li), vis);
        let ds = pr * (dp[r] - di) * capped_slope(sc);
        for (var c = 0u; c < HD4; c++) {
          dvr[r * D4_MAX + c] += pr * gi[c];
          dkr[r * D4_MAX + c] += ds * qi[c];
        }
      }
    }
  }

  for (var r = 0u; r < R; r++) {
    let j = block + lid.x + r * WG;
    if (j >= p.tmax) {
      continue;
    }
    let base = kv_index(b, j, kvh);
    for (var c = 0u; c < HD4; c++) {
      dk[base + c] += dkr[r * D4_MAX + c];
      dv[base + c] += dvr[r * D4_MAX + c];
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
