import assert from "node:assert/strict";
import type { RopeScaling } from "../../src/model/config.ts";
import { ropeInverseFrequencies } from "../../src/model/rope_frequencies.ts";

function assertClose(actual: Float32Array, expected: number[]): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((value, i) =>
    assert.ok(Math.abs(actual[i] - value) <= 1e-7 * Math.abs(value), `[${i}] ${actual[i]} vs ${value}`)
  );
}

const llama3 = (context: number): RopeScaling => ({
  type: "llama3",
  factor: 8,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: context,
});

Deno.test("ropeInverseFrequencies() gives 1/theta^(2i/d), divided by the linear factor", () => {
  assertClose(ropeInverseFrequencies({ headDim: 4, ropeTheta: 10000, ropeScaling: null }), [1, 0.01]);
  const linear: RopeScaling = { type: "linear", factor: 2 };
  assertClose(ropeInverseFrequencies({ headDim: 4, ropeTheta: 10000, ropeScaling: linear }), [0.5, 0.005]);
});

Deno.test("ropeInverseFrequencies() blends Llama-3 scaling by wavelength", () => {
  // context 1000: wavelengths below 250 keep their frequency, above 1000 divide it by 8, between blend.
  // Frequency 0.01 has wavelength 200π ≈ 628.3: smooth = (1000/628.3 − 1)/3 = 0.1971831,
  // so 0.01/8 + 0.1971831 · (0.01 − 0.01/8) = 0.0029753524.
  assertClose(ropeInverseFrequencies({ headDim: 4, ropeTheta: 10000, ropeScaling: llama3(1000) }), [
    1,
    0.0029753524,
  ]);
  // head_dim 6: 10000^(-2/3) = 0.0021544347 has wavelength ≈ 2916 > 1000, so it is divided by 8.
  assertClose(
    ropeInverseFrequencies({ headDim: 6, ropeTheta: 10000, ropeScaling: llama3(1000) }),
    [1, 0.046415888, 0.0021544347 / 8],
  );
});
