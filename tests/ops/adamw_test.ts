import { getEngine } from "../../src/gpu/engine.ts";
import {
  type AdamwGroup,
  type AdamwOptions,
  adamwStep,
  adamwStepCpu,
  clipCoefficient,
} from "../../src/ops/adamw.ts";
import {
  allocatePacked,
  bf16Round,
  matmulPackedBf16,
  matrixView,
  packBf16,
  releasePacked,
} from "../../src/ops/matmul.ts";
import { assertClose, hasGpu, randomArray } from "./check.ts";

// Tolerance: the GPU runs the same operations in f32. Each step moves a parameter by ≤ lr·(1 + ~1e-6
// relative error of m/√v) and the f32 rounding of values ~1 is 6e-8, so after 5 steps at lr 1e-2 the
// parameters agree to ~1e-6; m and v are plain f32 recurrences (~1e-7 relative). The norm sums
// 1e5 squares in f32 partials (~1e-6 relative). A missing bias correction, decay or clip is ≥ 1e-3 off.
const PARAM_TOL = { atol: 3e-6, rtol: 3e-6 };
const MOMENT_TOL = { atol: 1e-7, rtol: 1e-5 };
const NORM_TOL = { atol: 0, rtol: 1e-5 };

const OPTS: Omit<AdamwOptions, "step" | "maxGradNorm"> = {
  lr: 1e-2,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
};

Deno.test("adamwStepCpu() first step moves each parameter by lr·sign(g) after decay", () => {
  // With zero moments, bias correction makes step 1 exactly p·(1 − lr·wd) − lr·g/(|g| + eps).
  const grad = [0.5, -2, 1e-3], param = [1, -1, 0.25];
  const group = {
    param: Float64Array.from(param),
    grad: Float64Array.from(grad),
    m: new Float64Array(3),
    v: new Float64Array(3),
  };
  const norm = adamwStepCpu([group], { ...OPTS, step: 1, maxGradNorm: 0 });
  const expected = param.map((p, i) =>
    p * (1 - OPTS.lr * OPTS.weightDecay) - OPTS.lr * grad[i] / (Math.abs(grad[i]) + OPTS.eps)
  );
  assertClose(group.param, expected, { atol: 1e-15 }, "param");
  assertClose([norm], [Math.hypot(...grad)], { atol: 1e-15 }, "norm");
});

Deno.test("adamwStepCpu() clipping scales the gradient by maxNorm / (norm + 1e-6)", () => {
  // Scaling all gradients by c leaves step 1 unchanged (Adam is scale-invariant up to eps), so
  // check the moments, which carry the clipped gradient directly.
  const grad = Float64Array.from([3, 4]);
  const group = { param: new Float64Array(2), grad, m: new Float64Array(2), v: new Float64Array(2) };
  adamwStepCpu([group], { ...OPTS, step: 1, maxGradNorm: 1 });
  const coef = 1 / (5 + 1e-6);
  assertClose(group.m, [0.1 * 3 * coef, 0.1 * 4 * coef], { atol: 1e-15 }, "m");
  assertClose([clipCoefficient(5, 10), clipCoefficient(5, 0)], [1, 1], { atol: 0 }, "inactive coefficients");
});

// Sizes divisible by 4 take the vec4 sum of squares; 8196 and 70_001 span several blocks with a tail.
const SIZES = [1, 4, 1000, 63, 8196, 70_001];
const CASES = [
  { name: "clipping active", maxGradNorm: 1 },
  { name: "clipping inactive", maxGradNorm: 1e6 },
  { name: "clipping off", maxGradNorm: 0 },
];

for (const { name, maxGradNorm } of CASES) {
  Deno.test({
    name: `adamwStep() matches the CPU reference over 5 steps with ${name}`,
    ignore: !hasGpu,
    async fn() {
      const engine = await getEngine();
      const pool = engine.pool;
      const cpu: AdamwGroup<Float64Array>[] = SIZES.map((n, i) => ({
        param: Float64Array.from(randomArray(n, 10 + i)),
        grad: new Float64Array(n),
        m: new Float64Array(n),
        v: new Float64Array(n),
      }));
      const gpu: AdamwGroup[] = SIZES.map((n, i) => ({
        param: pool.upload(Float32Array.from(cpu[i].param), [n]),
        grad: pool.tensor([n]),
        m: pool.zeros([n]),
        v: pool.zeros([n]),
      }));
      const gradNorm = pool.tensor([1]);
      for (let step = 1; step <= 5; step++) {
        const opts = { ...OPTS, step, maxGradNorm };
        const grads = SIZES.map((n, i) => randomArray(n, 100 * step + i, 0.05));
        grads.forEach((g, i) => {
          cpu[i].grad.set(g);
          engine.gpu.device.queue.writeBuffer(gpu[i].grad.buffer, 0, g as Float32Array<ArrayBuffer>);
        });
        const expectedNorm = adamwStepCpu(cpu, opts);
        const rec = engine.recorder();
        adamwStep(rec, gpu, opts, gradNorm);
        const norm = rec.read(gradNorm);
        await rec.submit();
        assertClose(await norm, [expectedNorm], NORM_TOL, `norm at step ${step}`);
      }
      const rec = engine.recorder();
      const reads = gpu.map(({ param, m, v }) => [rec.read(param), rec.read(m), rec.read(v)]);
      await rec.submit();
      for (let i = 0; i < SIZES.length; i++) {
        const [param, m, v] = await Promise.all(reads[i]);
        assertClose(param, cpu[i].param, PARAM_TOL, `param ${i}`);
        assertClose(m, cpu[i].m, MOMENT_TOL, `m ${i}`);
        assertClose(v, cpu[i].v, MOMENT_TOL, `v ${i}`);
      }
      for (const g of gpu) for (const t of [g.param, g.grad, g.m, g.v]) pool.release(t);
      pool.release(gradNorm);
    },
  });
}

Deno.test({
  name: "adamwStep() with a row pack updates like the CPU reference and packs the new values in bf16",
  ignore: !hasGpu,
  async fn() {
    const engine = await getEngine();
    const pool = engine.pool;
    // [rows × cols]: one texel per row, and several rows of 8 texels over more than a workgroup.
    for (const [rows, cols] of [[4, 8], [36, 64]]) {
      const n = rows * cols;
      const cpu: AdamwGroup<Float64Array> = {
        param: Float64Array.from(randomArray(n, 7)),
        grad: new Float64Array(n),
        m: new Float64Array(n),
        v: new Float64Array(n),
      };
      const rec = engine.recorder();
      const gpu: AdamwGroup = {
        param: pool.upload(Float32Array.from(cpu.param), [rows, cols]),
        grad: pool.tensor([n]),
        m: pool.zeros([n]),
        v: pool.zeros([n]),
        rowPack: allocatePacked(rec, rows, cols, "row_pack"),
      };
      const gradNorm = pool.tensor([1]);
      for (let step = 1; step <= 2; step++) {
        const g = randomArray(n, 30 + step, 0.05);
        cpu.grad.set(g);
        rec.write(gpu.grad, g);
        adamwStepCpu([cpu], { ...OPTS, step, maxGradNorm: 1 });
        adamwStep(rec, [gpu], { ...OPTS, step, maxGradNorm: 1 }, gradNorm);
      }
      // The pack read through a product with the identity: I·Wᵀ = Wᵀ exactly (one nonzero term).
      const identity = pool.upload(
        Float32Array.from({ length: cols * cols }, (_, i) => (i % (cols + 1) === 0 ? 1 : 0)),
        [cols, cols],
      );
      const identityPack = packBf16(rec, matrixView(identity, cols, cols));
      const unpacked = pool.tensor([cols, rows]);
      matmulPackedBf16(rec, identityPack, gpu.rowPack!, unpacked);
      const reads = [rec.read(gpu.param), rec.read(gpu.m), rec.read(gpu.v), rec.read(unpacked)];
      await rec.submit();
      const [param, m, v, packedT] = await Promise.all(reads);
      assertClose(param, cpu.param, PARAM_TOL, `param ${rows}×${cols}`);
      assertClose(m, cpu.m, MOMENT_TOL, `m ${rows}×${cols}`);
      assertClose(v, cpu.v, MOMENT_TOL, `v ${rows}×${cols}`);
      const rounded = Array.from(
        packedT,
        (_, i) => bf16Round(param[(i % rows) * cols + Math.floor(i / rows)]),
      );
      assertClose(packedT, rounded, { atol: 0 }, `row pack ${rows}×${cols}`);
      releasePacked(rec, identityPack);
      releasePacked(rec, gpu.rowPack!);
      for (const t of [gpu.param, gpu.grad, gpu.m, gpu.v, identity, unpacked, gradNorm]) pool.release(t);
    }
  },
});
