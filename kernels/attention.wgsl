// Causal self-attention with GQA, HF sliding window and Gemma-2 logit soft-capping.
//
// Layouts (row-major, vec4 along head_dim, so head_dim % 4 == 0):
//   q, out, dout, dq: [B·Tq × H × D]; k, v, dk, dv: [B × Tmax × KVH × D] (a KV cache in decoding);
//   lse, delta: [B × H × Tq]; q_offset, kv_len: [B] (absolute position of q row 0; valid keys).
// Key j is visible from a query at absolute position pos when j ≤ pos, j < kv_len and, with a
// window w > 0, j > pos − w. Scores: s = scale·q·k, then s = cap·tanh(s/cap) when cap > 0.
//
// Training path (many query rows): the score matrix of a chunk of query rows is materialised in
// scratch textures [B·H·rows × width] (4 MiB per matrix at the reference decoder, B 4, T 256,
// H 4), so that every kernel is one small register tile in one loop:
//   forward   attention_scores (S, row max) → attention_rows_times_kv (out = softmax(S)·V, lse);
//   backward  attention_backward_delta (Σ dout·out) → [attention_scores, unless the launcher kept
//             the forward's S] → attention_backward_ds (P and dS, with dP = dout·vᵀ) →
//             attention_rows_times_kv (dq += dS·K) and attention_key_grads (dk += dSᵀ·Q and
//             dv += Pᵀ·dout in one pass).
// Why this shape: llvmpipe's JIT time grows steeply with the SIMD values live across control
// flow, and every storage access is a per-lane loop, every uniform `if` a branch. The earlier
// flash kernels kept 128–512 accumulators across several loops, masks and storage updates and
// took 1–21 s each to compile cold. Here: 128 accumulators in one loop over head_dim (a uniform
// bound, so NIR does not unroll it), 256 in the one loop over rows of attention_key_grads; tile
// epilogues and stores in loops whose bound NIR cannot see (Params.four) and that pick tiles with
// selects (a dynamic index would spill them to scratch memory); stores out of a texture's range
// instead of branches; pipeline constants or selects instead of uniform branches (soft-capping,
// the window). Cold JIT of the five pipelines of a training step of the reference decoder (empty
// Mesa cache, step_profile --jit): 0.02–0.19 s each, ~0.73 s in all, against 3.8–4.9 s (forward)
// and 7.5–21 s (dk/dv) for the flash kernels.
// Cost model per 8 lanes: a texel fetch ~10–17 ns, a texel store ~70 ns, a storage vec4 load
// ~41 ns, an FMA ~0.4 ns. The tiles: 8 rows × 16 keys for q·kᵀ and dout·vᵀ (24 fetches per 128
// vec4 dot products), 8 rows × 4 vec4 of D for P·V and dS·K (24 per 128 vec4 FMAs), 8 keys × 4
// vec4 of D for dSᵀ·Q and Pᵀ·dout (12 per 64); rows (keys) run in 64-row blocks. Measured at the
// reference shape, the work is spread thin: in attention_scores the epilogue (masks, soft-cap,
// stores, row max) takes ~40 % and the texel stores alone ~20 %; halving its fetches saved ~10 %.
// Tried and not kept (each within ±5 % of the kernels above, several at 1.5–3× their JIT): tiles
// of 8 × 32 keys or 8 rows × 8 vec4 of D, 16-lane workgroups, two rows per step, straight-line
// epilogues, key-contiguous scratch stores, explicit fma, a second loop that skips the empty
// quarter of diagonal blocks. Storage-buffer scratch stores save ~15 % of attention_backward_ds
// but then need a copy into a texture for the readers.
// Row tiles: one invocation owns 8 query rows (lanes along rows: rows first + lane + WG·k), and
// the keys a workgroup's rows can see are one uniform range; per-row masks do the rest. Key
// tiles: one invocation owns 8 keys (two quads of 4, lanes along quads). Every output element
// is summed by one invocation in a fixed order: deterministic, no atomics, no barriers.
// Pitfall: naga does not re-zero a `var` declared without initialiser inside a loop body on each
// iteration; accumulators here are initialised explicitly.

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
  // Element stride of one grid row for the 2-D grids of element-wise kernels.
  grid_stride: u32,
  // Scratch textures hold one row per (sequence, head, query row of the chunk): S (and the row
  // maxima) from attention_scores, P | dS from attention_backward_ds, each matrix `width()`
  // floats wide; `col`: the first column (float) of the matrix a product kernel reads.
  col: u32,
  // attention_backward_ds reads S with these rows per (sequence, head), from query row
  // score_row0 (the forward's whole S when the launcher kept it, else this chunk's).
  score_rows: u32,
  score_row0: u32,
  // Row textures (q, dout): token row r of W = heads·HD4 texels lives at texel
  // ((r & (2^tex_shift − 1))·W + x, r >> tex_shift), 2^tex_shift rows side by side.
  tex_shift: u32,
  // The same for the K/V row textures (rows b·tmax + j of W = kv_heads·HD4 texels).
  kv_shift: u32,
  // Query rows [row0, row0 + rows) of every sequence and head form this chunk of the scratch.
  row0: u32,
  rows: u32,
  // Always 4: a loop bound NIR cannot see, so that epilogue loops stay loops (one store site
  // instead of dozens: each storage access is a per-lane loop in llvmpipe, and JIT time grows
  // with them).
  four: u32,
  // attention_rows_times_kv: 1 for out = softmax(S)·V and lse (forward), 0 for dq += dS·K. A
  // uniform, not a pipeline constant: one pipeline JITs for both, and the backward's wasted
  // exponentials cost ~1 % of a training step.
  forward: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

const NEG: f32 = -3.0e38;

override WG: u32 = 8u;
override HD4: u32 = 16u;
// A pipeline constant rather than a uniform branch (see the header).
// Logit soft-capping on (p.softcap > 0).
override SOFTCAP: bool = false;

// Scaled and optionally soft-capped scores of raw dot products.
fn capped4(raw: vec4<f32>) -> vec4<f32> {
  let s = raw * p.scale;
  if (SOFTCAP) {
    return tanh(s / p.softcap) * p.softcap;
  }
  return s;
}

// d(score)/d(raw dot product), given the scores.
fn slope4(s: vec4<f32>) -> vec4<f32> {
  if (SOFTCAP) {
    let t = s / p.softcap;
    return p.scale * (1.0 - t * t);
  }
  return vec4<f32>(p.scale);
}

// Whether each pair (key keys[n], query at pos[n]) is visible. Without a window the lower bound
// is −2³¹ + 1 (a select, not a branch).
fn visible(pos: vec4<i32>, keys: vec4<i32>, len: i32) -> vec4<bool> {
  let after = select(vec4<i32>(-2147483647), pos - vec4<i32>(i32(p.window)), p.window > 0u);
  return (keys <= pos) & (keys < vec4<i32>(len)) & (keys > after);
}

fn max4(v: vec4<f32>) -> f32 {
  return max(max(v.x, v.y), max(v.z, v.w));
}

fn sum4(v: vec4<f32>) -> f32 {
  return v.x + v.y + v.z + v.w;
}

// Matrix n of four, and column k of a matrix, by selects: a dynamic index would put them in
// scratch memory.
fn pick(n: u32, a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>, d: mat4x4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(column(n, a[0], b[0], c[0], d[0]), column(n, a[1], b[1], c[1], d[1]),
                     column(n, a[2], b[2], c[2], d[2]), column(n, a[3], b[3], c[3], d[3]));
}

fn column(k: u32, a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>) -> vec4<f32> {
  return select(select(a, b, k == 1u), select(c, d, k == 3u), k >= 2u);
}

// Matrix n & 3 of the first four (n < p.four) or of the second four: the store loops walk 2·p.four
// slices of two register tiles.
fn pick_of_two(n: u32, a0: mat4x4<f32>, a1: mat4x4<f32>, a2: mat4x4<f32>, a3: mat4x4<f32>, b0: mat4x4<f32>,
               b1: mat4x4<f32>, b2: mat4x4<f32>, b3: mat4x4<f32>) -> mat4x4<f32> {
  let second = n >= p.four;
  let a = pick(n & 3u, a0, a1, a2, a3);
  let b = pick(n & 3u, b0, b1, b2, b3);
  return mat4x4<f32>(select(a[0], b[0], second), select(a[1], b[1], second), select(a[2], b[2], second),
                     select(a[3], b[3], second));
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

// Slice c of 4 token rows as the columns of a matrix.
fn tex_quad(t: texture_2d<f32>, rows: TexRows, c: u32) -> mat4x4<f32> {
  return mat4x4<f32>(textureLoad(t, vec2<u32>(rows.x.x + c, rows.y.x), 0),
                     textureLoad(t, vec2<u32>(rows.x.y + c, rows.y.y), 0),
                     textureLoad(t, vec2<u32>(rows.x.z + c, rows.y.z), 0),
                     textureLoad(t, vec2<u32>(rows.x.w + c, rows.y.w), 0));
}

// Texel coordinates of slice 0 of keys j … j+3 of sequence b, KV head kvh (keys past `last`
// repeat it) in the K/V row textures.
fn key_texels(b: u32, kvh: u32, j: i32, last: i32) -> TexRows {
  let r = vec4<u32>(b * p.tmax) + vec4<u32>(min(vec4<i32>(j) + vec4<i32>(0, 1, 2, 3), vec4<i32>(last)));
  let x = (r & vec4<u32>((1u << p.kv_shift) - 1u)) * vec4<u32>(p.kv_heads * HD4) + vec4<u32>(kvh * HD4);
  return TexRows(x, r >> vec4<u32>(p.kv_shift));
}

// ---------------------------------------------------------------------------------------------
// Row tiles: 8 query rows per invocation, in two halves of 4 (components of a vec4).

struct Half {
  tex: TexRows,
  // Query row indices (clamped into the chunk), which exist, absolute positions.
  row: vec4<u32>,
  valid: vec4<bool>,
  pos: vec4<i32>,
}

// Query rows first, first + WG, first + 2·WG, first + 3·WG of head h.
fn row_half(b: u32, h: u32, off: i32, first: u32) -> Half {
  let rows = vec4<u32>(first) + vec4<u32>(0u, WG, 2u * WG, 3u * WG);
  let end = p.row0 + p.rows;
  let clamped = min(rows, vec4<u32>(end - 1u));
  return Half(tex_rows_of(b, clamped, h), clamped, rows < vec4<u32>(end), vec4<i32>(off) + vec4<i32>(rows));
}

struct RowTile {
  b: u32,
  h: u32,
  kvh: u32,
  lo: Half,
  hi: Half,
  // Keys [x, y) that any row of the workgroup can see (x a multiple of 4, y ≤ kv_len).
  keys: vec2<i32>,
}

// The rows of lane lid in row block x of head h, sequence b.
// Row block x counts from the last block, whose rows see the most keys: workgroups run in grid
// order, so the longest ones start first and the two threads finish together.
fn row_tile(lid: u32, x: u32, h: u32, b: u32) -> RowTile {
  let block = p.row0 + ((p.rows - 1u) / (WG * 8u) - x) * WG * 8u;
  let off = q_offset[b];
  let last = min(block + WG * 8u, p.row0 + p.rows) - 1u;
  var j_begin = 0;
  if (p.window > 0u) {
    j_begin = max(0, off + i32(block) - i32(p.window) + 1) & ~3;
  }
  return RowTile(
    b,
    h,
    h / (p.heads / p.kv_heads),
    row_half(b, h, off, block + lid),
    row_half(b, h, off, block + lid + 4u * WG),
    vec2<i32>(j_begin, min(off + i32(last) + 1, kv_len[b])),
  );
}

// Chunks of 4 vec4 slices of the head dimension (one per invocation of the product kernels).
fn d_chunks() -> u32 {
  return (p.head_dim / 4u + 3u) / 4u;
}

fn width() -> u32 {
  return (p.tmax + 3u) & ~3u;
}

// Texel rows of query rows `rows` (of head h) in the scratch texture.
fn scratch_rows(b: u32, h: u32, rows: vec4<u32>) -> vec4<u32> {
  return vec4<u32>((b * p.heads + h) * p.rows) + rows - vec4<u32>(p.row0);
}

// Half lo or hi of a row tile.
fn tile_half(t: RowTile, hi: bool) -> Half {
  return Half(TexRows(select(t.lo.tex.x, t.hi.tex.x, hi), select(t.lo.tex.y, t.hi.tex.y, hi)),
              select(t.lo.row, t.hi.row, hi), select(t.lo.valid, t.hi.valid, hi), select(t.lo.pos, t.hi.pos, hi));
}

// Index in lse / delta of query rows `rows`.
fn lse_at(t: RowTile, rows: vec4<u32>) -> vec4<u32> {
  return vec4<u32>((t.b * p.heads + t.h) * p.tq) + rows;
}

// Mask of keys j … j+3 (columns) against the 4 rows of a half (components).
struct Mask4 {
  m0: vec4<bool>,
  m1: vec4<bool>,
  m2: vec4<bool>,
  m3: vec4<bool>,
}

fn quad_mask(t: RowTile, h: Half, j: i32) -> Mask4 {
  let n = t.keys.y;
  return Mask4(h.valid & visible(h.pos, vec4<i32>(j), n), h.valid & visible(h.pos, vec4<i32>(j + 1), n),
               h.valid & visible(h.pos, vec4<i32>(j + 2), n), h.valid & visible(h.pos, vec4<i32>(j + 3), n));
}

// Dot products of the 8 rows of a tile (row texture `rows`) with keys j … j+15 (key texture
// `keys`, rows past `last` repeat it), over the head dimension: tiles of rows of a half
// (components) × a quad of keys (columns), lo a … d and hi a … d (24 fetches per 128 vec4 dot
// products).
struct Dots {
  la: mat4x4<f32>,
  lb: mat4x4<f32>,
  lc: mat4x4<f32>,
  ld: mat4x4<f32>,
  ha: mat4x4<f32>,
  hb: mat4x4<f32>,
  hc: mat4x4<f32>,
  hd: mat4x4<f32>,
}

fn row_key_dots(t: RowTile, rows: texture_2d<f32>, keys: texture_2d<f32>, j: i32, last: i32) -> Dots {
  let ta = key_texels(t.b, t.kvh, j, last);
  let tb = key_texels(t.b, t.kvh, j + 4, last);
  let tc = key_texels(t.b, t.kvh, j + 8, last);
  let td = key_texels(t.b, t.kvh, j + 12, last);
  var la = mat4x4<f32>();
  var lb = mat4x4<f32>();
  var lc = mat4x4<f32>();
  var ld = mat4x4<f32>();
  var ha = mat4x4<f32>();
  var hb = mat4x4<f32>();
  var hc = mat4x4<f32>();
  var hd = mat4x4<f32>();
  for (var c = 0u; c < p.head_dim / 4u; c++) {
    let ka = tex_quad(keys, ta, c);
    let kb = tex_quad(keys, tb, c);
    let kc = tex_quad(keys, tc, c);
    let kd = tex_quad(keys, td, c);
    let rl = transpose(tex_quad(rows, t.lo.tex, c));
    let rh = transpose(tex_quad(rows, t.hi.tex, c));
    la += rl * ka;
    lb += rl * kb;
    lc += rl * kc;
    ld += rl * kd;
    ha += rh * ka;
    hb += rh * kb;
    hc += rh * kc;
    hd += rh * kd;
  }
  return Dots(la, lb, lc, ld, ha, hb, hc, hd);
}

// Tile n of the 8 (lo a … d, then hi a … d), by selects.
fn tile(d: Dots, n: u32) -> mat4x4<f32> {
  let hi = n >= p.four;
  let l = pick(n & 3u, d.la, d.lb, d.lc, d.ld);
  let h = pick(n & 3u, d.ha, d.hb, d.hc, d.hd);
  return mat4x4<f32>(select(l[0], h[0], hi), select(l[1], h[1], hi), select(l[2], h[2], hi), select(l[3], h[3], hi));
}

@group(0) @binding(1) var q_tex: texture_2d<f32>;
@group(0) @binding(2) var k_tex: texture_2d<f32>;
@group(0) @binding(3) var<storage, read> q_offset: array<i32>;
@group(0) @binding(4) var<storage, read> kv_len: array<i32>;

// ---------------------------------------------------------------------------------------------
// Forward, kernel 1: capped, masked scores S (NEG where masked) of 8 rows × all visible keys,
// 8 keys per step, and the max of each row (in texel column width/4 of the scratch). Σexp and
// lse come with the next kernel, which takes the exponentials anyway.

// The score scratch: a texture of [B·H·rows × (width/4 + 1)] texels (texel fetches cost less
// than half a storage load to read back).
@group(0) @binding(5) var scratch_out: texture_storage_2d<rgba32float, write>;

// Scores of 4 rows (components) × keys j … j+3 (columns), NEG where masked.
fn masked_scores(raw: mat4x4<f32>, m: Mask4) -> mat4x4<f32> {
  return mat4x4<f32>(select(vec4<f32>(NEG), capped4(raw[0]), m.m0), select(vec4<f32>(NEG), capped4(raw[1]), m.m1),
                     select(vec4<f32>(NEG), capped4(raw[2]), m.m2), select(vec4<f32>(NEG), capped4(raw[3]), m.m3));
}

fn col_max(s: mat4x4<f32>) -> vec4<f32> {
  return max(max(s[0], s[1]), max(s[2], s[3]));
}

// Texel rows of a half in the scratch; rows that do not exist get a row past any texture, whose
// stores are dropped (branches around stores multiply llvmpipe's JIT time).
fn store_rows(t: RowTile, h: Half) -> vec4<u32> {
  return scratch_rows(t.b, t.h, h.row) | select(vec4<u32>(0x40000000u), vec4<u32>(0u), h.valid);
}

// Stores a tile of 4 rows (components) × keys j … j+3 (columns) at column col + j of the scratch,
// one texel per row, in a loop (see Params.four); quads past the matrix width are outside the row.
fn store_tile(t: RowTile, h: Half, j: u32, col: u32, s: mat4x4<f32>) {
  let y = store_rows(t, h) | vec4<u32>(select(0u, 0x40000000u, j >= width()));
  let r = transpose(s);
  for (var k = 0u; k < p.four; k++) {
    textureStore(scratch_out, vec2<u32>((col + j) / 4u, y[k]), column(k, r[0], r[1], r[2], r[3]));
  }
}

// Stores P (at column j) and dS (at width() + j) of 4 rows × keys j … j+3 like store_tile, in one
// loop.
fn store_tiles(t: RowTile, h: Half, j: u32, pr: mat4x4<f32>, ds: mat4x4<f32>) {
  let y = store_rows(t, h) | vec4<u32>(select(0u, 0x40000000u, j >= width()));
  let a = transpose(pr);
  let b = transpose(ds);
  for (var k = 0u; k < 2u * p.four; k++) {
    let second = k >= p.four;
    let r = k & 3u;
    let v = select(column(r, a[0], a[1], a[2], a[3]), column(r, b[0], b[1], b[2], b[3]), second);
    textureStore(scratch_out, vec2<u32>((select(0u, width(), second) + j) / 4u, y[r]), v);
  }
}

// Stores the row maxima in texel column width/4.
fn store_max(t: RowTile, m_lo: vec4<f32>, m_hi: vec4<f32>) {
  let y_lo = store_rows(t, t.lo);
  let y_hi = store_rows(t, t.hi);
  for (var n = 0u; n < 2u * p.four; n++) {
    let hi = n >= p.four;
    let k = n & 3u;
    textureStore(scratch_out, vec2<u32>(width() / 4u, select(y_lo, y_hi, hi)[k]), vec4<f32>(select(m_lo, m_hi, hi)[k]));
  }
}

@compute @workgroup_size(WG)
fn attention_scores(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = row_tile(lid.x, wid.x, wid.y, wid.z);
  let last = t.keys.y - 1;
  var m_lo = vec4<f32>(NEG);
  var m_hi = vec4<f32>(NEG);
  for (var j = t.keys.x; j < t.keys.y; j += 16) {
    let d = row_key_dots(t, q_tex, k_tex, j, last);
    // The 8 tiles in a loop: its body is compiled once.
    for (var n = 0u; n < 2u * p.four; n++) {
      let hi = n >= p.four;
      let h = tile_half(t, hi);
      let jn = u32(j) + 4u * (n & 3u);
      let sc = masked_scores(tile(d, n), quad_mask(t, h, i32(jn)));
      store_tile(t, h, jn, 0u, sc);
      m_lo = select(max(m_lo, col_max(sc)), m_lo, hi);
      m_hi = select(m_hi, max(m_hi, col_max(sc)), hi);
    }
  }
  store_max(t, m_lo, m_hi);
}

// ---------------------------------------------------------------------------------------------
// Row tiles × K or V: Σ_j w[row, j]·z[j, :], 8 rows × 4 vec4 of D per invocation. Forward:
// w = exp(S − row max), out = (Σ w·v) / Σ w (stored: every element of out is written once, so it
// needs no clearing) and lse (from the first chunk of D); backward: w = dS, dq += Σ w·k. Keys 4 at
// a time: 8 weight fetches + 16 K/V fetches per 128 vec4 FMAs. The exponentials (one per score and
// chunk of D) cost less here than a separate softmax pass over the scratch (measured ~10 % slower).

@group(0) @binding(1) var z_tex: texture_2d<f32>;
@group(0) @binding(2) var scratch_in: texture_2d<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read_write> rows_out: array<vec4<f32>>;

// Weights of 4 rows (columns) × keys j … j+3 (components). No masks: the producer of the scratch
// (attention_scores, attention_backward_ds) wrote every quad of the row tile's key range, with
// S = NEG (so exp gives 0) or dS = 0 where masked. Selects, not an `if`: the same speed (LLVM
// takes the exponentials either way) at 2/3 of the JIT time.
fn half_weights(t: RowTile, h: Half, m: vec4<f32>, j: i32) -> mat4x4<f32> {
  let y = scratch_rows(t.b, t.h, h.row);
  let x = (p.col + u32(j)) / 4u;
  let w = mat4x4<f32>(textureLoad(scratch_in, vec2<u32>(x, y.x), 0), textureLoad(scratch_in, vec2<u32>(x, y.y), 0),
                      textureLoad(scratch_in, vec2<u32>(x, y.z), 0), textureLoad(scratch_in, vec2<u32>(x, y.w), 0));
  let e = mat4x4<f32>(exp(w[0] - m.x), exp(w[1] - m.y), exp(w[2] - m.z), exp(w[3] - m.w));
  let fwd = p.forward != 0u;
  return mat4x4<f32>(select(w[0], e[0], fwd), select(w[1], e[1], fwd), select(w[2], e[2], fwd),
                     select(w[3], e[3], fwd));
}

// Row maxima of a half (forward; unused values otherwise).
fn half_max(t: RowTile, h: Half) -> vec4<f32> {
  let y = scratch_rows(t.b, t.h, h.row);
  let x = width() / 4u;
  let m = vec4<f32>(textureLoad(scratch_in, vec2<u32>(x, y.x), 0).x, textureLoad(scratch_in, vec2<u32>(x, y.y), 0).x,
                    textureLoad(scratch_in, vec2<u32>(x, y.z), 0).x, textureLoad(scratch_in, vec2<u32>(x, y.w), 0).x);
  // A row that sees no key has max NEG: lifting it makes exp(NEG − m) 0 there too.
  return max(m, vec4<f32>(-1.0e30));
}

// Slices c0 … c0+3 of the 8 rows (slice n of half lo: lo_n, of half hi: hi_n; row r of a half:
// column r, scaled by s[r]) into the output, in loops (see Params.four).
fn put_rows(t: RowTile, c0: u32, s_lo: vec4<f32>, s_hi: vec4<f32>, lo0: mat4x4<f32>, lo1: mat4x4<f32>,
            lo2: mat4x4<f32>, lo3: mat4x4<f32>, hi0: mat4x4<f32>, hi1: mat4x4<f32>, hi2: mat4x4<f32>,
            hi3: mat4x4<f32>) {
  for (var n = 0u; n < 2u * p.four; n++) {
    let hi = n >= p.four;
    let m = pick_of_two(n, lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3);
    let rows = select(t.lo.row, t.hi.row, hi);
    let valid = select(t.lo.valid, t.hi.valid, hi);
    let scale = select(s_lo, s_hi, hi);
    let c = c0 + (n & 3u);
    for (var r = 0u; r < p.four; r++) {
      if (valid[r] && c < p.head_dim / 4u) {
        let at = q_index(t.b, rows[r], t.h) + c;
        let v = column(r, m[0], m[1], m[2], m[3]) * scale[r];
        if (p.forward != 0u) {
          rows_out[at] = v;
        } else {
          rows_out[at] += v;
        }
      }
    }
  }
}

fn col_sums(w: mat4x4<f32>) -> vec4<f32> {
  return transpose(w) * vec4<f32>(1.0);
}

// Forward: lse = max + log Σw of the 8 rows (written by the first chunk of D, in a loop).
fn store_lse(t: RowTile, m_lo: vec4<f32>, m_hi: vec4<f32>, l_lo: vec4<f32>, l_hi: vec4<f32>) {
  let v_lo = select(vec4<f32>(NEG), m_lo + log(l_lo), l_lo > vec4<f32>(0.0));
  let v_hi = select(vec4<f32>(NEG), m_hi + log(l_hi), l_hi > vec4<f32>(0.0));
  let at_lo = lse_at(t, t.lo.row);
  let at_hi = lse_at(t, t.hi.row);
  for (var n = 0u; n < 2u * p.four; n++) {
    let hi = n >= p.four;
    let k = n & 3u;
    if (select(t.lo.valid, t.hi.valid, hi)[k]) {
      lse[select(at_lo, at_hi, hi)[k]] = select(v_lo, v_hi, hi)[k];
    }
  }
}

// Forward: 1 / Σw per row (0 for a row that sees no key).
fn inverse(l: vec4<f32>) -> vec4<f32> {
  return select(vec4<f32>(0.0), 1.0 / l, l > vec4<f32>(0.0));
}

@compute @workgroup_size(WG)
fn attention_rows_times_kv(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  // Grid x = chunk of D + chunks·row block: the chunks of one row block run one after another and
  // find its scores still in cache.
  let chunks = d_chunks();
  let t = row_tile(lid.x, wid.x / chunks, wid.y, wid.z);
  let c0 = (wid.x % chunks) * 4u;
  let cs = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.head_dim / 4u - 1u));
  let last = t.keys.y - 1;
  let m_lo = half_max(t, t.lo);
  let m_hi = half_max(t, t.hi);
  // Slice c0 + n of the output rows (columns = rows of a half), and Σw (forward).
  var lo0 = mat4x4<f32>();
  var lo1 = mat4x4<f32>();
  var lo2 = mat4x4<f32>();
  var lo3 = mat4x4<f32>();
  var hi0 = mat4x4<f32>();
  var hi1 = mat4x4<f32>();
  var hi2 = mat4x4<f32>();
  var hi3 = mat4x4<f32>();
  var l_lo = mat4x4<f32>();
  var l_hi = mat4x4<f32>();
  for (var j = t.keys.x; j < t.keys.y; j += 4) {
    let wl = half_weights(t, t.lo, m_lo, j);
    let wh = half_weights(t, t.hi, m_hi, j);
    let keys = key_texels(t.b, t.kvh, j, last);
    let z0 = tex_quad(z_tex, keys, cs.x);
    let z1 = tex_quad(z_tex, keys, cs.y);
    let z2 = tex_quad(z_tex, keys, cs.z);
    let z3 = tex_quad(z_tex, keys, cs.w);
    lo0 += z0 * wl;
    lo1 += z1 * wl;
    lo2 += z2 * wl;
    lo3 += z3 * wl;
    hi0 += z0 * wh;
    hi1 += z1 * wh;
    hi2 += z2 * wh;
    hi3 += z3 * wh;
    l_lo += wl;
    l_hi += wh;
  }
  let sum_lo = col_sums(l_lo);
  let sum_hi = col_sums(l_hi);
  if (p.forward != 0u && c0 == 0u) {
    store_lse(t, m_lo, m_hi, sum_lo, sum_hi);
  }
  let fwd = p.forward != 0u;
  let s_lo = select(vec4<f32>(1.0), inverse(sum_lo), fwd);
  let s_hi = select(vec4<f32>(1.0), inverse(sum_hi), fwd);
  put_rows(t, c0, s_lo, s_hi, lo0, lo1, lo2, lo3, hi0, hi1, hi2, hi3);
}

// ---------------------------------------------------------------------------------------------
// Backward, kernel 1: Σ_d dout·out per (token row, head); grid x = token rows b·tq + i, y = head.

@group(0) @binding(1) var<storage, read> delta_dout: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> delta_out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> delta_rows: array<f32>;

@compute @workgroup_size(WG)
fn attention_backward_delta(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  let h = gid.y;
  if (row >= p.batch * p.tq) {
    return;
  }
  let base = (row * p.heads + h) * HD4;
  var d = vec4<f32>(0.0);
  for (var c = 0u; c < p.head_dim / 4u; c++) {
    d += delta_dout[base + c] * delta_out[base + c];
  }
  delta_rows[((row / p.tq) * p.heads + h) * p.tq + row % p.tq] = sum4(d);
}

// ---------------------------------------------------------------------------------------------
// Backward, kernel 2: P = exp(S − lse) and dS = P·(dP − delta)·d(score)/d(raw) of 8 rows × all
// visible keys, 16 keys per step, into the scratch as [P | dS]. dP = dout·vᵀ is computed here
// (24 fetches per 128 vec4 dot products); S comes from attention_scores.

@group(0) @binding(1) var dout_tex: texture_2d<f32>;
@group(0) @binding(2) var v_tex: texture_2d<f32>;
@group(0) @binding(6) var scores_in: texture_2d<f32>;
@group(0) @binding(7) var<storage, read> lse_in: array<f32>;
@group(0) @binding(8) var<storage, read> delta_in: array<f32>;

struct RowTerms {
  lse: vec4<f32>,
  delta: vec4<f32>,
}

// lse and delta of the 4 rows of a half, loaded in a loop (see Params.four).
fn row_terms(t: RowTile, h: Half) -> RowTerms {
  let at = lse_at(t, h.row);
  var r = RowTerms(vec4<f32>(0.0), vec4<f32>(0.0));
  for (var k = 0u; k < p.four; k++) {
    let here = vec4<u32>(k) == vec4<u32>(0u, 1u, 2u, 3u);
    r.lse = select(r.lse, vec4<f32>(lse_in[at[k]]), here);
    r.delta = select(r.delta, vec4<f32>(delta_in[at[k]]), here);
  }
  return r;
}

// Scores of the 4 rows of a half (components) × keys j … j+3 (columns).
fn load_scores(t: RowTile, h: Half, j: u32) -> mat4x4<f32> {
  let y = vec4<u32>((t.b * p.heads + t.h) * p.score_rows) + h.row - vec4<u32>(p.score_row0);
  let x = j / 4u;
  return transpose(mat4x4<f32>(textureLoad(scores_in, vec2<u32>(x, y.x), 0), textureLoad(scores_in, vec2<u32>(x, y.y), 0),
                               textureLoad(scores_in, vec2<u32>(x, y.z), 0), textureLoad(scores_in, vec2<u32>(x, y.w), 0)));
}

struct GradCol {
  p: vec4<f32>,
  ds: vec4<f32>,
}

// P and dS of one key (4 rows, components) from its scores and dP; selects (not products) drop
// what a masked or never-written score would give.
fn grad_col(sc: vec4<f32>, dp: vec4<f32>, ok: vec4<bool>, r: RowTerms) -> GradCol {
  let pr = select(vec4<f32>(0.0), exp(sc - r.lse), ok);
  return GradCol(pr, select(vec4<f32>(0.0), pr * (dp - r.delta) * slope4(sc), ok));
}

// P and dS of 4 rows (components) × keys j … j+3 (columns).
struct Grads {
  p: mat4x4<f32>,
  ds: mat4x4<f32>,
}

fn grads(sc: mat4x4<f32>, dp: mat4x4<f32>, m: Mask4, r: RowTerms) -> Grads {
  let g0 = grad_col(sc[0], dp[0], m.m0, r);
  let g1 = grad_col(sc[1], dp[1], m.m1, r);
  let g2 = grad_col(sc[2], dp[2], m.m2, r);
  let g3 = grad_col(sc[3], dp[3], m.m3, r);
  return Grads(mat4x4<f32>(g0.p, g1.p, g2.p, g3.p), mat4x4<f32>(g0.ds, g1.ds, g2.ds, g3.ds));
}

@compute @workgroup_size(WG)
fn attention_backward_ds(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let t = row_tile(lid.x, wid.x, wid.y, wid.z);
  let last = t.keys.y - 1;
  let r_lo = row_terms(t, t.lo);
  let r_hi = row_terms(t, t.hi);
  for (var j = t.keys.x; j < t.keys.y; j += 16) {
    let d = row_key_dots(t, dout_tex, v_tex, j, last);
    // The 8 tiles in a loop: its body is compiled once.
    for (var n = 0u; n < 2u * p.four; n++) {
      let hi = n >= p.four;
      let h = tile_half(t, hi);
      let jn = u32(j) + 4u * (n & 3u);
      let r = RowTerms(select(r_lo.lse, r_hi.lse, hi), select(r_lo.delta, r_hi.delta, hi));
      let g = grads(load_scores(t, h, jn), tile(d, n), quad_mask(t, h, i32(jn)), r);
      store_tiles(t, h, jn, g.p, g.ds);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, kernel 3: dk[key, :] += Σ_{heads of the KV group, rows} dS[row, key]·q[row, :] and
// dv[key, :] += Σ P[row, key]·dout[row, :] in one pass over the rows (the masks, row addresses
// and loop serve both; ~10 % faster than one pass each, and the same JIT time). Lanes along keys:
// 8 keys (quads lane and lane + WG of the block) × 4 vec4 of D of both per invocation (grid y =
// KV head); per query row 4 scratch fetches + 8 fetches (the same for every lane) per 64 vec4
// FMAs. Rows and heads run in a fixed order: deterministic.

@group(0) @binding(5) var<storage, read_write> dk_out: array<vec4<f32>>;
@group(0) @binding(6) var dout_rows: texture_2d<f32>;
@group(0) @binding(7) var<storage, read_write> dv_out: array<vec4<f32>>;

// Weights of keys `keys` seen from a query that sees keys (lo, hi] (0 where masked).
fn key_weights4(x: u32, y: u32, keys: vec4<i32>, lo: i32, hi: i32) -> vec4<f32> {
  let ok = (keys <= vec4<i32>(hi)) & (keys > vec4<i32>(lo));
  return select(vec4<f32>(0.0), textureLoad(scratch_in, vec2<u32>(x, y), 0), ok);
}

fn outer(y: vec4<f32>, m: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(y * m.x, y * m.y, y * m.z, y * m.w);
}

// Slices n of 4 keys (columns of *an) += one row's slices yn (vec4 of D) times its weights w of the
// 4 keys.
fn add_outers(a0: ptr<function, mat4x4<f32>>, a1: ptr<function, mat4x4<f32>>, a2: ptr<function, mat4x4<f32>>,
              a3: ptr<function, mat4x4<f32>>, y0: vec4<f32>, y1: vec4<f32>, y2: vec4<f32>, y3: vec4<f32>,
              w: vec4<f32>) {
  *a0 += outer(y0, w);
  *a1 += outer(y1, w);
  *a2 += outer(y2, w);
  *a3 += outer(y3, w);
}

// Slices c0 … c0+3 of keys j … j+3 (a) and j2 … j2+3 (b) of dk (o = 0) or dv (o = 1) += acc, in
// loops (slice n: matrix n, key k: its column k).
fn put_key_grads(b: u32, kvh: u32, j: u32, j2: u32, c0: u32, o: u32, a0: mat4x4<f32>, a1: mat4x4<f32>,
                 a2: mat4x4<f32>, a3: mat4x4<f32>, b0: mat4x4<f32>, b1: mat4x4<f32>, b2: mat4x4<f32>,
                 b3: mat4x4<f32>) {
  for (var n = 0u; n < 2u * p.four; n++) {
    let second = n >= p.four;
    let m = pick_of_two(n, a0, a1, a2, a3, b0, b1, b2, b3);
    let jn = select(j, j2, second);
    let c = c0 + (n & 3u);
    for (var k = 0u; k < p.four; k++) {
      if (c < p.head_dim / 4u && jn + k < p.tmax) {
        let at = kv_index(b, jn + k, kvh) + c;
        let v = column(k, m[0], m[1], m[2], m[3]);
        if (o == 0u) {
          dk_out[at] += v;
        } else {
          dv_out[at] += v;
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn attention_key_grads(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.z;
  // Grid x = chunk of D + chunks·key block (see attention_rows_times_kv).
  let chunks = d_chunks();
  let kvh = wid.y;
  let c0 = (wid.x % chunks) * 4u;
  let cs = min(vec4<u32>(c0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.head_dim / 4u - 1u));
  let group = p.heads / p.kv_heads;
  let off = q_offset[b];
  let len = kv_len[b];
  let first = (wid.x / chunks) * WG * 8u;
  let qa = first / 4u + lid.x;
  let qb = qa + WG;
  let w4 = width() / 4u;
  let ja = i32(qa * 4u);
  let jb = i32(qb * 4u);
  let keys_a = vec4<i32>(ja) + vec4<i32>(0, 1, 2, 3);
  let keys_b = vec4<i32>(jb) + vec4<i32>(0, 1, 2, 3);
  // Texel columns of the keys' P (dS: + width/4).
  let xa = min(qa, w4 - 1u);
  let xb = min(qb, w4 - 1u);
  // Rows of the chunk that can see a key of the block: pos ≥ first key, pos < last key + window.
  let i_begin = max(i32(p.row0), i32(first) - off);
  var i_end = i32(p.row0 + p.rows);
  if (p.window > 0u) {
    i_end = min(i_end, i32(min(first + WG * 8u, p.tmax)) - 1 + i32(p.window) - off);
  }
  // Slice c0 + n of dk (a, b) and dv (e, f) of the 4 keys of quad a (b) (columns).
  var a0 = mat4x4<f32>();
  var a1 = mat4x4<f32>();
  var a2 = mat4x4<f32>();
  var a3 = mat4x4<f32>();
  var b0 = mat4x4<f32>();
  var b1 = mat4x4<f32>();
  var b2 = mat4x4<f32>();
  var b3 = mat4x4<f32>();
  var e0 = mat4x4<f32>();
  var e1 = mat4x4<f32>();
  var e2 = mat4x4<f32>();
  var e3 = mat4x4<f32>();
  var f0 = mat4x4<f32>();
  var f1 = mat4x4<f32>();
  var f2 = mat4x4<f32>();
  var f3 = mat4x4<f32>();
  for (var g = 0u; g < group; g++) {
    let h = kvh * group + g;
    let base = (b * p.heads + h) * p.rows;
    for (var i = i_begin; i < i_end; i++) {
      let pos = off + i;
      let row = base + u32(i) - p.row0;
      // The keys this row sees: (lo, hi], as in visible().
      let lo = select(-2147483647, pos - i32(p.window), p.window > 0u);
      let hi = min(pos, len - 1);
      let pa = key_weights4(xa, row, keys_a, lo, hi);
      let pb = key_weights4(xb, row, keys_b, lo, hi);
      let da = key_weights4(xa + w4, row, keys_a, lo, hi);
      let db = key_weights4(xb + w4, row, keys_b, lo, hi);
      let r = b * p.tq + u32(i);
      let tx = (r & ((1u << p.tex_shift) - 1u)) * (p.heads * HD4) + h * HD4;
      let ty = r >> p.tex_shift;
      let y0 = textureLoad(q_tex, vec2<u32>(tx + cs.x, ty), 0);
      let y1 = textureLoad(q_tex, vec2<u32>(tx + cs.y, ty), 0);
      let y2 = textureLoad(q_tex, vec2<u32>(tx + cs.z, ty), 0);
      let y3 = textureLoad(q_tex, vec2<u32>(tx + cs.w, ty), 0);
      add_outers(&a0, &a1, &a2, &a3, y0, y1, y2, y3, da);
      add_outers(&b0, &b1, &b2, &b3, y0, y1, y2, y3, db);
      let z0 = textureLoad(dout_rows, vec2<u32>(tx + cs.x, ty), 0);
      let z1 = textureLoad(dout_rows, vec2<u32>(tx + cs.y, ty), 0);
      let z2 = textureLoad(dout_rows, vec2<u32>(tx + cs.z, ty), 0);
      let z3 = textureLoad(dout_rows, vec2<u32>(tx + cs.w, ty), 0);
      add_outers(&e0, &e1, &e2, &e3, z0, z1, z2, z3, pa);
      add_outers(&f0, &f1, &f2, &f3, z0, z1, z2, z3, pb);
    }
  }
  put_key_grads(b, kvh, u32(ja), u32(jb), c0, 0u, a0, a1, a2, a3, b0, b1, b2, b3);
  put_key_grads(b, kvh, u32(ja), u32(jb), c0, 1u, e0, e1, e2, e3, f0, f1, f2, f3);
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
  let ok = visible(vec4<i32>(pos), vec4<i32>(keys), dec_len[b]);
  // Column t: the 4 keys' raw scores for head t.
  var s = mat4x4<f32>();
  if (any(ok)) {
    let qb = vec4<u32>(q_index(b, i, hc.heads.x), q_index(b, i, hc.heads.y), q_index(b, i, hc.heads.z),
                       q_index(b, i, hc.heads.w));
    for (var c = 0u; c < p.head_dim / 4u; c++) {
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
