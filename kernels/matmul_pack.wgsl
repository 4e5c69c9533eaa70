// Packs a strided fp32 matrix from a storage buffer into an rgba32float texture for the texture
// matmul: texel (x, y) holds scale × elements (y, 4x … 4x+3) of the logical [rows × cols] matrix
// whose element (r, c) is src[r·src_row + c·src_col]. Texels outside the matrix are written as
// zeros, so the matmul kernel needs no bounds checks on k. Transposes are a choice of strides;
// the scale carries matmul's alpha.
// Napkin math: 4 scalar loads + 1 texel store per texel; ~2–4 ms per 1 M elements on lavapipe
// (compute-notes §4), small beside the matmul that reads the texture ≥ 256 times.

struct Params {
  rows: u32,
  cols: u32,
  src_row: u32,
  src_col: u32,
  width: u32,
  height: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;

// Lanes walk along the contiguous direction of the source: along texture x when the source rows
// are contiguous (src_col = 1), along texture y (source columns) for a transposing pack.
override LANES_ON_ROWS: bool = false;

@compute @workgroup_size(16, 1, 1)
fn matmul_pack(@builtin(global_invocation_id) gid: vec3<u32>) {
  var x = gid.x;
  var y = gid.y;
  if (LANES_ON_ROWS) {
    x = gid.y;
    y = gid.x;
  }
  if (x >= p.width || y >= p.height) { return; }
  var v = vec4<f32>(0.0);
  if (y < p.rows) {
    for (var e = 0u; e < 4u; e++) {
      let col = 4u * x + e;
      if (col < p.cols) { v[e] = p.scale * src[y * p.src_row + col * p.src_col]; }
    }
  }
  textureStore(dst, vec2<u32>(x, y), v);
}
