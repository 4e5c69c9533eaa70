/**
 * The Amazon Reviews file formats r2ec reads, detected from the content (never the file name), and
 * line parsers that turn one line into a review or a raw meta record, or say exactly what is wrong.
 *
 * | format | detected by | time unit |
 * |---|---|---|
 * | `amazon2023-reviews` | JSON object with `user_id` and `parent_asin` | ms |
 * | `amazon2023-benchmark-csv` | CSV header naming `user_id,parent_asin,rating,timestamp` | ms |
 * | `amazon2018-reviews` | JSON object with `reviewerID` and `asin` | s (`unixReviewTime`) |
 * | `amazon2023-meta` | JSON object with `parent_asin`, no `user_id` | |
 * | `amazon2018-meta` | JSON object with `asin`, no `reviewerID` | |
 *
 * @example
 * ```ts
 * const format = detectFormat('{"user_id":"U","parent_asin":"B1","rating":5.0,"timestamp":1}');
 * // format === "amazon2023-reviews"
 * const parse = reviewParser(format!);
 * parse('{"user_id":"U","parent_asin":"B1","rating":5.0,"timestamp":1}'); // { user_id: "U", ... }
 * ```
 *
 * @module
 */

/** Formats of a review file. */
export type ReviewFormat = "amazon2023-reviews" | "amazon2023-benchmark-csv" | "amazon2018-reviews";
/** Formats of a meta file. */
export type MetaFormat = "amazon2023-meta" | "amazon2018-meta";
/** Any detected format. */
export type FileFormat = ReviewFormat | MetaFormat;

/** Whether a format holds reviews (otherwise it holds item metadata). */
export function isReviewFormat(format: FileFormat): format is ReviewFormat {
  return format === "amazon2023-reviews" || format === "amazon2023-benchmark-csv" ||
    format === "amazon2018-reviews";
}

/** One review, normalised across formats. */
export interface Review {
  user_id: string;
  parent_asin: string;
  rating: number;
  /** Unix milliseconds (2018 seconds are multiplied by 1000). */
  timestamp: number;
}

/** One meta line: its item id and all of its fields, untouched. */
export interface RawMeta {
  parent_asin: string;
  fields: Record<string, unknown>;
}

/** Why a line was rejected: a reason key (e.g. `missing_field`) and a one-line detail naming the field. */
export interface LineProblem {
  problem: string;
  detail: string;
}

/** A parse result: the record, or the problem with the line. */
export type Parsed<T> = T | LineProblem;

/** Narrows a {@linkcode Parsed} value to its problem. */
export function isProblem<T>(x: Parsed<T>): x is LineProblem {
  return typeof (x as LineProblem).problem === "string";
}

const REQUIRED_CSV_COLUMNS = ["user_id", "parent_asin", "rating", "timestamp"] as const;

function parseObject(line: string): Parsed<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { problem: "malformed_json", detail: "invalid JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { problem: "not_an_object", detail: "the line is JSON but not an object" };
  }
  return value as Record<string, unknown>;
}

function splitCsvHeader(line: string): string[] {
  return line.split(",").map((c) => c.trim().replace(/^"(.*)"$/, "$1"));
}

/**
 * The format of a file whose first valid line is `line`, or `undefined` when this line does not tell
 * (malformed JSON, or JSON with none of the known fields). A line that is not JSON is taken as a CSV
 * header.
 *
 * @example
 * ```ts
 * detectFormat("user_id,parent_asin,rating,timestamp"); // "amazon2023-benchmark-csv"
 * detectFormat('{"asin":"B1","title":"T"}'); // "amazon2018-meta"
 * ```
 */
export function detectFormat(line: string): FileFormat | undefined {
  const text = line.trim();
  if (text === "") return undefined;
  if (!text.startsWith("{")) {
    const columns = splitCsvHeader(text);
    return REQUIRED_CSV_COLUMNS.every((c) => columns.includes(c)) ? "amazon2023-benchmark-csv" : undefined;
  }
  const o = parseObject(text);
  if (isProblem(o)) return undefined;
  if ("user_id" in o && "parent_asin" in o) return "amazon2023-reviews";
  if ("reviewerID" in o && "asin" in o) return "amazon2018-reviews";
  if ("parent_asin" in o && !("user_id" in o)) return "amazon2023-meta";
  if ("asin" in o && !("reviewerID" in o)) return "amazon2018-meta";
  return undefined;
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function stringField(o: Record<string, unknown>, name: string): Parsed<string> {
  const v = o[name];
  if (v === undefined) return { problem: "missing_field", detail: `missing field "${name}"` };
  if (typeof v !== "string") {
    return { problem: "wrong_type", detail: `field "${name}" is ${typeName(v)}, expected string` };
  }
  return v;
}

function numberField(o: Record<string, unknown>, name: string, integer: boolean): Parsed<number> {
  const v = o[name];
  if (v === undefined) return { problem: "missing_field", detail: `missing field "${name}"` };
  const expected = integer ? "an integer" : "a number";
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isSafeInteger(v))) {
    return { problem: "wrong_type", detail: `field "${name}" is ${JSON.stringify(v)}, expected ${expected}` };
  }
  return v;
}

/** Field names of one JSON review format and the factor that turns its time into milliseconds. */
interface JsonReviewFields {
  user: string;
  item: string;
  rating: string;
  time: string;
  msPerUnit: number;
}

const JSON_REVIEW_FIELDS: Record<"amazon2023-reviews" | "amazon2018-reviews", JsonReviewFields> = {
  "amazon2023-reviews": {
    user: "user_id",
    item: "parent_asin",
    rating: "rating",
    time: "timestamp",
    msPerUnit: 1,
  },
  "amazon2018-reviews": {
    user: "reviewerID",
    item: "asin",
    rating: "overall",
    time: "unixReviewTime",
    msPerUnit: 1000,
  },
};

function jsonReviewParser(f: JsonReviewFields): (line: string) => Parsed<Review> {
  return (line) => {
    const o = parseObject(line);
    if (isProblem(o)) return o;
    const user_id = stringField(o, f.user);
    if (isProblem(user_id)) return user_id;
    const parent_asin = stringField(o, f.item);
    if (isProblem(parent_asin)) return parent_asin;
    const rating = numberField(o, f.rating, false);
    if (isProblem(rating)) return rating;
    const time = numberField(o, f.time, true);
    if (isProblem(time)) return time;
    return { user_id, parent_asin, rating, timestamp: time * f.msPerUnit };
  };
}

/** Splits one CSV row; quoted cells (`"a,b"`, `""` for a quote) are handled. */
function splitCsvRow(line: string): string[] {
  if (!line.includes('"')) return line.split(",");
  const cells: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') cell += c, i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") cells.push(cell), cell = "";
    else cell += c;
  }
  cells.push(cell);
  return cells;
}

function csvReviewParser(header: string): (line: string) => Parsed<Review> {
  const columns = splitCsvHeader(header);
  const [u, a, r, t] = REQUIRED_CSV_COLUMNS.map((c) => columns.indexOf(c));
  return (line) => {
    const cells = splitCsvRow(line);
    if (cells.length !== columns.length) {
      return { problem: "bad_csv_row", detail: `${cells.length} cells, expected ${columns.length}` };
    }
    const rating = cells[r].trim() === "" ? NaN : Number(cells[r]);
    if (!Number.isFinite(rating)) return { problem: "wrong_type", detail: `field "rating" is "${cells[r]}"` };
    const timestamp = cells[t].trim() === "" ? NaN : Number(cells[t]);
    if (!Number.isSafeInteger(timestamp)) {
      return { problem: "wrong_type", detail: `field "timestamp" is "${cells[t]}", expected an integer` };
    }
    return { user_id: cells[u], parent_asin: cells[a], rating, timestamp };
  };
}

/**
 * A parser for the lines of a review file in `format`. For the CSV format, pass the header line; the
 * header itself must not be given to the parser.
 *
 * @example
 * ```ts
 * const parse = reviewParser("amazon2018-reviews");
 * parse('{"reviewerID":"A","asin":"B","overall":4.0,"unixReviewTime":1529193600}');
 * // { user_id: "A", parent_asin: "B", rating: 4, timestamp: 1529193600000 }
 * ```
 */
export function reviewParser(format: ReviewFormat, csvHeader = ""): (line: string) => Parsed<Review> {
  return format === "amazon2023-benchmark-csv"
    ? csvReviewParser(csvHeader)
    : jsonReviewParser(JSON_REVIEW_FIELDS[format]);
}

/**
 * A parser for the lines of a meta file in `format`: the item id (`parent_asin`, or the 2018 `asin`)
 * must be a string; every other field is judged by the item rules later.
 *
 * @example
 * ```ts
 * metaParser("amazon2018-meta")('{"asin":"B1","title":"Card","price":"$5.00"}');
 * // { parent_asin: "B1", fields: { asin: "B1", title: "Card", price: "$5.00" } }
 * ```
 */
export function metaParser(format: MetaFormat): (line: string) => Parsed<RawMeta> {
  const idField = format === "amazon2023-meta" ? "parent_asin" : "asin";
  return (line) => {
    const o = parseObject(line);
    if (isProblem(o)) return o;
    const id = stringField(o, idField);
    if (isProblem(id)) return id;
    return { parent_asin: id, fields: o };
  };
}
