/**
 * Python string semantics the reference preprocessing relies on (rrec-spec §A.2): `str.strip()`,
 * `html.unescape`, the reference's `clean_text`, and `float(x)`.
 *
 * @example
 * ```ts
 * cleanText("  Caf&eacute; <b>Bar</b>\n"); // "Caf  Bar" (é → one space, after the space collapse)
 * pythonFloat(" 12.5 "); // 12.5
 * ```
 *
 * @module
 */
import { HTML5_ENTITIES } from "./html_entities.ts";

/** Characters for which Python's `str.isspace()` is true (what `str.strip()` removes). */
const PY_SPACE = "\\t-\\r\\x1c- \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "g");

/**
 * Python's `s.strip()`: removes Python whitespace at both ends (unlike JS `trim()`, it removes
 * `\x1c`-`\x1f` and `\x85` and keeps `\ufeff`).
 *
 * @example
 * ```ts
 * pythonStrip("\x85 a \x1f"); // "a"
 * ```
 */
export function pythonStrip(s: string): string {
  return s.replace(PY_STRIP, "");
}

// CPython Lib/html/__init__.py: numeric references remapped (Windows-1252) or removed.
const INVALID_CHARREFS: Readonly<Record<number, string>> = {
  0x00: "\ufffd",
  0x0d: "\r",
  0x80: "\u20ac",
  0x81: "\x81",
  0x82: "\u201a",
  0x83: "\u0192",
  0x84: "\u201e",
  0x85: "\u2026",
  0x86: "\u2020",
  0x87: "\u2021",
  0x88: "\u02c6",
  0x89: "\u2030",
  0x8a: "\u0160",
  0x8b: "\u2039",
  0x8c: "\u0152",
  0x8d: "\x8d",
  0x8e: "\u017d",
  0x8f: "\x8f",
  0x90: "\x90",
  0x91: "\u2018",
  0x92: "\u2019",
  0x93: "\u201c",
  0x94: "\u201d",
  0x95: "\u2022",
  0x96: "\u2013",
  0x97: "\u2014",
  0x98: "\u02dc",
  0x99: "\u2122",
  0x9a: "\u0161",
  0x9b: "\u203a",
  0x9c: "\u0153",
  0x9d: "\x9d",
  0x9e: "\u017e",
  0x9f: "\u0178",
};

function isInvalidCodepoint(n: number): boolean {
  return (n >= 0x1 && n <= 0x8) || n === 0xb || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe;
}

const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

function replaceCharref(_match: string, ref: string): string {
  if (ref[0] === "#") {
    const hex = ref[1] === "x" || ref[1] === "X";
    const digits = ref.slice(hex ? 2 : 1).replace(/;$/, "");
    const n = parseInt(digits, hex ? 16 : 10);
    if (n in INVALID_CHARREFS) return INVALID_CHARREFS[n];
    if ((n >= 0xd800 && n <= 0xdfff) || n > 0x10ffff) return "\ufffd";
    if (isInvalidCodepoint(n)) return "";
    return String.fromCodePoint(n);
  }
  if (Object.hasOwn(HTML5_ENTITIES, ref)) return HTML5_ENTITIES[ref];
  // The longest known prefix wins (legacy references such as "&ampx" → "&x").
  for (let x = ref.length - 1; x > 1; x--) {
    const prefix = ref.slice(0, x);
    if (Object.hasOwn(HTML5_ENTITIES, prefix)) return HTML5_ENTITIES[prefix] + ref.slice(x);
  }
  return "&" + ref;
}

/**
 * Python's `html.unescape(s)`: HTML5 named references (with legacy ones that need no `;`) and numeric
 * references with CPython's remapping of invalid code points.
 *
 * @example
 * ```ts
 * pythonHtmlUnescape("Tom &amp; Jerry &#8482;"); // "Tom & Jerry ™"
 * ```
 */
export function pythonHtmlUnescape(s: string): string {
  return s.includes("&") ? s.replace(CHARREF, replaceCharref) : s;
}

/**
 * The reference's `clean_text` (rrec-spec §A.2), step by step: HTML-unescape, strip, delete `<...>`
 * tags, `\n`/`\t` → space, collapse runs of spaces, then every non-ASCII code point → one space.
 * Because the last step runs after the collapse, the result can hold double or trailing spaces.
 *
 * @example
 * ```ts
 * cleanText("<p>Drum&nbsp;kit</p>\n"); // "Drum kit"
 * ```
 */
export function cleanText(raw: string): string {
  return pythonStrip(pythonHtmlUnescape(raw))
    .replace(/<[^>]+>/g, "")
    .replace(/[\n\t]/g, " ")
    .replace(/ +/g, " ")
    .replace(/[\u0080-\u{10ffff}]/gu, " ");
}

const PY_FLOAT = /^[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?$/;

/**
 * Python's `float(x)` for a JSON value, or `undefined` where Python raises. Finite values only:
 * `"nan"` and `"inf"` (which Python accepts) give `undefined`, because a price must be a real number
 * that JSON can store (a documented deviation). Booleans are 1 and 0, as in Python.
 *
 * @example
 * ```ts
 * pythonFloat("1_000.5"); // 1000.5
 * pythonFloat("12.99 - 15.99"); // undefined
 * pythonFloat(null); // undefined
 * ```
 */
export function pythonFloat(x: unknown): number | undefined {
  if (typeof x === "number") return Number.isFinite(x) ? x : undefined;
  if (typeof x === "boolean") return x ? 1 : 0;
  if (typeof x !== "string") return undefined;
  const s = pythonStrip(x);
  if (!PY_FLOAT.test(s)) return undefined;
  const n = Number(s.replaceAll("_", ""));
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Python's `len(s.split(" "))`: the word count of rrec-spec §A.2 rule 4, where double spaces make
 * empty words that count.
 *
 * @example
 * ```ts
 * spaceSplitCount("a  b"); // 3
 * ```
 */
export function spaceSplitCount(s: string): number {
  let n = 1;
  for (let i = s.indexOf(" "); i !== -1; i = s.indexOf(" ", i + 1)) n++;
  return n;
}

/**
 * Python's `len(s)`: the length in code points, not UTF-16 units.
 *
 * @example
 * ```ts
 * pythonLength("😀"); // 1
 * ```
 */
export function pythonLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}
