// Token sampling, forward only, HF semantics: repetition penalty → temperature → top-k → top-p →
// multinomial draw; temperature 0 is greedy (argmax, lowest index on ties).
//
// sampling_penalty: scores = copy of logits (copyBufferToBuffer), then for every (row, previous token)
// scores[tok] = logits[tok] > 0 ? logits[tok] / penalty : logits[tok]·penalty — read from the
// unpenalised logits, so a token seen twice is penalised once, as HF's gather/scatter does.
//
// sampling_forward: one workgroup per row, no sorting. Each lane owns a contiguous block of the vocab.
//  1. max + argmax (greedy stops here);
//  2. top-k: the k-th largest value is found by a 16-way search on the order-preserving u32 key of
//     the f32 logit: each pass counts, per lane in registers, the tokens at or above 16 evenly spaced
//     keys of the current range (one load per token), so ≤ 8 passes cover the 32-bit key space; the
//     threshold keeps every token tied with the k-th value (as HF's `scores < topk[-1]` does);
//  3. top-p: the same search on probability mass: the largest value τ with mass(≥ τ) ≥ p·Z, which
//     keeps exactly the tokens whose strictly-greater mass is < p·Z — HF's "smallest set with
//     cumulative probability ≥ p" (ties at the boundary are all kept; HF orders them arbitrarily);
//  4. one pass of per-block kept mass, then lane 0 walks the blocks and the chosen block in vocab
//     order to the point u·Z, u from a counter-based hash of (seed, step, row).
// Every sum has a fixed order, so a draw is reproducible for a given seed.
//
// Napkin math (vocab 151936, one row): each pass loads the row once (600 KB, ~19 k 8-lane loads ≈
// 0.4 ms on one llvmpipe core) plus a key computation and, for top-p, one exp per token; full
// filtering is ~1 + 8 + ≤ 8 + 1 passes ≈ 8–15 ms per row; greedy is one pass (~0.5 ms). Rows run in
// parallel workgroups (one core each).

const WG: u32 = 128u;
const BINS: u32 = 16u;
const NO_INDEX: u32 = 0xffffffffu;

struct PenaltyParams { n: u32, history: u32, vocab: u32, row_stride: u32, penalty: f32 }

@group(0) @binding(0) var<uniform> pp: PenaltyParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> previous: array<i32>;
@group(0) @binding(3) var<storage, read_write> penalised: array<f32>;

@compute @workgroup_size(64)
fn sampling_penalty(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * pp.row_stride;
  if (i >= pp.n) { return; }
  let token = previous[i];
  if (token < 0 || u32(token) >= pp.vocab) { return; }
  let at = (i / pp.history) * pp.vocab + u32(token);
  let v = logits[at];
  penalised[at] = select(v * pp.penalty, v / pp.penalty, v > 0.0);
}

struct Params { vocab: u32, top_k: u32, seed: u32, step: u32, temperature: f32, top_p: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> tokens: array<i32>;

var<workgroup> best_value: array<f32, WG>;
var<workgroup> best_index: array<u32, WG>;
var<workgroup> bins: array<f32, BINS * WG>;
var<workgroup> totals: array<f32, BINS>;
var<workgroup> bounds: vec2<u32>;

// Order-preserving map of an f32 to a u32 (NaN maps to 0, below −inf).
fn key_of(v: f32) -> u32 {
  let u = bitcast<u32>(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) { return 0u; }
  return select(u | 0x80000000u, ~u, (u & 0x80000000u) != 0u);
}

// The lane's contiguous block [start, end) of the vocab.
fn block_of(lane: u32) -> vec2<u32> {
  let size = (p.vocab + WG - 1u) / WG;
  let start = min(lane * size, p.vocab);
  return vec2<u32>(start, min(start + size, p.vocab));
}

fn weight(v: f32, lmax: f32) -> f32 {
  return exp((v - lmax) / p.temperature);
}

// PCG hash (O'Neill's RXS-M-XS output of one LCG step).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// Uniform in [0, 1) with 24 random bits, from (seed, step, row).
fn uniform01(row: u32) -> f32 {
  return f32(pcg(pcg(pcg(row) + p.step) + p.seed) >> 8u) * (1.0 / 16777216.0);
}

// Largest key t in [lo, hi] with W(key ≥ t) ≥ aim, where W counts tokens (mass = false) or sums
// their weights exp((l − lmax)/T) (mass = true; then aim is a fraction of the mass ≥ lo).
// Requires W(key ≥ lo) ≥ aim. Call from uniform control flow.
fn search(base: u32, lane: u32, lo: u32, hi: u32, aim: f32, mass: bool, lmax: f32) -> u32 {
  let block = block_of(lane);
  if (lane == 0u) { bounds = vec2<u32>(lo, hi); }
  var goal = aim;
  var first = true;
  loop {
    let range = workgroupUniformLoad(&bounds);
    if (range.x >= range.y) { break; }
    let width = (range.y - range.x) / BINS + 1u;
    // Thresholds t_c = lo + c·width, c = 0..15, and W(key ≥ t_c) per lane, in vec4 registers:
    // compares and selects instead of a dynamically indexed histogram (per-lane scatter on llvmpipe).
    let step4 = vec4<u32>(0u, 1u, 2u, 3u) * width;
    let t0 = vec4<u32>(range.x) + step4;
    let t1 = t0 + vec4<u32>(4u * width);
    let t2 = t1 + vec4<u32>(4u * width);
    let t3 = t2 + vec4<u32>(4u * width);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    let none = vec4<f32>(0.0);
    for (var j = block.x; j < block.y; j++) {
      let v = scores[base + j];
      let k = key_of(v);
      if (k >= range.x) {
        var w = 1.0;
        if (mass) { w = weight(v, lmax); }
        let kv = vec4<u32>(k);
        let wv = vec4<f32>(w);
        a0 += select(none, wv, kv >= t0);
        a1 += select(none, wv, kv >= t1);
        a2 += select(none, wv, kv >= t2);
        a3 += select(none, wv, kv >= t3);
      }
    }
    for (var c = 0u; c < 4u; c++) {
      bins[c * WG + lane] = a0[c];
      bins[(c + 4u) * WG + lane] = a1[c];
      bins[(c + 8u) * WG + lane] = a2[c];
      bins[(c + 12u) * WG + lane] = a3[c];
    }
    workgroupBarrier();
    if (lane < BINS) {
      var sum = 0.0;
      for (var i = 0u; i < WG; i++) { sum += bins[lane * WG + i]; }
      totals[lane] = sum;
    }
    workgroupBarrier();
    if (lane == 0u) {
      if (mass && first) { goal = aim * totals[0]; }
      first = false;
      // totals[c] = W(key ≥ lo + c·width); keep the largest threshold inside the range that passes.
      var chosen = 0u;
      for (var c = BINS - 1u; c > 0u; c--) {
        if (range.x + c * width <= range.y && totals[c] >= goal) {
          chosen = c;
          break;
        }
      }
      let next_lo = range.x + chosen * width;
      bounds = vec2<u32>(next_lo, min(range.y, next_lo + width - 1u));
    }
  }
  let result = workgroupUniformLoad(&bounds).x;
  workgroupBarrier();
  return result;
}

@compute @workgroup_size(WG)
fn sampling_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let row = wid.x;
  let lane = lid.x;
  let base = row * p.vocab;
  let block = block_of(lane);

  var value = bitcast<f32>(0xff800000u);
  var index = NO_INDEX;
  for (var j = block.x; j < block.y; j++) {
    let v = scores[base + j];
    if (v > value || index == NO_INDEX) {
      value = v;
      index = j;
    }
  }
  best_value[lane] = value;
  best_index[lane] = index;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride >>= 1u) {
    if (lane < stride) {
      let v = best_value[lane + stride];
      let i = best_index[lane + stride];
      if (v > best_value[lane] || (v == best_value[lane] && i < best_index[lane])) {
        best_value[lane] = v;
        best_index[lane] = i;
      }
    }
    workgroupBarrier();
  }
  let lmax = best_value[0];
  if (p.temperature <= 0.0) {
    if (lane == 0u) { tokens[row] = i32(best_index[0]); }
    return;
  }

  let top = key_of(lmax);
  var threshold = 0u;
  if (p.top_k > 0u && p.top_k < p.vocab) {
    threshold = search(base, lane, 0u, top, f32(p.top_k), false, lmax);
  }
  if (p.top_p < 1.0) {
    threshold = search(base, lane, threshold, top, p.top_p, true, lmax);
  }

  var kept = 0.0;
  for (var j = block.x; j < block.y; j++) {
    let v = scores[base + j];
    if (key_of(v) >= threshold) { kept += weight(v, lmax); }
  }
  bins[lane] = kept;
  workgroupBarrier();
  if (lane == 0u) {
    var total = 0.0;
    for (var b = 0u; b < WG; b++) { total += bins[b]; }
    let point = uniform01(row) * total;
    // The block where the running mass passes the point (else the last block with mass).
    var chosen = 0u;
    var before = 0.0;
    var running = 0.0;
    for (var b = 0u; b < WG; b++) {
      let m = bins[b];
      if (m > 0.0) {
        chosen = b;
        before = running;
        if (running + m > point) { break; }
        running += m;
      }
    }
    let range = block_of(chosen);
    var pick = range.x;
    for (var j = range.x; j < range.y; j++) {
      let v = scores[base + j];
      if (key_of(v) >= threshold) {
        pick = j;
        before += weight(v, lmax);
        if (before > point) { break; }
      }
    }
    tokens[row] = i32(pick);
  }
}
