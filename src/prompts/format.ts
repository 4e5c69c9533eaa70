/**
 * Python-compatible number and time formatting for the R²ec prompts (rrec-spec §B.2, §B.4, §H.15).
 *
 * The reference prompter is Python, so ratings print like `str(float)` (`5.0`, not `5`) and time
 * deltas like `f"{x:.1f}"`, which rounds the exact binary value with ties to even (3.25 → `3.2`).
 * JavaScript's `toFixed` rounds ties away from zero, so it cannot be used.
 *
 * @module
 */

const MS_PER_DAY = 86_400_000;

/** Splits a finite double into `mantissa · 2^exponent` with an integer mantissa. */
function decomposeDouble(x: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const high = view.getUint32(0);
  const low = view.getUint32(4);
  const biasedExponent = high >>> 20;
  const fraction = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  if (biasedExponent === 0) return { mantissa: fraction, exponent: -1074 };
  return { mantissa: fraction | (1n << 52n), exponent: biasedExponent - 1075 };
}

/**
 * Formats `x` with `digits` decimals exactly like Python's `format(x, f".{digits}f")`: the exact
 * binary value is rounded half to even, and the sign of a negative value survives (`-0.0`).
 *
 * @example
 * ```ts
 * formatFixed(3.25, 1); // "3.2" (toFixed gives "3.3")
 * formatFixed(0.75, 1); // "0.8"
 * formatFixed(0.05, 1); // "0.1" (0.05 is slightly above 0.05 in binary)
 * ```
 */
export function formatFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const negative = x < 0 || Object.is(x, -0);
  const { mantissa, exponent } = decomposeDouble(x);
  const scaled = mantissa * 10n ** BigInt(digits);
  let units: bigint;
  if (exponent >= 0) {
    units = scaled << BigInt(exponent);
  } else {
    const denominator = 1n << BigInt(-exponent);
    const quotient = scaled / denominator;
    const twiceRemainder = 2n * (scaled % denominator);
    const roundUp = twiceRemainder > denominator || (twiceRemainder === denominator && quotient % 2n === 1n);
    units = roundUp ? quotient + 1n : quotient;
  }
  const text = units.toString().padStart(digits + 1, "0");
  const body = digits === 0 ? text : `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  return negative ? `-${body}` : body;
}

/**
 * Formats a number like Python's `str(float(x))`: the shortest round-trip digits, always with a
 * decimal point in fixed notation, and scientific notation below 1e-4 or from 1e16 on.
 *
 * @example
 * ```ts
 * pythonFloat(5); // "5.0"
 * pythonFloat(4.5); // "4.5"
 * pythonFloat(1e16); // "1e+16"
 * pythonFloat(0.00001); // "1e-05"
 * ```
 */
export function pythonFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  // toExponential() without an argument yields the shortest round-trip digits, as Python's repr does.
  const [mantissaText, exponentText] = Math.abs(x).toExponential().split("e");
  const digits = mantissaText.replace(".", "");
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 16) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const exponentDigits = String(Math.abs(exponent)).padStart(2, "0");
    return `${sign}${mantissa}e${exponent < 0 ? "-" : "+"}${exponentDigits}`;
  }
  if (exponent < 0) return `${sign}0.${"0".repeat(-exponent - 1)}${digits}`;
  const integerPart = digits.slice(0, exponent + 1).padEnd(exponent + 1, "0");
  const fractionPart = digits.slice(exponent + 1) || "0";
  return `${sign}${integerPart}.${fractionPart}`;
}

/**
 * The time between a history purchase and the target purchase, as the reference's
 * `format_timedelta(target − history)` prints it (rrec-spec §B.2), without the trailing `" ago"`.
 *
 * Follows Python's `timedelta` normalisation (`days` floors, `seconds` in [0, 86400)),
 * ignores sub-second parts, and uses UTC so daylight-saving changes never shift a delta.
 *
 * @example
 * ```ts
 * formatTimedelta(195_000, 0); // "3.2min" (3 min 15 s: 3.25 rounds to even)
 * formatTimedelta(3_912_000, 0); // "1h 5.2min"
 * formatTimedelta(0, 0); // "0.0min"
 * ```
 */
export function formatTimedelta(targetMs: number, historyMs: number): string {
  const deltaMs = targetMs - historyMs;
  const days = Math.floor(deltaMs / MS_PER_DAY);
  const seconds = Math.floor((deltaMs - days * MS_PER_DAY) / 1000);
  const hours = Math.floor(seconds / 3600);
  const remainder = seconds % 3600;
  const minutes = Math.floor(remainder / 60) + (remainder % 60) / 60;
  if (days > 0) return `${days}d ${formatFixed(hours + minutes / 60, 1)}h`;
  if (hours > 0) return `${hours}h ${formatFixed(minutes, 1)}min`;
  return `${formatFixed(minutes, 1)}min`;
}
