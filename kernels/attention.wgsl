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
// vec4 feeds 8 rows (keys) × 4:
// * forward / dq: one invocation = 8 query rows (lanes along rows, workgroup of 8 lanes = one
//   SIMD group = 64 rows), keys in blocks of 16 (four mat4x4 "quads" of keys). Per block and vec4
//   of D: 8 q loads + 16 k (+ 16 v) loads for 128 row-keys, plus a read-modify-write of the 8
//   output (dq) rows — accumulating straight into the output keeps registers small. ≈ 0.44
//   loads per row-key per vec4 → B·H·T²/2·(1.25 for the block diagonal)·D/4·0.44·35 ns / 8 lanes
//   ≈ 10 ms of core time forward, ~1.5× that for dq. q, K and V come from textures (~17 ns per
//   fetch, copied in by the launcher), and blocks go in pairs so each output (dq) row is read,
//   updated and written once per 32 keys: those storage updates are now the largest cost.
// * dk/dv: one invocation = 8 keys (lanes along keys), query rows in blocks of 16, over every
//   query head of the KV group in a fixed order: each gradient element is summed by exactly one
//   invocation (deterministic, no atomics). The 16 rows of q and dout are the same for every lane
//   and were half of this kernel's time as storage loads; they are read from textures (the
//   launcher copies them in, ~1 MiB each at the reference shape). It also stores dS for the dq
//   kernel when the [B·H·Tq × Tmax] scratch fits one binding (4 MiB at the reference shape), so
//   dq costs one dS load per 4 row-keys instead of recomputing scores and dP.
// The online softmax rescales once per 16-key block. No shared memory, no barriers.
// B4 T256 H4 D64, interleaved A/B in one process (quiet period, wall / process CPU per call):
// forward 12.3 / 22.1 ms with storage loads → 9.3 / 15.7 ms with q, K, V textures and 32-key
// output updates; backward 41.1 / 74.6 ms (recomputing dq kernel, storage loads) → 22.2 / 39.0 ms
// (dS scratch, textures, 32-row dk/dv and 32-key dq updates). Earlier, host heavily shared
// (load 4–5 on 2 cores; process CPU time per call), the first storage-buffer version measured
// forward ~25 ms, dq ~31–39 ms, dk/dv ~51–65 ms of core time, against 33–42 / 44–46 /
// 67–69 ms for 4 rows × 16 lanes and 110 / 120 / 210 ms wall for the first design (private
// arrays, which live in scratch memory and took 10–140 s to JIT once unrolled). Cold JIT (no
// Mesa cache) is ~3–5 s per kernel under that load, 0.3–0.8 s warm.
// Pitfall: naga does not re-zero a `var` declared without initialiser inside a loop body on each
// iteration, and its SPIR-V backend panics on a pointer to a struct member passed to a function;
// accumulators here are initialised explicitly and passed as whole variables.

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
  // Row pitch (floats) of the dS scratch that attention_backward_dkdv fills; 0: no scratch.
  ds_pitch: u32,
  // Row textures (q and dout in attention_backward_dkdv): token row r of W = heads·HD4 texels
  // lives at texel ((r & (2^tex_shift − 1))·W + x, r >> tex_shift), 2^tex_shift rows side by side.
  tex_shift: u32,
  // The same for the K/V row textures (rows b·tmax + j of W = kv_heads·HD4 texels).
  kv_shift: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// Rows (forward, dq) or keys (dk/dv) per invocation (two vec4 halves), and keys (query rows)
// per block: 4 quads.
const RQ: u32 = 8u;
const KB: u32 = 16u;
const NEG: f32 = -3.0e38;

override WG: u32 = 8u;
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
    // Rounded down to a quad so dS rows load as whole vec4s (the extra keys are masked).
    j_begin = max(0, off + i32(block) - i32(p.window) + 1) & ~3;
  }
  return vec2<i32>(j_begin, min(off + i32(last) + 1, len));
}

fn q_index(b: u32, i: u32, h: u32) -> u32 {
  return ((b * p.tq + i) * p.heads + h) * HD4;
}

fn kv_index(b: u32, j: u32, kvh: u32) -> u32 {
  return ((b * p.tmax + j) * p.kv_heads + kvh) * HD4;
}

// Texel coordinates of the start of one head's slice of 4 token rows in a row texture.
struct TexRows {
  x: vec4<u32>,
  y: vec4<u32>,
}

// Query rows `rows` (already clamped to tq) of sequence b, head h, in a row texture.
fn tex_rows_of(b: u32, rows: vec4<u32>, h: u32) -> TexRows {
  let r = vec4<u32>(b * p.tq) + rows;
  let mask = vec4<u32>((1u << p.tex_shift) - 1u);
  return TexRows((r & mask) * vec4<u32>(p.heads * HD4) + vec4<u32>(h * HD4), r >> vec4<u32>(p.tex_shift));
}

// Query rows i … i+3 (clamped to the last row).
fn tex_rows(b: u32, i: u32, h: u32) -> TexRows {
  return tex_rows_of(b, min(vec4<u32>(i) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.tq - 1u)), h);
}

// Four rows of an invocation: vec4-row starts, texels in the q texture, validity, absolute positions.
struct Half {
  base: vec4<u32>,
  tex: TexRows,
  valid: vec4<bool>,
  pos: vec4<i32>,
}

// Query rows first, first + WG, first + 2·WG, first + 3·WG of head h (loads clamp to the last row).
fn row_half(b: u32, h: u32, off: i32, first: u32) -> Half {
  let rows = vec4<u32>(first) + vec4<u32>(0u, WG, 2u * WG, 3u * WG);
  let clamped = min(rows, vec4<u32>(p.tq - 1u));
  return Half(
    vec4<u32>(q_index(b, clamped.x, h), q_index(b, clamped.y, h), q_index(b, clamped.z, h), q_index(b, clamped.w, h)),
    tex_rows_of(b, clamped, h),
    rows < vec4<u32>(p.tq),
    vec4<i32>(off) + vec4<i32>(rows),
  );
}

// Prologue shared by the row-tiled kernels: 8 query rows per invocation, in two halves.
struct RowTile {
  b: u32,
  h: u32,
  kvh: u32,
  lo: Half,
  hi: Half,
  keys: vec2<i32>,
  lse_base: u32,
}

fn row_tile(lid: vec3<u32>, wid: vec3<u32>) -> RowTile {
  let b = wid.z;
  let h = wid.y;
  let block = wid.x * WG * RQ;
  let off = q_offset[b];
  return RowTile(
    b,
    h,
    h / (p.heads / p.kv_heads),
    row_half(b, h, off, block + lid.x),
    row_half(b, h, off, block + lid.x + 4u * WG),
    key_range(block, off, kv_len[b]),
    (b * p.heads + h) * p.tq,
  );
}

// Index in lse / delta of the row at absolute position pos (clamped like the loads).
fn lse_index(t: RowTile, pos: i32) -> u32 {
  return t.lse_base + min(u32(pos - q_offset[t.b]), p.tq - 1u);
}

// q as a row texture (lane-varying rows: a texel fetch costs ~17 ns per 8 lanes, a storage load
// ~41 ns).
@group(0) @binding(1) var q_tex: texture_2d<f32>;
// K and V as row textures (the launcher copies them in): texel fetches cost ~17 ns per 8 lanes
// against 27–41 ns for storage loads.
@group(0) @binding(2) var k_tex: texture_2d<f32>;
@group(0) @binding(3) var v_tex: texture_2d<f32>;
@group(0) @binding(4) var<storage, read> q_offset: array<i32>;
@group(0) @binding(5) var<storage, read> kv_len: array<i32>;

// Texel of vec4 slice 0 of key row r = b·tmax + j, KV head kvh, in the K/V row textures.
fn kv_texel(r: u32, kvh: u32) -> vec2<u32> {
  return vec2<u32>((r & ((1u << p.kv_shift) - 1u)) * (p.kv_heads * HD4) + kvh * HD4, r >> p.kv_shift);
}

fn kv_load(t: texture_2d<f32>, r: u32, kvh: u32, c: u32) -> vec4<f32> {
  return textureLoad(t, kv_texel(r, kvh) + vec2<u32>(c, 0u), 0);
}

// Slice c of keys quad·4 … quad·4+3 of the block starting at key row kr (rows past `last` repeat it).
fn kv_quads(t: texture_2d<f32>, kr: u32, kvh: u32, last: u32, c: u32, quad: u32) -> mat4x4<f32> {
  let j = quad * 4u;
  return mat4x4<f32>(kv_load(t, kr + min(j, last), kvh, c), kv_load(t, kr + min(j + 1u, last), kvh, c),
                     kv_load(t, kr + min(j + 2u, last), kvh, c), kv_load(t, kr + min(j + 3u, last), kvh, c));
}

fn k_quads(kr: u32, kvh: u32, last: u32, c: u32, quad: u32) -> mat4x4<f32> {
  return kv_quads(k_tex, kr, kvh, last, c, quad);
}

fn v_quads(kr: u32, kvh: u32, last: u32, c: u32, quad: u32) -> mat4x4<f32> {
  return kv_quads(v_tex, kr, kvh, last, c, quad);
}

// Raw dot products of 4 rows with the 16 keys of a block (one mat4x4 per row).
struct Tile4 {
  r0: mat4x4<f32>,
  r1: mat4x4<f32>,
  r2: mat4x4<f32>,
  r3: mat4x4<f32>,
}

struct Tile8 {
  lo: Tile4,
  hi: Tile4,
}

fn add_q_dots(s: ptr<function, Tile4>, rows: TexRows, c: u32, k0: mat4x4<f32>, k1: mat4x4<f32>,
              k2: mat4x4<f32>, k3: mat4x4<f32>) {
  (*s).r0 += dots16(textureLoad(q_tex, vec2<u32>(rows.x.x + c, rows.y.x), 0), k0, k1, k2, k3);
  (*s).r1 += dots16(textureLoad(q_tex, vec2<u32>(rows.x.y + c, rows.y.y), 0), k0, k1, k2, k3);
  (*s).r2 += dots16(textureLoad(q_tex, vec2<u32>(rows.x.z + c, rows.y.z), 0), k0, k1, k2, k3);
  (*s).r3 += dots16(textureLoad(q_tex, vec2<u32>(rows.x.w + c, rows.y.w), 0), k0, k1, k2, k3);
}

fn qk_tile(t: RowTile, kb: u32, last: u32) -> Tile8 {
  var lo = Tile4();
  var hi = Tile4();
  for (var c = 0u; c < HD4; c++) {
    let k0 = k_quads(kb, t.kvh, last, c, 0u);
    let k1 = k_quads(kb, t.kvh, last, c, 1u);
    let k2 = k_quads(kb, t.kvh, last, c, 2u);
    let k3 = k_quads(kb, t.kvh, last, c, 3u);
    add_q_dots(&lo, t.lo.tex, c, k0, k1, k2, k3);
    add_q_dots(&hi, t.hi.tex, c, k0, k1, k2, k3);
  }
  return Tile8(lo, hi);
}

// ---------------------------------------------------------------------------------------------
// Forward. The output rows double as the (unnormalised) accumulators.

@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;

// Running max and Σexp of 4 rows, one component per row.
struct RowStats {
  m: vec4<f32>,
  l: vec4<f32>,
}

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

struct Online4 {
  o0: Online,
  o1: Online,
  o2: Online,
  o3: Online,
}

fn online4(s: Tile4, h: Half, j0: i32, j_end: i32, st: RowStats) -> Online4 {
  return Online4(
    online(s.r0, h.pos.x, j0, j_end, st.m.x, st.l.x),
    online(s.r1, h.pos.y, j0, j_end, st.m.y, st.l.y),
    online(s.r2, h.pos.z, j0, j_end, st.m.z, st.l.z),
    online(s.r3, h.pos.w, j0, j_end, st.m.w, st.l.w),
  );
}

fn stats_of(o: Online4) -> RowStats {
  return RowStats(vec4<f32>(o.o0.m, o.o1.m, o.o2.m, o.o3.m), vec4<f32>(o.o0.l, o.o1.l, o.o2.l, o.o3.l));
}

// One row's output += two consecutive 16-key blocks a, z (z's online step came after a's):
// out·α_a·α_z + (P_a·V_a)·α_z + P_z·V_z, one read-modify-write per 32 keys.
fn accumulate_out(valid: bool, at: u32, oa: Online, va: Slice16, oz: Online, vz: Slice16) {
  if (valid) {
    out[at] = (out[at] * oa.alpha + mix16(va.k0, va.k1, va.k2, va.k3, oa.p)) * oz.alpha +
      mix16(vz.k0, vz.k1, vz.k2, vz.k3, oz.p);
  }
}

fn accumulate_half(h: Half, c: u32, oa: Online4, va: Slice16, oz: Online4, vz: Slice16) {
  accumulate_out(h.valid.x, h.base.x + c, oa.o0, va, oz.o0, vz);
  accumulate_out(h.valid.y, h.base.y + c, oa.o1, va, oz.o1, vz);
  accumulate_out(h.valid.z, h.base.z + c, oa.o2, va, oz.o2, vz);
  accumulate_out(h.valid.w, h.base.w + c, oa.o3, va, oz.o3, vz);
}

fn clear_half(h: Half) {
  for (var r = 0u; r < 4u; r++) {
    if (h.valid[r]) {
      for (var c = 0u; c < HD4; c++) {
        out[h.base[r] + c] = vec4<f32>(0.0);
      }
    }
  }
}

// Normalises the accumulated rows and writes lse. A row that sees no key (only possible with
// kv_len ≤ pos − window) outputs zeros.
fn finish_half(t: RowTile, h: Half, st: RowStats) {
  let inv = select(vec4<f32>(0.0), 1.0 / st.l, st.l > vec4<f32>(0.0));
  for (var r = 0u; r < 4u; r++) {
    if (h.valid[r]) {
      for (var c = 0u; c < HD4; c++) {
        out[h.base[r] + c] *= inv[r];
      }
      lse[lse_index(t, h.pos[r])] = select(NEG, st.m[r] + log(st.l[r]), st.l[r] > 0.0);
    }
  }
}

@compute @workgroup_size(WG)
fn attention_forward(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = row_tile(lid, wid);
  clear_half(t.lo);
  clear_half(t.hi);
  var st_lo = RowStats(vec4<f32>(NEG), vec4<f32>(0.0));
  var st_hi = RowStats(vec4<f32>(NEG), vec4<f32>(0.0));
  // Keys in pairs of 16-key blocks (a, z), as in attention_backward_dq_ds.
  for (var j0 = t.keys.x; j0 < t.keys.y; j0 += 2 * i32(KB)) {
    let j1 = j0 + i32(KB);
    let kra = t.b * p.tmax + u32(j0);
    let lasta = u32(t.keys.y - 1 - j0);
    let krz = t.b * p.tmax + u32(min(j1, t.keys.y - 1));
    let lastz = u32(max(t.keys.y - 1 - j1, 0));
    let sa = qk_tile(t, kra, lasta);
    let sz = qk_tile(t, krz, lastz);
    let oa_lo = online4(sa.lo, t.lo, j0, t.keys.y, st_lo);
    let oa_hi = online4(sa.hi, t.hi, j0, t.keys.y, st_hi);
    let oz_lo = online4(sz.lo, t.lo, j1, t.keys.y, stats_of(oa_lo));
    let oz_hi = online4(sz.hi, t.hi, j1, t.keys.y, stats_of(oa_hi));
    st_lo = stats_of(oz_lo);
    st_hi = stats_of(oz_hi);
    for (var c = 0u; c < HD4; c++) {
      let va = slice16(v_tex, kra, t.kvh, lasta, c);
      let vz = slice16(v_tex, krz, t.kvh, lastz, c);
      accumulate_half(t.lo, c, oa_lo, va, oz_lo, vz);
      accumulate_half(t.hi, c, oa_hi, va, oz_hi, vz);
    }
  }
  finish_half(t, t.lo, st_lo);
  finish_half(t, t.hi, st_hi);
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

fn add_dout_dots(s: ptr<function, Tile4>, base: vec4<u32>, c: u32, v0: mat4x4<f32>, v1: mat4x4<f32>,
                 v2: mat4x4<f32>, v3: mat4x4<f32>) {
  (*s).r0 += dots16(dout[base.x + c], v0, v1, v2, v3);
  (*s).r1 += dots16(dout[base.y + c], v0, v1, v2, v3);
  (*s).r2 += dots16(dout[base.z + c], v0, v1, v2, v3);
  (*s).r3 += dots16(dout[base.w + c], v0, v1, v2, v3);
}

// dP = dout·v of the tile's 8 rows with the 16 keys of a block.
fn dov_tile(t: RowTile, kb: u32, last: u32) -> Tile8 {
  var lo = Tile4();
  var hi = Tile4();
  for (var c = 0u; c < HD4; c++) {
    let v0 = v_quads(kb, t.kvh, last, c, 0u);
    let v1 = v_quads(kb, t.kvh, last, c, 1u);
    let v2 = v_quads(kb, t.kvh, last, c, 2u);
    let v3 = v_quads(kb, t.kvh, last, c, 3u);
    add_dout_dots(&lo, t.lo.base, c, v0, v1, v2, v3);
    add_dout_dots(&hi, t.hi.base, c, v0, v1, v2, v3);
  }
  return Tile8(lo, hi);
}

// Per-row lse and delta = Σ dout·out of 4 rows; writes delta for the valid ones.
struct RowTerms {
  lse: vec4<f32>,
  delta: vec4<f32>,
}

fn row_terms(t: RowTile, h: Half) -> RowTerms {
  var d4 = mat4x4<f32>();
  for (var c = 0u; c < HD4; c++) {
    d4[0] += dout[h.base.x + c] * out_in[h.base.x + c];
    d4[1] += dout[h.base.y + c] * out_in[h.base.y + c];
    d4[2] += dout[h.base.z + c] * out_in[h.base.z + c];
    d4[3] += dout[h.base.w + c] * out_in[h.base.w + c];
  }
  var terms = RowTerms(vec4<f32>(0.0), vec4<f32>(sum4(d4[0]), sum4(d4[1]), sum4(d4[2]), sum4(d4[3])));
  for (var r = 0u; r < 4u; r++) {
    let at = lse_index(t, h.pos[r]);
    terms.lse[r] = lse_in[at];
    if (h.valid[r]) {
      delta[at] = terms.delta[r];
    }
  }
  return terms;
}

// dS·d(score)/d(raw) of 4 visible keys; 0 where masked.
fn dscore4(s: vec4<f32>, dp: vec4<f32>, ok: vec4<bool>, lse_r: f32, delta_r: f32) -> vec4<f32> {
  let sc = capped4(s);
  return select(vec4<f32>(0.0), exp(sc - lse_r) * (dp - delta_r) * slope4(sc), ok);
}

fn dscores_row(s: mat4x4<f32>, dp: mat4x4<f32>, pos: i32, j0: i32, j_end: i32, l: f32, d: f32) -> mat4x4<f32> {
  return mat4x4<f32>(
    dscore4(s[0], dp[0], key_mask(pos, j0, j_end), l, d),
    dscore4(s[1], dp[1], key_mask(pos, j0 + 4, j_end), l, d),
    dscore4(s[2], dp[2], key_mask(pos, j0 + 8, j_end), l, d),
    dscore4(s[3], dp[3], key_mask(pos, j0 + 12, j_end), l, d),
  );
}

fn dscores_half(s: Tile4, dp: Tile4, h: Half, j0: i32, j_end: i32, terms: RowTerms) -> Tile4 {
  return Tile4(
    dscores_row(s.r0, dp.r0, h.pos.x, j0, j_end, terms.lse.x, terms.delta.x),
    dscores_row(s.r1, dp.r1, h.pos.y, j0, j_end, terms.lse.y, terms.delta.y),
    dscores_row(s.r2, dp.r2, h.pos.z, j0, j_end, terms.lse.z, terms.delta.z),
    dscores_row(s.r3, dp.r3, h.pos.w, j0, j_end, terms.lse.w, terms.delta.w),
  );
}

fn accumulate_dq(valid: bool, at: u32, add: vec4<f32>) {
  if (valid) {
    dq[at] += add;
  }
}

fn accumulate_dq_half(h: Half, c: u32, g: Tile4, k0: mat4x4<f32>, k1: mat4x4<f32>, k2: mat4x4<f32>,
                      k3: mat4x4<f32>) {
  accumulate_dq(h.valid.x, h.base.x + c, mix16(k0, k1, k2, k3, g.r0));
  accumulate_dq(h.valid.y, h.base.y + c, mix16(k0, k1, k2, k3, g.r1));
  accumulate_dq(h.valid.z, h.base.z + c, mix16(k0, k1, k2, k3, g.r2));
  accumulate_dq(h.valid.w, h.base.w + c, mix16(k0, k1, k2, k3, g.r3));
}

@compute @workgroup_size(WG)
fn attention_backward_dq(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = row_tile(lid, wid);
  let terms_lo = row_terms(t, t.lo);
  let terms_hi = row_terms(t, t.hi);
  for (var j0 = t.keys.x; j0 < t.keys.y; j0 += i32(KB)) {
    let kb = t.b * p.tmax + u32(j0);
    let last = u32(t.keys.y - 1 - j0);
    let s = qk_tile(t, kb, last);
    let dp = dov_tile(t, kb, last);
    let g_lo = dscores_half(s.lo, dp.lo, t.lo, j0, t.keys.y, terms_lo);
    let g_hi = dscores_half(s.hi, dp.hi, t.hi, j0, t.keys.y, terms_hi);
    for (var c = 0u; c < HD4; c++) {
      let k0 = k_quads(kb, t.kvh, last, c, 0u);
      let k1 = k_quads(kb, t.kvh, last, c, 1u);
      let k2 = k_quads(kb, t.kvh, last, c, 2u);
      let k3 = k_quads(kb, t.kvh, last, c, 3u);
      accumulate_dq_half(t.lo, c, g_lo, k0, k1, k2, k3);
      accumulate_dq_half(t.hi, c, g_hi, k0, k1, k2, k3);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, kernel 2: dk and dv (+=). Lanes run along keys, 8 keys per invocation (two halves);
// query rows come in blocks of 16 (uniform across lanes), for every query head of the KV group.

@group(0) @binding(6) var<storage, read> lse_kv: array<f32>;
@group(0) @binding(7) var<storage, read> dout_kv: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> delta_kv: array<f32>;
@group(0) @binding(9) var<storage, read_write> dk: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dv: array<vec4<f32>>;
// dS·slope per (query row, key): [B × H × Tq × ds_pitch], read back by attention_backward_dq_ds.
@group(0) @binding(11) var<storage, read_write> ds_out: array<f32>;

// q and dout are read through textures here: every lane loads the same 16 query rows, and a
// texel fetch costs ~17 ns per 8 lanes against ~27 ns for a storage load (these loads were about
// half of this kernel's time).
@group(0) @binding(7) var dout_tex: texture_2d<f32>;

fn tex_quad(t: texture_2d<f32>, rows: TexRows, c: u32) -> mat4x4<f32> {
  return mat4x4<f32>(textureLoad(t, vec2<u32>(rows.x.x + c, rows.y.x), 0),
                     textureLoad(t, vec2<u32>(rows.x.y + c, rows.y.y), 0),
                     textureLoad(t, vec2<u32>(rows.x.z + c, rows.y.z), 0),
                     textureLoad(t, vec2<u32>(rows.x.w + c, rows.y.w), 0));
}

// lse or delta of query rows i .. i+3 (clamped) of head h.
fn row_values(b: u32, h: u32, i: u32, want_delta: bool) -> vec4<f32> {
  let base = (b * p.heads + h) * p.tq;
  let at = vec4<u32>(base) + min(vec4<u32>(i) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.tq - 1u));
  if (want_delta) {
    return vec4<f32>(delta_kv[at.x], delta_kv[at.y], delta_kv[at.z], delta_kv[at.w]);
  }
  return vec4<f32>(lse_kv[at.x], lse_kv[at.y], lse_kv[at.z], lse_kv[at.w]);
}

// Four keys of one invocation: their vec4-row starts, texels in the K/V textures, indices and
// validity (key < tmax).
struct Keys4 {
  kb: vec4<u32>,
  tx: vec4<u32>,
  ty: vec4<u32>,
  j: vec4<i32>,
  valid: vec4<bool>,
}

fn keys4(b: u32, kvh: u32, first: u32) -> Keys4 {
  let keys = vec4<u32>(first) + vec4<u32>(0u, WG, 2u * WG, 3u * WG);
  let last = p.tmax - 1u;
  let r = vec4<u32>(b * p.tmax) + min(keys, vec4<u32>(last));
  return Keys4(
    vec4<u32>(kv_index(b, min(keys.x, last), kvh), kv_index(b, min(keys.y, last), kvh),
              kv_index(b, min(keys.z, last), kvh), kv_index(b, min(keys.w, last), kvh)),
    (r & vec4<u32>((1u << p.kv_shift) - 1u)) * vec4<u32>(p.kv_heads * HD4) + vec4<u32>(kvh * HD4),
    r >> vec4<u32>(p.kv_shift),
    vec4<i32>(keys),
    keys < vec4<u32>(p.tmax),
  );
}

// Slice c of 16 query rows (4 quads) of q and of dout.
struct Rows16 {
  q0: mat4x4<f32>,
  q1: mat4x4<f32>,
  q2: mat4x4<f32>,
  q3: mat4x4<f32>,
  o0: mat4x4<f32>,
  o1: mat4x4<f32>,
  o2: mat4x4<f32>,
  o3: mat4x4<f32>,
}

// Texels of 16 query rows, by quads.
struct RowBlock {
  r0: TexRows,
  r1: TexRows,
  r2: TexRows,
  r3: TexRows,
}

fn rows16(rb: RowBlock, c: u32) -> Rows16 {
  return Rows16(tex_quad(q_tex, rb.r0, c), tex_quad(q_tex, rb.r1, c), tex_quad(q_tex, rb.r2, c),
                tex_quad(q_tex, rb.r3, c), tex_quad(dout_tex, rb.r0, c), tex_quad(dout_tex, rb.r1, c),
                tex_quad(dout_tex, rb.r2, c), tex_quad(dout_tex, rb.r3, c));
}

// lse and delta of 16 query rows i .. i+15 (columns = quads of rows).
struct RowTerms16 {
  lse: mat4x4<f32>,
  delta: mat4x4<f32>,
}

fn row_terms16(b: u32, h: u32, i: u32) -> RowTerms16 {
  return RowTerms16(
    mat4x4<f32>(row_values(b, h, i, false), row_values(b, h, i + 4u, false), row_values(b, h, i + 8u, false),
                row_values(b, h, i + 12u, false)),
    mat4x4<f32>(row_values(b, h, i, true), row_values(b, h, i + 4u, true), row_values(b, h, i + 8u, true),
                row_values(b, h, i + 12u, true)),
  );
}

// Slice c of k and of v of 4 keys (one column per key).
struct KV4 {
  k: mat4x4<f32>,
  v: mat4x4<f32>,
}

fn kv4(ks: Keys4, c: u32) -> KV4 {
  return KV4(
    mat4x4<f32>(textureLoad(k_tex, vec2<u32>(ks.tx.x + c, ks.ty.x), 0), textureLoad(k_tex, vec2<u32>(ks.tx.y + c, ks.ty.y), 0),
                textureLoad(k_tex, vec2<u32>(ks.tx.z + c, ks.ty.z), 0), textureLoad(k_tex, vec2<u32>(ks.tx.w + c, ks.ty.w), 0)),
    mat4x4<f32>(textureLoad(v_tex, vec2<u32>(ks.tx.x + c, ks.ty.x), 0), textureLoad(v_tex, vec2<u32>(ks.tx.y + c, ks.ty.y), 0),
                textureLoad(v_tex, vec2<u32>(ks.tx.z + c, ks.ty.z), 0), textureLoad(v_tex, vec2<u32>(ks.tx.w + c, ks.ty.w), 0)),
  );
}

// Adds slice c of the raw scores k·q and of dP = v·dout of 4 keys against 16 rows.
fn key_dots(kv: KV4, x: Rows16, s: ptr<function, Tile4>, dp: ptr<function, Tile4>) {
  (*s).r0 += dots16(kv.k[0], x.q0, x.q1, x.q2, x.q3);
  (*s).r1 += dots16(kv.k[1], x.q0, x.q1, x.q2, x.q3);
  (*s).r2 += dots16(kv.k[2], x.q0, x.q1, x.q2, x.q3);
  (*s).r3 += dots16(kv.k[3], x.q0, x.q1, x.q2, x.q3);
  (*dp).r0 += dots16(kv.v[0], x.o0, x.o1, x.o2, x.o3);
  (*dp).r1 += dots16(kv.v[1], x.o0, x.o1, x.o2, x.o3);
  (*dp).r2 += dots16(kv.v[2], x.o0, x.o1, x.o2, x.o3);
  (*dp).r3 += dots16(kv.v[3], x.o0, x.o1, x.o2, x.o3);
}

struct KeyGrads {
  p: mat4x4<f32>,
  ds: mat4x4<f32>,
}

// Probabilities and dS·slope of one key against 16 query rows (columns = quads of rows).
fn key_grads(s: mat4x4<f32>, dp: mat4x4<f32>, j: i32, i0: i32, i_end: i32, off: i32, len: i32,
             lse4: mat4x4<f32>, delta4: mat4x4<f32>) -> KeyGrads {
  var g = KeyGrads();
  for (var quad = 0; quad < 4; quad++) {
    let ok = query_mask(j, i0 + 4 * quad, i_end, off, len);
    let sc = capped4(s[quad]);
    let pr = select(vec4<f32>(0.0), exp(sc - lse4[quad]), ok);
    g.p[quad] = pr;
    g.ds[quad] = pr * (dp[quad] - delta4[quad]) * slope4(sc);
  }
  return g;
}

struct Grads4 {
  g0: KeyGrads,
  g1: KeyGrads,
  g2: KeyGrads,
  g3: KeyGrads,
}

fn grads4(ks: Keys4, s: Tile4, dp: Tile4, i0: i32, i_end: i32, off: i32, len: i32, t: RowTerms16) -> Grads4 {
  return Grads4(
    key_grads(s.r0, dp.r0, ks.j.x, i0, i_end, off, len, t.lse, t.delta),
    key_grads(s.r1, dp.r1, ks.j.y, i0, i_end, off, len, t.lse, t.delta),
    key_grads(s.r2, dp.r2, ks.j.z, i0, i_end, off, len, t.lse, t.delta),
    key_grads(s.r3, dp.r3, ks.j.w, i0, i_end, off, len, t.lse, t.delta),
  );
}

// dk, dv of one key += its terms from two blocks of 16 rows (one read-modify-write for 32 rows:
// with q, dout, k and v in textures these storage updates were the largest cost).
fn accumulate_kv(valid: bool, at: u32, x: Rows16, g: KeyGrads, y: Rows16, h: KeyGrads) {
  if (valid) {
    dk[at] += mix16(x.q0, x.q1, x.q2, x.q3, g.ds) + mix16(y.q0, y.q1, y.q2, y.q3, h.ds);
    dv[at] += mix16(x.o0, x.o1, x.o2, x.o3, g.p) + mix16(y.o0, y.o1, y.o2, y.o3, h.p);
  }
}

fn accumulate_keys(ks: Keys4, c: u32, x: Rows16, g: Grads4, y: Rows16, h: Grads4) {
  accumulate_kv(ks.valid.x, ks.kb.x + c, x, g.g0, y, h.g0);
  accumulate_kv(ks.valid.y, ks.kb.y + c, x, g.g1, y, h.g1);
  accumulate_kv(ks.valid.z, ks.kb.z + c, x, g.g2, y, h.g2);
  accumulate_kv(ks.valid.w, ks.kb.w + c, x, g.g3, y, h.g3);
}

// dS of key j against rows i .. i+3 (rows past tq are not stored: they belong to the next head).
fn store_ds4(j: u32, row_base: u32, i: u32, ds: vec4<f32>) {
  let at = (row_base + i) * p.ds_pitch + j;
  if (i < p.tq) { ds_out[at] = ds.x; }
  if (i + 1u < p.tq) { ds_out[at + p.ds_pitch] = ds.y; }
  if (i + 2u < p.tq) { ds_out[at + 2u * p.ds_pitch] = ds.z; }
  if (i + 3u < p.tq) { ds_out[at + 3u * p.ds_pitch] = ds.w; }
}

// dS of one key against 16 query rows; each (row, key) has exactly one writer, the key's owner.
fn store_key_ds(valid: bool, j: i32, row_base: u32, i0: u32, ds: mat4x4<f32>) {
  if (valid && p.ds_pitch > 0u) {
    store_ds4(u32(j), row_base, i0, ds[0]);
    store_ds4(u32(j), row_base, i0 + 4u, ds[1]);
    store_ds4(u32(j), row_base, i0 + 8u, ds[2]);
    store_ds4(u32(j), row_base, i0 + 12u, ds[3]);
  }
}

fn store_keys_ds(ks: Keys4, row_base: u32, i0: u32, g: Grads4) {
  store_key_ds(ks.valid.x, ks.j.x, row_base, i0, g.g0.ds);
  store_key_ds(ks.valid.y, ks.j.y, row_base, i0, g.g1.ds);
  store_key_ds(ks.valid.z, ks.j.z, row_base, i0, g.g2.ds);
  store_key_ds(ks.valid.w, ks.j.w, row_base, i0, g.g3.ds);
}

@compute @workgroup_size(WG)
fn attention_backward_dkdv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  let kvh = wid.y;
  let group = p.heads / p.kv_heads;
  let block = wid.x * WG * RQ;
  let off = q_offset[b];
  let len = kv_len[b];
  let ka = keys4(b, kvh, block + lid.x);
  let kz = keys4(b, kvh, block + lid.x + 4u * WG);
  // Query rows that can see a key of this block: pos ≥ block, and pos < last key + window.
  let i_begin = max(0, i32(block) - off);
  var i_end = i32(p.tq);
  if (p.window > 0u) {
    i_end = min(i_end, i32(min(block + WG * RQ, p.tmax) - 1u) + i32(p.window) - off);
  }
  for (var g = 0u; g < group; g++) {
    let h = kvh * group + g;
    // Query rows in pairs of 16-row blocks (u, w): every k/v fetch and dk/dv update serves 32 rows.
    for (var i0 = i_begin; i0 < i_end; i0 += 2 * i32(KB)) {
      let iu = u32(i0);
      let iw = iu + KB;
      let u = RowBlock(tex_rows(b, iu, h), tex_rows(b, iu + 4u, h), tex_rows(b, iu + 8u, h), tex_rows(b, iu + 12u, h));
      let w = RowBlock(tex_rows(b, iw, h), tex_rows(b, iw + 4u, h), tex_rows(b, iw + 8u, h), tex_rows(b, iw + 12u, h));
      var sau = Tile4();
      var dpau = Tile4();
      var szu = Tile4();
      var dpzu = Tile4();
      var saw = Tile4();
      var dpaw = Tile4();
      var szw = Tile4();
      var dpzw = Tile4();
      for (var c = 0u; c < HD4; c++) {
        let kva = kv4(ka, c);
        let kvz = kv4(kz, c);
        let xu = rows16(u, c);
        key_dots(kva, xu, &sau, &dpau);
        key_dots(kvz, xu, &szu, &dpzu);
        let xw = rows16(w, c);
        key_dots(kva, xw, &saw, &dpaw);
        key_dots(kvz, xw, &szw, &dpzw);
      }
      let tu = row_terms16(b, h, iu);
      let tw = row_terms16(b, h, iw);
      let gau = grads4(ka, sau, dpau, i0, i_end, off, len, tu);
      let gzu = grads4(kz, szu, dpzu, i0, i_end, off, len, tu);
      let gaw = grads4(ka, saw, dpaw, i0 + i32(KB), i_end, off, len, tw);
      let gzw = grads4(kz, szw, dpzw, i0 + i32(KB), i_end, off, len, tw);
      let row_base = (b * p.heads + h) * p.tq;
      store_keys_ds(ka, row_base, iu, gau);
      store_keys_ds(kz, row_base, iu, gzu);
      store_keys_ds(ka, row_base, iw, gaw);
      store_keys_ds(kz, row_base, iw, gzw);
      for (var c = 0u; c < HD4; c++) {
        let xu = rows16(u, c);
        let xw = rows16(w, c);
        accumulate_keys(ka, c, xu, gau, xw, gaw);
        accumulate_keys(kz, c, xu, gzu, xw, gzw);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward with the dS scratch (when it fits one binding): attention_backward_delta, then
// attention_backward_dkdv (which also stores dS), then attention_backward_dq_ds, which reads dS
// instead of recomputing the scores and dP: per 16-key block and 8 rows it loads 32 vec4 of dS
// where the recomputing kernel loads ~770 vec4 of q, k, dout and v.

@group(0) @binding(1) var<storage, read> delta_dout: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> delta_out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> delta_rows: array<f32>;

// delta of one (token row, head) = Σ_d dout·out; grid x = token rows b·tq + i, y = head.
@compute @workgroup_size(WG)
fn attention_backward_delta(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  let h = gid.y;
  if (row >= p.batch * p.tq) {
    return;
  }
  let base = (row * p.heads + h) * HD4;
  var d = vec4<f32>(0.0);
  for (var c = 0u; c < HD4; c++) {
    d += delta_dout[base + c] * delta_out[base + c];
  }
  delta_rows[((row / p.tq) * p.heads + h) * p.tq + row % p.tq] = sum4(d);
}

@group(0) @binding(1) var<storage, read> ds_in: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dq_out: array<vec4<f32>>;

// dS of one row against keys j0 … j0+15 (j0 a multiple of 4), 0 where the key is not visible:
// those entries may never have been written.
fn ds_row(t: RowTile, pos: i32, j0: i32, j_end: i32) -> mat4x4<f32> {
  let at = (lse_index(t, pos) * p.ds_pitch + u32(j0)) / 4u;
  return mat4x4<f32>(
    select(vec4<f32>(0.0), ds_in[at], key_mask(pos, j0, j_end)),
    select(vec4<f32>(0.0), ds_in[at + 1u], key_mask(pos, j0 + 4, j_end)),
    select(vec4<f32>(0.0), ds_in[at + 2u], key_mask(pos, j0 + 8, j_end)),
    select(vec4<f32>(0.0), ds_in[at + 3u], key_mask(pos, j0 + 12, j_end)),
  );
}

fn ds_half(t: RowTile, h: Half, j0: i32, j_end: i32) -> Tile4 {
  return Tile4(ds_row(t, h.pos.x, j0, j_end), ds_row(t, h.pos.y, j0, j_end), ds_row(t, h.pos.z, j0, j_end),
               ds_row(t, h.pos.w, j0, j_end));
}

fn add_dq(valid: bool, at: u32, add: vec4<f32>) {
  if (valid) {
    dq_out[at] += add;
  }
}

// Slice c of 16 K or V rows (4 quads) from key row kr (rows past `last` repeat it).
struct Slice16 {
  k0: mat4x4<f32>,
  k1: mat4x4<f32>,
  k2: mat4x4<f32>,
  k3: mat4x4<f32>,
}

fn slice16(t: texture_2d<f32>, kr: u32, kvh: u32, last: u32, c: u32) -> Slice16 {
  return Slice16(kv_quads(t, kr, kvh, last, c, 0u), kv_quads(t, kr, kvh, last, c, 1u),
                 kv_quads(t, kr, kvh, last, c, 2u), kv_quads(t, kr, kvh, last, c, 3u));
}

// Σ over two 16-row slices of rows·weights (each weight column belongs to a quad of rows).
fn mix32(a: Slice16, wa: mat4x4<f32>, z: Slice16, wz: mat4x4<f32>) -> vec4<f32> {
  return mix16(a.k0, a.k1, a.k2, a.k3, wa) + mix16(z.k0, z.k1, z.k2, z.k3, wz);
}

// dq of 4 rows += dS·K over two 16-key blocks (one read-modify-write per 32 keys).
fn add_dq_half(h: Half, c: u32, a: Slice16, ga: Tile4, z: Slice16, gz: Tile4) {
  add_dq(h.valid.x, h.base.x + c, mix32(a, ga.r0, z, gz.r0));
  add_dq(h.valid.y, h.base.y + c, mix32(a, ga.r1, z, gz.r1));
  add_dq(h.valid.z, h.base.z + c, mix32(a, ga.r2, z, gz.r2));
  add_dq(h.valid.w, h.base.w + c, mix32(a, ga.r3, z, gz.r3));
}

@compute @workgroup_size(WG)
fn attention_backward_dq_ds(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = row_tile(lid, wid);
  // Keys in pairs of 16-key blocks (a, z); a z block past the last key is all masked (dS 0) and
  // reads the last key's row.
  for (var j0 = t.keys.x; j0 < t.keys.y; j0 += 2 * i32(KB)) {
    let j1 = j0 + i32(KB);
    let kra = t.b * p.tmax + u32(j0);
    let lasta = u32(t.keys.y - 1 - j0);
    let krz = t.b * p.tmax + u32(min(j1, t.keys.y - 1));
    let lastz = u32(max(t.keys.y - 1 - j1, 0));
    let ga_lo = ds_half(t, t.lo, j0, t.keys.y);
    let ga_hi = ds_half(t, t.hi, j0, t.keys.y);
    let gz_lo = ds_half(t, t.lo, j1, t.keys.y);
    let gz_hi = ds_half(t, t.hi, j1, t.keys.y);
    for (var c = 0u; c < HD4; c++) {
      let a = slice16(k_tex, kra, t.kvh, lasta, c);
      let z = slice16(k_tex, krz, t.kvh, lastz, c);
      add_dq_half(t.lo, c, a, ga_lo, z, gz_lo);
      add_dq_half(t.hi, c, a, ga_hi, z, gz_hi);
    }
  }
}

// Packs token rows [rows × W texels] (W = heads·HD4) into a row texture (see Params.tex_shift);
// a 1-D grid over all texels, folded into 2-D by grid_stride.
@group(0) @binding(1) var<storage, read> pack_src: array<vec4<f32>>;
@group(0) @binding(2) var pack_dst: texture_storage_2d<rgba32float, write>;

@compute @workgroup_size(WG)
fn attention_pack_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x + gid.y * p.grid_stride;
  let width = p.heads * HD4;
  if (n >= p.batch * p.tq * width) {
    return;
  }
  let r = n / width;
  let x = (r & ((1u << p.tex_shift) - 1u)) * width + n % width;
  textureStore(pack_dst, vec2<u32>(x, r >> p.tex_shift), pack_src[n]);
}

// ---------------------------------------------------------------------------------------------
// Decoding path (few query rows, long cache): the row tiles above would leave 63 of 64 rows idle,
// so the work is split the other way — scores with lanes along keys, a softmax per row, then
// P·V with lanes along the head dimension — through scores materialised in scratch
// [B·H·Tq × Tmax]. Per new token, 4 heads of a KV group and vec4 of D: 2 loads per key for the
// scores (4 keys × 4 heads per 8 loads) and 5 per key for P·V (1 value slice, 4 probabilities),
// against ~3.5 per key and head (for 64 rows, 1 used) in the tiled kernels.

@group(0) @binding(1) var<storage, read> dec_q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dec_k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dec_offset: array<i32>;
@group(0) @binding(4) var<storage, read> dec_len: array<i32>;
@group(0) @binding(5) var<storage, read_write> dec_scores: array<f32>;

// Visible keys of the row at pos (strided keys, so not key_mask's consecutive quad).
fn visible4(pos: i32, keys: vec4<i32>, len: i32) -> vec4<bool> {
  var ok = (keys <= vec4<i32>(pos)) & (keys < vec4<i32>(len));
  if (p.window > 0u) {
    ok = ok & (keys > vec4<i32>(pos - i32(p.window)));
  }
  return ok;
}

// The query heads of one KV group are taken 4 at a time (grid y = KV head × head chunk), so every
// loaded key (value) slice serves 4 heads — GQA models share each K/V row across 2–8 heads.
struct HeadChunk {
  kvh: u32,
  // The 4 heads (clamped into the group) and which of them exist.
  heads: vec4<u32>,
  valid: vec4<bool>,
}

fn head_chunk(y: u32) -> HeadChunk {
  let group = p.heads / p.kv_heads;
  let chunks = (group + 3u) / 4u;
  let kvh = y / chunks;
  let inner = vec4<u32>((y % chunks) * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  return HeadChunk(kvh, vec4<u32>(kvh * group) + min(inner, vec4<u32>(group - 1u)), inner < vec4<u32>(group));
}

// Start of the score row of (b, head, query row i).
fn score_row(b: u32, h: u32, i: u32) -> u32 {
  return ((b * p.heads + h) * p.tq + i) * p.tmax;
}

// One invocation = 4 keys (lane, lane + WG, …) × 4 heads of one query row; masked keys get NEG.
@compute @workgroup_size(WG)
fn attention_decode_scores(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z / p.tq;
  let i = wid.z % p.tq;
  let hc = head_chunk(wid.y);
  let pos = dec_offset[b] + i32(i);
  let keys = vec4<u32>(wid.x * WG * 4u + lid.x) + vec4<u32>(0u, WG, 2u * WG, 3u * WG);
  let last = p.tmax - 1u;
  let kb = vec4<u32>(kv_index(b, min(keys.x, last), hc.kvh), kv_index(b, min(keys.y, last), hc.kvh),
                     kv_index(b, min(keys.z, last), hc.kvh), kv_index(b, min(keys.w, last), hc.kvh));
  let ok = visible4(pos, vec4<i32>(keys), dec_len[b]);
  // Column t: the 4 keys' raw scores for head t.
  var s = mat4x4<f32>();
  if (any(ok)) {
    let qb = vec4<u32>(q_index(b, i, hc.heads.x), q_index(b, i, hc.heads.y), q_index(b, i, hc.heads.z),
                       q_index(b, i, hc.heads.w));
    for (var c = 0u; c < HD4; c++) {
      let km = mat4x4<f32>(dec_k[kb.x + c], dec_k[kb.y + c], dec_k[kb.z + c], dec_k[kb.w + c]);
      s[0] += dec_q[qb.x + c] * km;
      s[1] += dec_q[qb.y + c] * km;
      s[2] += dec_q[qb.z + c] * km;
      s[3] += dec_q[qb.w + c] * km;
    }
  }
  for (var t = 0u; t < 4u; t++) {
    if (!hc.valid[t]) {
      continue;
    }
    let sc = select(vec4<f32>(NEG), capped4(s[t]), ok);
    let row = score_row(b, hc.heads[t], i);
    for (var r = 0u; r < 4u; r++) {
      if (keys[r] < p.tmax) {
        dec_scores[row + keys[r]] = sc[r];
      }
    }
  }
}

// One workgroup of RED lanes per row: lse, then the probabilities in place (masked → 0).
const RED: u32 = 64u;

@group(0) @binding(1) var<storage, read_write> sm_scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> sm_lse: array<f32>;

var<workgroup> part_m: array<f32, RED>;
var<workgroup> part_s: array<f32, RED>;
var<workgroup> row_lse: f32;

@compute @workgroup_size(RED)
fn attention_decode_softmax(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = wid.x + wid.y * p.grid_stride;
  if (row >= p.batch * p.heads * p.tq) {
    return;
  }
  let base = row * p.tmax;
  var m = NEG;
  var sum = 0.0;
  for (var j = lid.x; j < p.tmax; j += RED) {
    let z = sm_scores[base + j];
    let mx = max(m, z);
    sum = sum * exp(m - mx) + select(0.0, exp(z - mx), z > NEG);
    m = mx;
  }
  part_m[lid.x] = m;
  part_s[lid.x] = sum;
  workgroupBarrier();
  for (var stride = RED / 2u; stride > 0u; stride /= 2u) {
    if (lid.x < stride) {
      let m2 = part_m[lid.x + stride];
      let mx = max(part_m[lid.x], m2);
      part_s[lid.x] = part_s[lid.x] * exp(part_m[lid.x] - mx) + part_s[lid.x + stride] * exp(m2 - mx);
      part_m[lid.x] = mx;
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    // A row that sees no key gets lse NEG and all-zero probabilities.
    row_lse = select(NEG, part_m[0] + log(part_s[0]), part_s[0] > 0.0);
    sm_lse[row] = row_lse;
  }
  let l = workgroupUniformLoad(&row_lse);
  for (var j = lid.x; j < p.tmax; j += RED) {
    let z = sm_scores[base + j];
    sm_scores[base + j] = select(0.0, exp(z - l), z > NEG && l > NEG);
  }
}

// out[b, i, h, c] = Σ_j P[j]·v[j, c]: lanes along the vec4 slices of the head dimension.
@group(0) @binding(1) var<storage, read> pv_probs: array<f32>;
@group(0) @binding(2) var<storage, read> pv_v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> pv_offset: array<i32>;
@group(0) @binding(4) var<storage, read> pv_len: array<i32>;
@group(0) @binding(5) var<storage, read_write> pv_out: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn attention_decode_pv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * WG + lid.x;
  if (c >= HD4) {
    return;
  }
  let b = wid.z / p.tq;
  let i = wid.z % p.tq;
  let hc = head_chunk(wid.y);
  let pos = pv_offset[b] + i32(i);
  var j = 0;
  if (p.window > 0u) {
    j = max(0, pos - i32(p.window) + 1);
  }
  let j_end = min(pos + 1, pv_len[b]);
  let rows = vec4<u32>(score_row(b, hc.heads.x, i), score_row(b, hc.heads.y, i), score_row(b, hc.heads.z, i),
                       score_row(b, hc.heads.w, i));
  // Column t: head t's slice c of the output.
  var acc = mat4x4<f32>();
  for (; j < j_end; j++) {
    let vv = pv_v[kv_index(b, u32(j), hc.kvh) + c];
    let jj = u32(j);
    acc[0] += pv_probs[rows.x + jj] * vv;
    acc[1] += pv_probs[rows.y + jj] * vv;
    acc[2] += pv_probs[rows.z + jj] * vv;
    acc[3] += pv_probs[rows.w + jj] * vv;
  }
  for (var t = 0u; t < 4u; t++) {
    if (hc.valid[t]) {
      pv_out[q_index(b, i, hc.heads[t]) + c] = acc[t];
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
