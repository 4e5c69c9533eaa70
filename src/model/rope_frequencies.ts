/**
 * RoPE inverse frequencies for a config, including its `rope_scaling`, computed as `transformers`'
 * `ROPE_INIT_FUNCTIONS` do, so the decoder only has to rotate by `position · invFreq[i]`.
 *
 * @module
 */
import type { ModelConfig } from "./config.ts";

/**
 * The `head_dim / 2` inverse frequencies `1 / theta^(2i / head_dim)`, divided by the factor for
 * linear scaling and blended per wavelength for Llama-3 scaling, rounded to f32.
 *
 * @example
 * ```ts
 * const invFreq = ropeInverseFrequencies(config);
 * const angle = position * invFreq[i]; // rotates dims i and i + head_dim/2 (rotate-half)
 * ```
 */
export function ropeInverseFrequencies(
  config: Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling">,
): Float32Array {
  const { headDim, ropeTheta, ropeScaling } = config;
  const base = Array.from({ length: headDim / 2 }, (_, i) => 1 / ropeTheta ** ((2 * i) / headDim));
  if (ropeScaling === null) return Float32Array.from(base);
  if (ropeScaling.type === "linear") return Float32Array.from(base, (f) => f / ropeScaling.factor);
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: context } = ropeScaling;
  const lowFreqWavelength = context / lowFreqFactor;
  const highFreqWavelength = context / highFreqFactor;
  return Float32Array.from(base, (f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < highFreqWavelength) return f;
    if (wavelength > lowFreqWavelength) return f / factor;
    const smooth = (context / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}
