// Register-only FMA throughput: the machine's compute ceiling at the time of a benchmark run, so
// kernel figures can be read against it (llvmpipe speed drifts 30–50 % over minutes here).
// Napkin math: 16 independent vec4 FMA chains per lane (enough to hide FMA latency), no memory
// traffic inside the loop; compute-notes §2.1 measured 83–95 GFLOP/s on 2 cores.

struct Params { iterations: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(16, 1, 1)
fn fma_peak(@builtin(global_invocation_id) gid: vec3<u32>) {
  var a0 = vec4<f32>(f32(gid.x) * 1.0e-9);
  var a1 = vec4<f32>(f32(gid.x) * 2.0e-9);
  var a2 = vec4<f32>(f32(gid.x) * 3.0e-9);
  var a3 = vec4<f32>(f32(gid.x) * 4.0e-9);
  var a4 = vec4<f32>(f32(gid.x) * 5.0e-9);
  var a5 = vec4<f32>(f32(gid.x) * 6.0e-9);
  var a6 = vec4<f32>(f32(gid.x) * 7.0e-9);
  var a7 = vec4<f32>(f32(gid.x) * 8.0e-9);
  var a8 = vec4<f32>(f32(gid.x) * 9.0e-9);
  var a9 = vec4<f32>(f32(gid.x) * 10.0e-9);
  var a10 = vec4<f32>(f32(gid.x) * 11.0e-9);
  var a11 = vec4<f32>(f32(gid.x) * 12.0e-9);
  var a12 = vec4<f32>(f32(gid.x) * 13.0e-9);
  var a13 = vec4<f32>(f32(gid.x) * 14.0e-9);
  var a14 = vec4<f32>(f32(gid.x) * 15.0e-9);
  var a15 = vec4<f32>(f32(gid.x) * 16.0e-9);
  let m = vec4<f32>(0.999);
  let b = vec4<f32>(1e-7);
  for (var i = 0u; i < p.iterations; i++) {
    a0 = fma(a0, m, b);
    a1 = fma(a1, m, b);
    a2 = fma(a2, m, b);
    a3 = fma(a3, m, b);
    a4 = fma(a4, m, b);
    a5 = fma(a5, m, b);
    a6 = fma(a6, m, b);
    a7 = fma(a7, m, b);
    a8 = fma(a8, m, b);
    a9 = fma(a9, m, b);
    a10 = fma(a10, m, b);
    a11 = fma(a11, m, b);
    a12 = fma(a12, m, b);
    a13 = fma(a13, m, b);
    a14 = fma(a14, m, b);
    a15 = fma(a15, m, b);
  }
  // Every chain feeds the output, so none is optimised away.
  out[gid.x] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15;
}
