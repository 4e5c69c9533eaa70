// The NT kernels' 32 × 16 accumulator tile (cI_Q: row r + I, columns col + 4Q … col + 4Q + 3),
// zero or, when accumulating, the old C. Inserted into a kernel body (`// #insert`): WGSL has no
// way to share local variables, and the tile must stay 128 named registers (compute-notes §2.5).
// The last tile along each direction is clamped to end at row m and column n (the launcher
// guarantees m ≥ 32 and n ≥ 16): where it overlaps its neighbour it computes the same values in
// the same order and stores them again, so no store needs a bounds check. The checks (a per-lane
// masked store each, 128 of them) made the cold LLVM JIT of this kernel ~0.4 s longer (2.1 s).
  let r = min(wg.y * 32u, p.m - 32u);
  let col = min(wg.x * 256u + lid.x * 16u, p.n - 16u);
  let quad = col / 4u;
  var c0_0 = vec4<f32>(); var c0_1 = vec4<f32>(); var c0_2 = vec4<f32>(); var c0_3 = vec4<f32>();
  var c1_0 = vec4<f32>(); var c1_1 = vec4<f32>(); var c1_2 = vec4<f32>(); var c1_3 = vec4<f32>();
  var c2_0 = vec4<f32>(); var c2_1 = vec4<f32>(); var c2_2 = vec4<f32>(); var c2_3 = vec4<f32>();
  var c3_0 = vec4<f32>(); var c3_1 = vec4<f32>(); var c3_2 = vec4<f32>(); var c3_3 = vec4<f32>();
  var c4_0 = vec4<f32>(); var c4_1 = vec4<f32>(); var c4_2 = vec4<f32>(); var c4_3 = vec4<f32>();
  var c5_0 = vec4<f32>(); var c5_1 = vec4<f32>(); var c5_2 = vec4<f32>(); var c5_3 = vec4<f32>();
  var c6_0 = vec4<f32>(); var c6_1 = vec4<f32>(); var c6_2 = vec4<f32>(); var c6_3 = vec4<f32>();
  var c7_0 = vec4<f32>(); var c7_1 = vec4<f32>(); var c7_2 = vec4<f32>(); var c7_3 = vec4<f32>();
  var c8_0 = vec4<f32>(); var c8_1 = vec4<f32>(); var c8_2 = vec4<f32>(); var c8_3 = vec4<f32>();
  var c9_0 = vec4<f32>(); var c9_1 = vec4<f32>(); var c9_2 = vec4<f32>(); var c9_3 = vec4<f32>();
  var c10_0 = vec4<f32>(); var c10_1 = vec4<f32>(); var c10_2 = vec4<f32>(); var c10_3 = vec4<f32>();
  var c11_0 = vec4<f32>(); var c11_1 = vec4<f32>(); var c11_2 = vec4<f32>(); var c11_3 = vec4<f32>();
  var c12_0 = vec4<f32>(); var c12_1 = vec4<f32>(); var c12_2 = vec4<f32>(); var c12_3 = vec4<f32>();
  var c13_0 = vec4<f32>(); var c13_1 = vec4<f32>(); var c13_2 = vec4<f32>(); var c13_3 = vec4<f32>();
  var c14_0 = vec4<f32>(); var c14_1 = vec4<f32>(); var c14_2 = vec4<f32>(); var c14_3 = vec4<f32>();
  var c15_0 = vec4<f32>(); var c15_1 = vec4<f32>(); var c15_2 = vec4<f32>(); var c15_3 = vec4<f32>();
  var c16_0 = vec4<f32>(); var c16_1 = vec4<f32>(); var c16_2 = vec4<f32>(); var c16_3 = vec4<f32>();
  var c17_0 = vec4<f32>(); var c17_1 = vec4<f32>(); var c17_2 = vec4<f32>(); var c17_3 = vec4<f32>();
  var c18_0 = vec4<f32>(); var c18_1 = vec4<f32>(); var c18_2 = vec4<f32>(); var c18_3 = vec4<f32>();
  var c19_0 = vec4<f32>(); var c19_1 = vec4<f32>(); var c19_2 = vec4<f32>(); var c19_3 = vec4<f32>();
  var c20_0 = vec4<f32>(); var c20_1 = vec4<f32>(); var c20_2 = vec4<f32>(); var c20_3 = vec4<f32>();
  var c21_0 = vec4<f32>(); var c21_1 = vec4<f32>(); var c21_2 = vec4<f32>(); var c21_3 = vec4<f32>();
  var c22_0 = vec4<f32>(); var c22_1 = vec4<f32>(); var c22_2 = vec4<f32>(); var c22_3 = vec4<f32>();
  var c23_0 = vec4<f32>(); var c23_1 = vec4<f32>(); var c23_2 = vec4<f32>(); var c23_3 = vec4<f32>();
  var c24_0 = vec4<f32>(); var c24_1 = vec4<f32>(); var c24_2 = vec4<f32>(); var c24_3 = vec4<f32>();
  var c25_0 = vec4<f32>(); var c25_1 = vec4<f32>(); var c25_2 = vec4<f32>(); var c25_3 = vec4<f32>();
  var c26_0 = vec4<f32>(); var c26_1 = vec4<f32>(); var c26_2 = vec4<f32>(); var c26_3 = vec4<f32>();
  var c27_0 = vec4<f32>(); var c27_1 = vec4<f32>(); var c27_2 = vec4<f32>(); var c27_3 = vec4<f32>();
  var c28_0 = vec4<f32>(); var c28_1 = vec4<f32>(); var c28_2 = vec4<f32>(); var c28_3 = vec4<f32>();
  var c29_0 = vec4<f32>(); var c29_1 = vec4<f32>(); var c29_2 = vec4<f32>(); var c29_3 = vec4<f32>();
  var c30_0 = vec4<f32>(); var c30_1 = vec4<f32>(); var c30_2 = vec4<f32>(); var c30_3 = vec4<f32>();
  var c31_0 = vec4<f32>(); var c31_1 = vec4<f32>(); var c31_2 = vec4<f32>(); var c31_3 = vec4<f32>();
  if ((p.flags & ACCUMULATE) != 0u) {
    c0_0 = old(r + 0u, quad + 0u); c0_1 = old(r + 0u, quad + 1u); c0_2 = old(r + 0u, quad + 2u); c0_3 = old(r + 0u, quad + 3u);
    c1_0 = old(r + 1u, quad + 0u); c1_1 = old(r + 1u, quad + 1u); c1_2 = old(r + 1u, quad + 2u); c1_3 = old(r + 1u, quad + 3u);
    c2_0 = old(r + 2u, quad + 0u); c2_1 = old(r + 2u, quad + 1u); c2_2 = old(r + 2u, quad + 2u); c2_3 = old(r + 2u, quad + 3u);
    c3_0 = old(r + 3u, quad + 0u); c3_1 = old(r + 3u, quad + 1u); c3_2 = old(r + 3u, quad + 2u); c3_3 = old(r + 3u, quad + 3u);
    c4_0 = old(r + 4u, quad + 0u); c4_1 = old(r + 4u, quad + 1u); c4_2 = old(r + 4u, quad + 2u); c4_3 = old(r + 4u, quad + 3u);
    c5_0 = old(r + 5u, quad + 0u); c5_1 = old(r + 5u, quad + 1u); c5_2 = old(r + 5u, quad + 2u); c5_3 = old(r + 5u, quad + 3u);
    c6_0 = old(r + 6u, quad + 0u); c6_1 = old(r + 6u, quad + 1u); c6_2 = old(r + 6u, quad + 2u); c6_3 = old(r + 6u, quad + 3u);
    c7_0 = old(r + 7u, quad + 0u); c7_1 = old(r + 7u, quad + 1u); c7_2 = old(r + 7u, quad + 2u); c7_3 = old(r + 7u, quad + 3u);
    c8_0 = old(r + 8u, quad + 0u); c8_1 = old(r + 8u, quad + 1u); c8_2 = old(r + 8u, quad + 2u); c8_3 = old(r + 8u, quad + 3u);
    c9_0 = old(r + 9u, quad + 0u); c9_1 = old(r + 9u, quad + 1u); c9_2 = old(r + 9u, quad + 2u); c9_3 = old(r + 9u, quad + 3u);
    c10_0 = old(r + 10u, quad + 0u); c10_1 = old(r + 10u, quad + 1u); c10_2 = old(r + 10u, quad + 2u); c10_3 = old(r + 10u, quad + 3u);
    c11_0 = old(r + 11u, quad + 0u); c11_1 = old(r + 11u, quad + 1u); c11_2 = old(r + 11u, quad + 2u); c11_3 = old(r + 11u, quad + 3u);
    c12_0 = old(r + 12u, quad + 0u); c12_1 = old(r + 12u, quad + 1u); c12_2 = old(r + 12u, quad + 2u); c12_3 = old(r + 12u, quad + 3u);
    c13_0 = old(r + 13u, quad + 0u); c13_1 = old(r + 13u, quad + 1u); c13_2 = old(r + 13u, quad + 2u); c13_3 = old(r + 13u, quad + 3u);
    c14_0 = old(r + 14u, quad + 0u); c14_1 = old(r + 14u, quad + 1u); c14_2 = old(r + 14u, quad + 2u); c14_3 = old(r + 14u, quad + 3u);
    c15_0 = old(r + 15u, quad + 0u); c15_1 = old(r + 15u, quad + 1u); c15_2 = old(r + 15u, quad + 2u); c15_3 = old(r + 15u, quad + 3u);
    c16_0 = old(r + 16u, quad + 0u); c16_1 = old(r + 16u, quad + 1u); c16_2 = old(r + 16u, quad + 2u); c16_3 = old(r + 16u, quad + 3u);
    c17_0 = old(r + 17u, quad + 0u); c17_1 = old(r + 17u, quad + 1u); c17_2 = old(r + 17u, quad + 2u); c17_3 = old(r + 17u, quad + 3u);
    c18_0 = old(r + 18u, quad + 0u); c18_1 = old(r + 18u, quad + 1u); c18_2 = old(r + 18u, quad + 2u); c18_3 = old(r + 18u, quad + 3u);
    c19_0 = old(r + 19u, quad + 0u); c19_1 = old(r + 19u, quad + 1u); c19_2 = old(r + 19u, quad + 2u); c19_3 = old(r + 19u, quad + 3u);
    c20_0 = old(r + 20u, quad + 0u); c20_1 = old(r + 20u, quad + 1u); c20_2 = old(r + 20u, quad + 2u); c20_3 = old(r + 20u, quad + 3u);
    c21_0 = old(r + 21u, quad + 0u); c21_1 = old(r + 21u, quad + 1u); c21_2 = old(r + 21u, quad + 2u); c21_3 = old(r + 21u, quad + 3u);
    c22_0 = old(r + 22u, quad + 0u); c22_1 = old(r + 22u, quad + 1u); c22_2 = old(r + 22u, quad + 2u); c22_3 = old(r + 22u, quad + 3u);
    c23_0 = old(r + 23u, quad + 0u); c23_1 = old(r + 23u, quad + 1u); c23_2 = old(r + 23u, quad + 2u); c23_3 = old(r + 23u, quad + 3u);
    c24_0 = old(r + 24u, quad + 0u); c24_1 = old(r + 24u, quad + 1u); c24_2 = old(r + 24u, quad + 2u); c24_3 = old(r + 24u, quad + 3u);
    c25_0 = old(r + 25u, quad + 0u); c25_1 = old(r + 25u, quad + 1u); c25_2 = old(r + 25u, quad + 2u); c25_3 = old(r + 25u, quad + 3u);
    c26_0 = old(r + 26u, quad + 0u); c26_1 = old(r + 26u, quad + 1u); c26_2 = old(r + 26u, quad + 2u); c26_3 = old(r + 26u, quad + 3u);
    c27_0 = old(r + 27u, quad + 0u); c27_1 = old(r + 27u, quad + 1u); c27_2 = old(r + 27u, quad + 2u); c27_3 = old(r + 27u, quad + 3u);
    c28_0 = old(r + 28u, quad + 0u); c28_1 = old(r + 28u, quad + 1u); c28_2 = old(r + 28u, quad + 2u); c28_3 = old(r + 28u, quad + 3u);
    c29_0 = old(r + 29u, quad + 0u); c29_1 = old(r + 29u, quad + 1u); c29_2 = old(r + 29u, quad + 2u); c29_3 = old(r + 29u, quad + 3u);
    c30_0 = old(r + 30u, quad + 0u); c30_1 = old(r + 30u, quad + 1u); c30_2 = old(r + 30u, quad + 2u); c30_3 = old(r + 30u, quad + 3u);
    c31_0 = old(r + 31u, quad + 0u); c31_1 = old(r + 31u, quad + 1u); c31_2 = old(r + 31u, quad + 2u); c31_3 = old(r + 31u, quad + 3u);
  }
