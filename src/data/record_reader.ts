/**
 * Streams the records of one review or meta file: detects the format from the first line that tells
 * (a CSV header or a JSON object with known fields), parses every line, hands valid records to a
 * callback and logs every bad line by reason with its line number.
 *
 * @example
 * ```ts
 * const log = new DropLog(false);
 * const source = await readRecords("Gift_Cards_5.json", "reviews", log, (review, line) => {
 *   console.log(line, review.user_id);
 * });
 * console.log(source.format, source.records, source.sha256);
 * ```
 *
 * @module
 */
import {
  detectFormat,
  type FileFormat,
  isProblem,
  isReviewFormat,
  metaParser,
  type Parsed,
  type RawMeta,
  type Review,
  reviewParser,
} from "./amazon_formats.ts";
import type { SourceInfo } from "./dataset.ts";
import type { DropLog } from "./drop_log.ts";
import { LineSource } from "./lines.ts";

/** What a file of each kind yields. */
export interface RecordOf {
  reviews: Review;
  meta: RawMeta;
}

/** A fatal problem with a whole input file (missing, empty, unknown or wrong format). */
export class InputFileError extends Error {
  override name = "InputFileError";
}

/** The line parser of a detected format (a CSV parser needs its header line for the column order). */
function lineParser(format: FileFormat, header: string): (line: string) => Parsed<Review | RawMeta> {
  return isReviewFormat(format) ? reviewParser(format, header) : metaParser(format);
}

/**
 * Reads every line of `path` once. Bad lines are recorded in `log` as `"<kind>.<problem>"` (in strict
 * mode the first one throws). Throws {@linkcode InputFileError} for an empty file, a file whose format
 * cannot be detected, or a file of the other kind (meta given as reviews or the reverse).
 */
export async function readRecords<K extends keyof RecordOf>(
  path: string,
  kind: K,
  log: DropLog,
  onRecord: (record: RecordOf[K], line: number, format: FileFormat) => void,
): Promise<SourceInfo> {
  const source = new LineSource(path);
  let parse: ((line: string) => Parsed<RecordOf[K]>) | undefined;
  let format: FileFormat | undefined;
  let records = 0;
  let sawContent = false;
  let lineNo = 0;
  for await (const batch of source.batches()) {
    for (const line of batch) {
      lineNo++;
      if (line.trim() === "") continue;
      sawContent = true;
      if (!parse) {
        const detected = detectFormat(line);
        if (!detected) {
          const problem = line.trimStart().startsWith("{")
            ? "malformed_or_unknown_json"
            : "unrecognized_line";
          log.badLine(`${kind}.${problem}`, path, lineNo, "line matches no known Amazon format");
          continue;
        }
        if (isReviewFormat(detected) !== (kind === "reviews")) {
          throw new InputFileError(`${path}:${lineNo}: this is a ${detected} file, expected ${kind}`);
        }
        format = detected;
        // The kind check above makes the detected format's records those of `kind`.
        parse = lineParser(detected, line) as (line: string) => Parsed<RecordOf[K]>;
        if (detected === "amazon2023-benchmark-csv") continue;
      }
      const parsed = parse(line);
      if (isProblem(parsed)) {
        log.badLine(`${kind}.${parsed.problem}`, path, lineNo, parsed.detail);
        continue;
      }
      records++;
      onRecord(parsed, lineNo, format!);
    }
  }
  if (!sawContent) throw new InputFileError(`${path}: empty file`);
  if (!parse || !format) {
    throw new InputFileError(`${path}: unknown format (no line matches an Amazon reviews or meta format)`);
  }
  return { path, sha256: source.sha256, gzip: source.gzip, format, lines: source.lines, records };
}
