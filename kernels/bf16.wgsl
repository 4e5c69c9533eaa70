// bf16 in u32 words, shared by the packing kernels, the packed matmuls and the LM-head gradient
// (through an include line naming bf16). A packed texel holds 8 values, two per u32, the lower
// index in the low half.

// Round to nearest even on the upper 16 bits (NaN and overflow are not special-cased: operands
// of a matmul are finite).
fn bf16(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  return (bits + 0x7fffu + ((bits >> 16u) & 1u)) >> 16u;
}

fn bf16x4(x: vec4<f32>) -> vec4<u32> {
  let bits = bitcast<vec4<u32>>(x);
  return (bits + vec4(0x7fffu) + ((bits >> vec4(16u)) & vec4(1u))) >> vec4(16u);
}

// The bf16 bits of 8 consecutive values (0–3 in `a`, 4–7 in `b`), kept apart so that a kernel
// packing an 8 × 8 block can also regroup them by column (`column_texel`).
struct Bf16Eight {
  a: vec4<u32>,
  b: vec4<u32>,
}

fn bf16_eight(a: vec4<f32>, b: vec4<f32>) -> Bf16Eight {
  return Bf16Eight(bf16x4(a), bf16x4(b));
}

// The texel of 8 consecutive values from their bits.
fn eight_texel(e: Bf16Eight) -> vec4<u32> {
  return vec4(e.a.xz, e.b.xz) | (vec4(e.a.yw, e.b.yw) << vec4(16u));
}

// One texel from 8 consecutive values (columns 0–3 in `a`, 4–7 in `b`).
fn bf16_texel(a: vec4<f32>, b: vec4<f32>) -> vec4<u32> {
  return eight_texel(bf16_eight(a, b));
}

// The texel of one column of an 8-row block (a transposed pack) from the rows' bits (row i in ei).
fn column_texel(e0: u32, e1: u32, e2: u32, e3: u32, e4: u32, e5: u32, e6: u32, e7: u32) -> vec4<u32> {
  return vec4(e0, e2, e4, e6) | (vec4(e1, e3, e5, e7) << vec4(16u));
}

// The values in the low halves of a texel's words (indices 0, 2, 4, 6) and in the high halves
// (1, 3, 5, 7), one shift or mask each.
fn lo(w: vec4<u32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(w << vec4(16u));
}

fn hi(w: vec4<u32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(w & vec4(0xffff0000u));
}
