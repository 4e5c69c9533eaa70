import { strictEqual as assertEquals } from "node:assert/strict";
import { formatFixed, formatTimedelta, pythonFloat } from "../../src/prompts/format.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// Every expected string below was checked against CPython 3 format() / str().
Deno.test("formatFixed() rounds exact binary ties to even like Python :.1f", () => {
  assertEquals(formatFixed(3.25, 1), "3.2");
  assertEquals(formatFixed(0.75, 1), "0.8");
  assertEquals(formatFixed(2.25, 1), "2.2");
  assertEquals(formatFixed(0.125, 2), "0.12");
  assertEquals(formatFixed(19.25, 1), "19.2");
});

Deno.test("formatFixed() rounds a non-tie by its exact binary value", () => {
  // 0.05 is stored slightly above 0.05, 0.15 slightly below 0.15, 0.35 slightly below 0.35 (CPython: 0.1, 0.1, 0.3).
  assertEquals(formatFixed(0.05, 1), "0.1");
  assertEquals(formatFixed(0.15, 1), "0.1");
  assertEquals(formatFixed(0.35, 1), "0.3");
  assertEquals(formatFixed(9.95, 1), "9.9");
});

Deno.test("formatFixed() prints large and signed values in full like Python", () => {
  assertEquals(formatFixed(1e22, 1), "10000000000000000000000.0");
  assertEquals(formatFixed(123456789.95, 1), "123456790.0");
  assertEquals(formatFixed(2 ** 60 + 2 ** 8, 1), "1152921504606847232.0");
  assertEquals(formatFixed(-2.25, 1), "-2.2");
  assertEquals(formatFixed(-0.04, 1), "-0.0");
  assertEquals(formatFixed(0, 1), "0.0");
  assertEquals(formatFixed(5e-324, 1), "0.0");
});

Deno.test("pythonFloat() prints floats like Python str()", () => {
  assertEquals(pythonFloat(5), "5.0");
  assertEquals(pythonFloat(4.5), "4.5");
  assertEquals(pythonFloat(0), "0.0");
  assertEquals(pythonFloat(-0), "-0.0");
  assertEquals(pythonFloat(100), "100.0");
  assertEquals(pythonFloat(0.1 + 0.2), "0.30000000000000004");
  assertEquals(pythonFloat(0.0001), "0.0001");
  assertEquals(pythonFloat(0.00001), "1e-05");
  assertEquals(pythonFloat(1e15), "1000000000000000.0");
  assertEquals(pythonFloat(1e16), "1e+16");
  assertEquals(pythonFloat(1.5e300), "1.5e+300");
  assertEquals(pythonFloat(-3.75), "-3.75");
});

Deno.test("formatTimedelta() uses the days branch with fractional hours", () => {
  assertEquals(formatTimedelta(71 * DAY + 19 * HOUR + 18 * MINUTE, 0), "71d 19.3h");
  assertEquals(formatTimedelta(1 * DAY, 0), "1d 0.0h");
  // 15 min = 0.25 h, an exact tie that rounds to even.
  assertEquals(formatTimedelta(2 * DAY + 15 * MINUTE, 0), "2d 0.2h");
});

Deno.test("formatTimedelta() uses the hours branch with fractional minutes", () => {
  assertEquals(formatTimedelta(HOUR + 5 * MINUTE + 12 * SECOND, 0), "1h 5.2min");
  assertEquals(formatTimedelta(23 * HOUR + 59 * MINUTE + 59 * SECOND, 0), "23h 60.0min");
});

Deno.test("formatTimedelta() uses the minutes branch, with 3 min 15 s rounding to even", () => {
  assertEquals(formatTimedelta(3 * MINUTE + 15 * SECOND, 0), "3.2min");
  assertEquals(formatTimedelta(45 * SECOND, 0), "0.8min");
});

Deno.test("formatTimedelta() prints 0.0min for equal timestamps and ignores milliseconds", () => {
  const t = 1_690_000_000_123;
  assertEquals(formatTimedelta(t, t), "0.0min");
  assertEquals(formatTimedelta(t + 999, t), "0.0min");
  // 0.8 s across a second boundary still counts as 0 s, as Python's timedelta.seconds does.
  assertEquals(formatTimedelta(1_000_000_000_100, 999_999_999_900), "0.0min");
});

Deno.test("formatTimedelta() normalises a negative delta like Python's timedelta", () => {
  // timedelta(seconds=-60) is days=-1, seconds=86340: the hours branch, "23h 59.0min".
  assertEquals(formatTimedelta(0, MINUTE), "23h 59.0min");
});
