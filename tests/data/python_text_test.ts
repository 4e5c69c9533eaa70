/** Python string semantics, checked against values printed by CPython 3 (html.unescape, str.strip, float). */
import assert from "node:assert/strict";
import {
  cleanText,
  pythonFloat,
  pythonHtmlUnescape,
  pythonLength,
  pythonStrip,
  spaceSplitCount,
} from "../../src/data/python_text.ts";

// [input, html.unescape(input), clean_text(input)] from CPython 3, clean_text written as rrec-spec §A.2 lists it.
const CASES: [string, string, string][] = [
  ["Tom &amp; Jerry", "Tom & Jerry", "Tom & Jerry"],
  ["&ampx &notit; &noti &lt;b&gt;", "&x \u00acit; \u00aci <b>", "&x  it;  i "],
  [
    "&#128;uro &#x110000; &#0; &#1;x &#xD800; &#65 &#x41g",
    "\u20acuro \ufffd \ufffd x \ufffd A Ag",
    " uro     x   A Ag",
  ],
  ["  Caf\u00e9 <b>Bar</b>\n", "  Caf\u00e9 <b>Bar</b>\n", "Caf  Bar"],
  ["\u0085 a\tb \u001f", "\u0085 a\tb \u001f", "a b"],
  ["\ufeffBOM ", "\ufeffBOM ", " BOM"],
  ["Emoji \ud83d\ude00 here", "Emoji \ud83d\ude00 here", "Emoji   here"],
  ["&nbsp;lead", "\u00a0lead", "lead"],
  ["a   &amp;&amp;   b", "a   &&   b", "a && b"],
  ['<span id="x">t</span> &Aacute;&AElig; &AMP', '<span id="x">t</span> \u00c1\u00c6 &', "t    &"],
  ["multi\n\nline\ttab", "multi\n\nline\ttab", "multi line tab"],
  ["&#39;quoted&#39; &quot;q&quot;", "'quoted' \"q\"", "'quoted' \"q\""],
  ["&unknown; & &# &#x;", "&unknown; & &# &#x;", "&unknown; & &# &#x;"],
];

Deno.test("pythonHtmlUnescape() matches CPython html.unescape, legacy and invalid references included", () => {
  for (const [input, unescaped] of CASES) assert.equal(pythonHtmlUnescape(input), unescaped, input);
});

Deno.test("cleanText() matches the reference clean_text step order, including double spaces left by step 6", () => {
  for (const [input, , cleaned] of CASES) assert.equal(cleanText(input), cleaned, input);
});

Deno.test("pythonStrip() strips what Python's str.strip() strips, not what JS trim() strips", () => {
  assert.equal(pythonStrip("\u001c a \u0085"), "a");
  assert.equal(pythonStrip("\ufeff a"), "\ufeff a");
  assert.equal(pythonStrip("\u3000a\u2028"), "a");
});

Deno.test("pythonFloat() accepts what Python float() accepts and rejects the rest", () => {
  const cases: [unknown, number | undefined][] = [
    ["12.5", 12.5],
    [" 7 ", 7],
    ["1_000.5", 1000.5],
    ["1__0", undefined],
    ["_1", undefined],
    ["1e3", 1000],
    [".5", 0.5],
    ["5.", 5],
    ["+3", 3],
    ["1,000", undefined],
    ["$5", undefined],
    ["", undefined],
    ["12.99 - 15.99", undefined],
    ["0x10", undefined],
    [null, undefined],
    [undefined, undefined],
    [[1], undefined],
    [true, 1],
    [0, 0],
    [3.25, 3.25],
  ];
  for (const [input, expected] of cases) assert.equal(pythonFloat(input), expected, String(input));
});

Deno.test("pythonFloat() treats nan and inf as non-numeric (documented deviation)", () => {
  for (const s of ["nan", "inf", "-Infinity", "1e400"]) assert.equal(pythonFloat(s), undefined, s);
});

Deno.test("spaceSplitCount() counts empty words between double spaces like len(s.split(' '))", () => {
  assert.equal(spaceSplitCount("a b"), 2);
  assert.equal(spaceSplitCount("a  b"), 3);
  assert.equal(spaceSplitCount(" a "), 3);
  assert.equal(spaceSplitCount(""), 1);
});

Deno.test("pythonLength() counts code points", () => {
  assert.equal(pythonLength("\ud83d\ude00"), 1);
  assert.equal(pythonLength("ab"), 2);
  assert.equal(pythonLength(""), 0);
});
