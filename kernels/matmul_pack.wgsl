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

// Both bf16 packs of one matrix from a single read of it, for a matrix that one product reads
// as is and another transposed (a layer's dY: dX = dY·W and dW = dYᵀ·X). Source rows are
// contiguous and vec4-aligned (src_col = 1, src_row and offset multiples of 4, cols a multiple
// of 4). Each lane loads an 8 × 8 block (16 vec4 loads) and writes its 8 texels of the row pack
// (`dst_bf16`, as matmul_pack_bf16_rows: texel (q, r) holds columns 8q … 8q+7 of row r) and its
// 8 texels of the transposed pack (`dst_bf16_t`, as matmul_pack_bf16_transposed: texel (t, c)
// holds rows 8t … 8t+7 of column c). Two packs load every value twice; the loads are what a pack
// costs on llvmpipe, so this one costs about as much as the row pack alone (1024 × 768: ~1.45 ms
// vs ~1.35 ms, both packs ~2.3 ms). Values past the matrix are zeros, and so are the texels of the
// last block's rows and columns past it: the stores and loads take no branch (the packs'
// textures have rows up to a multiple of 256), which cut the cold JIT from ~220 to ~170 ms.
// Grid: x by row-pack texel q (lanes along the columns, so the row pack's stores are neighbours
// in one row), y by 8-row block.
@group(0) @binding(3) var dst_bf16_t: texture_storage_2d<rgba32uint, write>;

// Columns 4u … 4u+3 of row `row`, zeros past the matrix.
fn block_quad(row: u32, u: u32) -> vec4<f32> {
  let v = p.scale * src4[(p.offset + row * p.src_row) / 4u + u];
  return select(vec4<f32>(), v, row < p.rows && 4u * u < p.cols);
}

// Row `row`'s texel q as bf16 bits (columns 8q … 8q+7), stored into the row pack.
fn row_texel(row: u32, q: u32) -> Bf16Eight {
  let e = bf16_eight(block_quad(row, 2u * q), block_quad(row, 2u * q + 1u));
  textureStore(dst_bf16, vec2(q, row), eight_texel(e));
  return e;
}

// Column `col`'s texel t of the transposed pack from its 8 rows' bf16 bits (row 8t+i in ei).
fn store_column(t: u32, col: u32, e0: u32, e1: u32, e2: u32, e3: u32, e4: u32, e5: u32, e6: u32, e7: u32) {
  textureStore(dst_bf16_t, vec2(t, col), column_texel(e0, e1, e2, e3, e4, e5, e6, e7));
}

@compute @workgroup_size(16, 1, 1)
fn matmul_pack_bf16_both(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  let t = gid.y;
  if (q >= p.width || 8u * t >= p.rows) { return; }
  let r0 = 8u * t;
  let e0 = row_texel(r0, q);
  let e1 = row_texel(r0 + 1u, q);
  let e2 = row_texel(r0 + 2u, q);
  let e3 = row_texel(r0 + 3u, q);
  let e4 = row_texel(r0 + 4u, q);
  let e5 = row_texel(r0 + 5u, q);
  let e6 = row_texel(r0 + 6u, q);
  let e7 = row_texel(r0 + 7u, q);
  let c = 8u * q;
  store_column(t, c, e0.a.x, e1.a.x, e2.a.x, e3.a.x, e4.a.x, e5.a.x, e6.a.x, e7.a.x);
  store_column(t, c + 1u, e0.a.y, e1.a.y, e2.a.y, e3.a.y, e4.a.y, e5.a.y, e6.a.y, e7.a.y);
  store_column(t, c + 2u, e0.a.z, e1.a.z, e2.a.z, e3.a.z, e4.a.z, e5.a.z, e6.a.z, e7.a.z);
  store_column(t, c + 3u, e0.a.w, e1.a.w, e2.a.w, e3.a.w, e4.a.w, e5.a.w, e6.a.w, e7.a.w);
  store_column(t, c + 4u, e0.b.x, e1.b.x, e2.b.x, e3.b.x, e4.b.x, e5.b.x, e6.b.x, e7.b.x);
  store_column(t, c + 5u, e0.b.y, e1.b.y, e2.b.y, e3.b.y, e4.b.y, e5.b.y, e6.b.y, e7.b.y);
  store_column(t, c + 6u, e0.b.z, e1.b.z, e2.b.z, e3.b.z, e4.b.z, e5.b.z, e6.b.z, e7.b.z);
  store_column(t, c + 7u, e0.b.w, e1.b.w, e2.b.w, e3.b.w, e4.b.w, e5.b.w, e6.b.w, e7.b.w);
}
