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

// One texel from 8 consecutive values (columns 0–3 in `a`, 4–7 in `b`).
fn bf16_texel(a: vec4<f32>, b: vec4<f32>) -> vec4<u32> {
  let even = bf16x4(vec4(a.x, a.z, b.x, b.z));
  let odd = bf16x4(vec4(a.y, a.w, b.y, b.w));
  return even | (odd << vec4(16u));
}

// The values in the low halves of a texel's words (indices 0, 2, 4, 6) and in the high halves
// (1, 3, 5, 7), one shift or mask each.
fn lo(w: vec4<u32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(w << vec4(16u));
}

fn hi(w: vec4<u32>) -> vec4<f32> {
  return bitcast<vec4<f32>>(w & vec4(0xffff0000u));
}
