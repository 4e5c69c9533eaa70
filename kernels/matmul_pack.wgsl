// Packs a strided fp32 matrix from a storage buffer into a texture for the texture matmul. The
// logical [rows × cols] matrix has element (r, c) at src[offset + r·src_row + c·src_col]
// (transposes and blocks of larger matrices are a choice of strides and offset) and is
// multiplied by `scale` (matmul's alpha). Texture row y is matrix row y:
// - matmul_pack: rgba32float, texel x holds columns 4x … 4x+3;
// - matmul_pack_bf16: rgba32uint, texel x holds columns 8x … 8x+7 rounded to bf16 (round to
//   nearest even), two per u32, the lower column in the low half (the opt-in bf16 mode).
// Texels outside the matrix are written as zeros, so the matmul kernels need no bounds checks on k.
// Napkin math: 4 (8) scalar loads + 1 texel store per texel; ~2–4 ms per 1 M elements on lavapipe
// (compute-notes §4), small beside the matmul that reads each texel ≥ 32 times.

struct Params {
  rows: u32,
  cols: u32,
  src_row: u32,
  src_col: u32,
  width: u32,
  height: u32,
  scale: f32,
  offset: u32,
  // Lanes walk along the contiguous direction of the source: along texture x when the source
  // rows are contiguous (src_col = 1), along texture y (source columns) for a transposing pack.
  // A uniform rather than an override, so both directions share one compiled pipeline.
  lanes_on_rows: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var dst_bf16: texture_storage_2d<rgba32uint, write>;

// The texel this lane writes, or x = width when it has none.
fn texel(gid: vec3<u32>) -> vec2<u32> {
  var at = gid.xy;
  if (p.lanes_on_rows != 0u) { at = gid.yx; }
  if (at.x >= p.width || at.y >= p.height) { return vec2<u32>(p.width, 0u); }
  return at;
}

fn element(row: u32, col: u32) -> f32 {
  if (row >= p.rows || col >= p.cols) { return 0.0; }
  return p.scale * src[p.offset + row * p.src_row + col * p.src_col];
}

// #include bf16

@compute @workgroup_size(16, 1, 1)
fn matmul_pack(@builtin(global_invocation_id) gid: vec3<u32>) {
  let at = texel(gid);
  if (at.x == p.width) { return; }
  let c = 4u * at.x;
  let v = vec4<f32>(element(at.y, c), element(at.y, c + 1u), element(at.y, c + 2u), element(at.y, c + 3u));
  textureStore(dst, at, v);
}

@compute @workgroup_size(16, 1, 1)
fn matmul_pack_bf16(@builtin(global_invocation_id) gid: vec3<u32>) {
  let at = texel(gid);
  if (at.x == p.width) { return; }
  var v: vec4<u32>;
  for (var j = 0u; j < 4u; j++) {
    let c = 8u * at.x + 2u * j;
    v[j] = bf16(element(at.y, c)) | (bf16(element(at.y, c + 1u)) << 16u);
  }
  textureStore(dst_bf16, at, v);
}

// Copies the padded scratch output of the texture kernel (rows of ldc ≥ n values, used when n is
// not a multiple of 4) into C [m × n]. One lane per element of C, 2-D grid for large C.
struct UnpadParams {
  count: u32,
  n: u32,
  ldc: u32,
  row_stride: u32,
}

@group(0) @binding(0) var<uniform> u: UnpadParams;
@group(0) @binding(1) var<storage, read> padded: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(16, 1, 1)
fn matmul_unpad(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * u.row_stride;
  if (i >= u.count) { return; }
  c[i] = padded[(i / u.n) * u.ldc + i % u.n];
}

// The transposing pack with vec4 loads: when src_row = 1 (the source is stored [cols × rows]
// row-major) and src_col and offset are multiples of 4, each lane loads a 4 × 4 block as four vec4
// (one per source row) and writes four texels, one per texture row. Four wide loads instead of
// sixteen scalar ones halve the cost of a transposing pack (~6.5 ns per element per core with the
// scalar entry). Lanes walk along texture x (grid: x by texel column, y by 4-row block), so the
// lanes of a workgroup store neighbouring texels of the same rows: with lanes along texture rows
// each store hit a different row's cache line, and the bf16 pack of 1024 × 1024 took ~15 ms
// instead of ~2 (NN products ran at 0.75× of NT; now equal). Texture rows past `rows` receive
// neighbouring values and are never read by the matmul kernel as results (they only feed
// rows/columns that are not stored).
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;

fn source_row(c: u32, r0: u32) -> vec4<f32> {
  if (c >= p.cols) { return vec4<f32>(); }
  return p.scale * src4[(p.offset + c * p.src_col + r0) / 4u];
}

@compute @workgroup_size(16, 1, 1)
fn matmul_pack_transposed(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r0 = 4u * gid.y;
  let x = gid.x;
  if (r0 >= p.height || x >= p.width) { return; }
  let block = transpose(mat4x4<f32>(
    source_row(4u * x, r0),
    source_row(4u * x + 1u, r0),
    source_row(4u * x + 2u, r0),
    source_row(4u * x + 3u, r0),
  ));
  for (var j = 0u; j < 4u; j++) {
    if (r0 + j < p.height) { textureStore(dst, vec2<u32>(x, r0 + j), block[j]); }
  }
}

// The same for bf16 texels: each lane loads an 8 × 4 block (eight source rows = the 8 k values of
// a texel) and writes four texels; even source rows fill the low halves, odd ones the high halves.
@compute @workgroup_size(16, 1, 1)
fn matmul_pack_bf16_transposed(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r0 = 4u * gid.y;
  let x = gid.x;
  if (r0 >= p.height || x >= p.width) { return; }
  let c = 8u * x;
  let even = transpose(mat4x4<f32>(
    source_row(c, r0),
    source_row(c + 2u, r0),
    source_row(c + 4u, r0),
    source_row(c + 6u, r0),
  ));
  let odd = transpose(mat4x4<f32>(
    source_row(c + 1u, r0),
    source_row(c + 3u, r0),
    source_row(c + 5u, r0),
    source_row(c + 7u, r0),
  ));
  for (var j = 0u; j < 4u; j++) {
    if (r0 + j < p.height) {
      textureStore(dst_bf16, vec2<u32>(x, r0 + j), bf16x4(even[j]) | (bf16x4(odd[j]) << vec4(16u)));
    }
  }
}

// Columns 4t … 4t+3 of row `row` for a source with contiguous, vec4-aligned rows (src_col = 1,
// src_row and offset multiples of 4), zero past the matrix.
fn row_quad(row: u32, t: u32) -> vec4<f32> {
  if (row >= p.rows) { return vec4<f32>(); }
  let v = p.scale * src4[(p.offset + row * p.src_row) / 4u + t];
  return select(vec4<f32>(), v, vec4(4u * t) + vec4(0u, 1u, 2u, 3u) < vec4(p.cols));
}

// Non-transposing packs from vec4-aligned rows: one wide load per 4 values.
@compute @workgroup_size(16, 1, 1)
fn matmul_pack_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.width || gid.y >= p.height) { return; }
  textureStore(dst, gid.xy, row_quad(gid.y, gid.x));
}

@compute @workgroup_size(16, 1, 1)
fn matmul_pack_bf16_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= p.width || gid.y >= p.height) { return; }
  textureStore(dst_bf16, gid.xy, bf16_texel(row_quad(gid.y, 2u * gid.x), row_quad(gid.y, 2u * gid.x + 1u)));
}
