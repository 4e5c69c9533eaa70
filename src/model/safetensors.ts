/**
 * Reading and writing safetensors files (huggingface/safetensors format).
 *
 * Layout: an 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
 * (`{"__metadata__": {...}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}`), then the
 * data section; offsets are relative to the start of the data section. Opening a file validates the
 * whole header against the file size before any tensor is read, and tensors are then read one at a
 * time on demand, so loading a model holds at most its f32 copy plus one raw tensor.
 *
 * @module
 */

/** Tensor dtypes this reader accepts; all are widened to f32 on read. */
export type SafetensorsDtype = "F32" | "F16" | "BF16";

/** Dtypes {@linkcode writeSafetensors} can store. */
export type WritableDtype = "F32" | "BF16";

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** The reference implementation refuses headers above 100 MB; a larger claim means a corrupt file. */
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor's entry in a validated header. */
export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range within the data section, `[begin, end)`. */
  dataOffsets: [number, number];
}

/** A bad or unreadable safetensors file; the message is one line naming the file and the reason. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
  constructor(path: string, reason: string) {
    super(`Invalid safetensors file ${path}: ${reason}`);
  }
}

/** Number of elements of a tensor with this shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === "string" && Object.hasOwn(DTYPE_BYTES, value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function parseTensorEntry(path: string, name: string, entry: unknown): TensorInfo {
  const bad = (reason: string) => new SafetensorsError(path, `tensor "${name}" ${reason}`);
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw bad("is not an object with dtype, shape and data_offsets");
  }
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (!isDtype(dtype)) {
    throw bad(
      `has unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(", ")})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw bad(`has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    throw bad(`has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw bad(`has data_offsets [${begin}, ${end}] that end before they begin`);
  const expectedBytes = elementCount(shape) * DTYPE_BYTES[dtype];
  if (end - begin !== expectedBytes) {
    throw bad(
      `has ${end - begin} bytes but shape [${shape.join(", ")}] of ${dtype} needs ${expectedBytes}`,
    );
  }
  return { dtype, shape: [...shape], dataOffsets: [begin, end] };
}

function parseMetadata(path: string, value: unknown): Record<string, string> {
  const isStringRecord = typeof value === "object" && value !== null && !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === "string");
  if (!isStringRecord) throw new SafetensorsError(path, "__metadata__ must map names to strings");
  return { ...(value as Record<string, string>) };
}

/** Checks that the tensors tile the data section exactly: from 0, no overlap, no gap, no tail. */
function checkCoverage(path: string, tensors: Map<string, TensorInfo>, dataBytes: number): void {
  const ordered = [...tensors].sort(([, a], [, b]) =>
    a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]
  );
  let covered = 0;
  let previous = "";
  for (const [name, { dataOffsets: [begin, end] }] of ordered) {
    if (end > dataBytes) {
      throw new SafetensorsError(
        path,
        `tensor "${name}" data_offsets [${begin}, ${end}] run past the ${dataBytes}-byte data section (truncated file?)`,
      );
    }
    if (begin < covered) {
      throw new SafetensorsError(
        path,
        `tensor "${name}" overlaps tensor "${previous}" (data_offsets start ${begin})`,
      );
    }
    if (begin > covered) {
      throw new SafetensorsError(
        path,
        `${begin - covered} unused bytes before tensor "${name}" (data_offsets start ${begin})`,
      );
    }
    covered = end;
    previous = name;
  }
  if (covered !== dataBytes) {
    throw new SafetensorsError(path, `${dataBytes - covered} trailing bytes after the last tensor`);
  }
}

/** A validated safetensors header: tensor table, metadata and where the data section starts. */
export interface SafetensorsHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Absolute file offset of the data section (8 + header length). */
  dataStart: number;
}

/**
 * Validates the header of a safetensors file given its first bytes and total size.
 *
 * `prefix` must hold at least the 8-byte length and the JSON header it announces; the caller reads
 * that much. Exposed so a header can be checked without touching the data.
 *
 * @example
 * ```ts
 * const header = parseSafetensorsHeader("m.safetensors", bytes, bytes.length);
 * header.tensors.get("model.norm.weight")?.shape; // [64]
 * ```
 */
export function parseSafetensorsHeader(
  path: string,
  prefix: Uint8Array,
  fileSize: number,
): SafetensorsHeader {
  if (fileSize < 8) {
    throw new SafetensorsError(path, `${fileSize} bytes is too short for the 8-byte header length`);
  }
  const announced = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (announced > BigInt(fileSize - 8)) {
    throw new SafetensorsError(path, `header length ${announced} exceeds the ${fileSize - 8} bytes after it`);
  }
  const headerBytes = Number(announced);
  if (headerBytes > MAX_HEADER_BYTES) {
    throw new SafetensorsError(
      path,
      `header length ${headerBytes} is above the ${MAX_HEADER_BYTES}-byte limit`,
    );
  }
  if (prefix.length < 8 + headerBytes) throw new RangeError("prefix shorter than the announced header");
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(prefix.subarray(8, 8 + headerBytes)));
  } catch (e) {
    const reason = (e as Error).message.split("\n")[0];
    throw new SafetensorsError(path, `header is not valid UTF-8 JSON (${reason})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new SafetensorsError(path, "header is not a JSON object");
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json)) {
    if (name === "__metadata__") metadata = parseMetadata(path, entry);
    else tensors.set(name, parseTensorEntry(path, name, entry));
  }
  checkCoverage(path, tensors, fileSize - 8 - headerBytes);
  return { tensors, metadata, dataStart: 8 + headerBytes };
}

function readExactly(file: Deno.FsFile, target: Uint8Array, path: string): void {
  let filled = 0;
  while (filled < target.length) {
    const n = file.readSync(target.subarray(filled));
    if (n === null || n === 0) throw new SafetensorsError(path, "file ended early (changed while open?)");
    filled += n;
  }
}

let f16Table: Float32Array | undefined;

/** All 65536 half-precision values as f32, built once (256 KiB) so conversion is a lookup. */
function halfToFloatTable(): Float32Array {
  if (f16Table) return f16Table;
  f16Table = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0) f16Table[bits] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) f16Table[bits] = mantissa ? NaN : sign * Infinity;
    else f16Table[bits] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return f16Table;
}

/**
 * Widens 16-bit values to f32 in place: `halves` must view the upper half of `out`'s buffer
 * (bytes 2n..4n). Writing `out[i]` only overwrites halves already consumed (indices ≤ i), so a
 * BF16/F16 tensor is loaded with no memory beyond its f32 result.
 */
function widenInPlace(dtype: "F16" | "BF16", halves: Uint16Array, out: Float32Array): void {
  if (dtype === "BF16") {
    const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < halves.length; i++) outBits[i] = halves[i] << 16;
  } else {
    const table = halfToFloatTable();
    for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]];
  }
}

/**
 * An open, validated safetensors file. Tensors are read from disk on each {@linkcode read}; call
 * {@linkcode close} (or use `using`) when done.
 *
 * @example
 * ```ts
 * using file = await SafetensorsFile.open("model.safetensors");
 * const norm = file.read("model.norm.weight"); // Float32Array
 * ```
 */
export class SafetensorsFile implements Disposable {
  readonly #file: Deno.FsFile;
  readonly #dataStart: number;

  private constructor(
    readonly path: string,
    file: Deno.FsFile,
    header: SafetensorsHeader,
  ) {
    this.#file = file;
    this.#dataStart = header.dataStart;
    this.tensors = header.tensors;
    this.metadata = header.metadata;
  }

  /** Tensor table from the header, keyed by tensor name. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The `__metadata__` strings (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;

  /** Opens and validates `path`; throws a one-line {@linkcode SafetensorsError} if it is malformed. */
  static async open(path: string): Promise<SafetensorsFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      const reason = e instanceof Deno.errors.NotFound
        ? "file not found"
        : (e as Error).message.split("\n")[0];
      throw new SafetensorsError(path, reason);
    }
    try {
      const { size } = await file.stat();
      const lengthBytes = new Uint8Array(Math.min(8, size));
      readExactly(file, lengthBytes, path);
      let prefix = lengthBytes;
      if (size >= 8) {
        const announced = new DataView(lengthBytes.buffer).getBigUint64(0, true);
        // Only read the header once its claimed length is known to fit; the parser reports otherwise.
        if (announced <= BigInt(Math.min(size - 8, MAX_HEADER_BYTES))) {
          prefix = new Uint8Array(8 + Number(announced));
          prefix.set(lengthBytes);
          readExactly(file, prefix.subarray(8), path);
        }
      }
      return new SafetensorsFile(path, file, parseSafetensorsHeader(path, prefix, size));
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Shape of tensor `name`; throws if the file has no such tensor. */
  shape(name: string): number[] {
    return [...this.#info(name).shape];
  }

  /**
   * Reads tensor `name` from disk as a fresh row-major Float32Array, widening BF16/F16 inside the
   * result's own buffer. Every platform Deno runs on is little-endian, as the file is, so typed
   * arrays read the stored order directly.
   */
  read(name: string): Float32Array {
    const { dtype, shape, dataOffsets: [begin] } = this.#info(name);
    const out = new Float32Array(elementCount(shape));
    if (dtype === "F32") {
      this.#readAt(begin, new Uint8Array(out.buffer));
    } else {
      const halves = new Uint16Array(out.buffer, 2 * out.length, out.length);
      this.#readAt(begin, new Uint8Array(halves.buffer, halves.byteOffset, halves.byteLength));
      widenInPlace(dtype, halves, out);
    }
    return out;
  }

  /** Reads the stored bytes of tensor `name` unchanged (little-endian, its own dtype). */
  readRaw(name: string): Uint8Array {
    const [begin, end] = this.#info(name).dataOffsets;
    const raw = new Uint8Array(end - begin);
    this.#readAt(begin, raw);
    return raw;
  }

  #readAt(dataOffset: number, target: Uint8Array): void {
    this.#file.seekSync(this.#dataStart + dataOffset, Deno.SeekMode.Start);
    readExactly(this.#file, target, this.path);
  }

  /** Releases the file handle. */
  close(): void {
    this.#file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.path, `no tensor named "${name}"`);
    return info;
  }
}

/**
 * A tensor to store: `data` holds `elementCount(shape)` f32 values, converted to `dtype` on write.
 * `data` may be a function producing them when the writer reaches this tensor, so a large model can
 * be saved one tensor at a time (e.g. read back from the GPU) instead of all at once.
 */
export interface TensorToWrite {
  dtype: WritableDtype;
  shape: number[];
  data: Float32Array | (() => Float32Array | Promise<Float32Array>);
}

/**
 * Rounds f32 values to bfloat16 bit patterns, round-to-nearest-even (as PyTorch's `.to(bfloat16)`);
 * NaN stays a quiet NaN with its sign.
 *
 * @example
 * ```ts
 * floatToBf16Bits(new Float32Array([1 + 2 ** -8]))[0]; // 0x3f80: the tie goes to the even 1.0
 * ```
 */
export function floatToBf16Bits(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = (b >>> 16) | 0x0040;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

async function storedBytes(path: string, name: string, tensor: TensorToWrite): Promise<Uint8Array> {
  const data = typeof tensor.data === "function" ? await tensor.data() : tensor.data;
  if (data.length !== elementCount(tensor.shape)) {
    throw new Error(
      `Cannot write ${path}: tensor "${name}" has ${data.length} values but shape [${
        tensor.shape.join(", ")
      }]`,
    );
  }
  if (tensor.dtype === "F32") return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(floatToBf16Bits(data).buffer);
}

/**
 * Writes `tensors` as a safetensors file at `path`, atomically: the bytes go to a temporary file
 * beside it, are synced, then renamed over `path`, so a killed process leaves either the old file
 * or the new one. Tensors are stored in name order, the header padded to 8 bytes as the reference
 * writer does.
 *
 * @example
 * ```ts
 * await writeSafetensors("/tmp/w.safetensors", new Map([
 *   ["w", { dtype: "BF16", shape: [2], data: new Float32Array([1, 2]) }],
 * ]), { format: "pt" });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const { dtype, shape } = tensors.get(name)!;
    if (name === "__metadata__") throw new Error(`Cannot write ${path}: "__metadata__" is not a tensor name`);
    const bytes = elementCount(shape) * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    json = new TextEncoder().encode(JSON.stringify(header) + " ".repeat(padded - json.length));
  }
  const lengthBytes = new Uint8Array(8);
  new DataView(lengthBytes.buffer).setBigUint64(0, BigInt(json.length), true);

  const temp = `${path}.tmp-${Deno.pid}`;
  try {
    using file = await Deno.open(temp, { write: true, create: true, truncate: true });
    await writeAll(file, lengthBytes);
    await writeAll(file, json);
    for (const name of names) await writeAll(file, await storedBytes(path, name, tensors.get(name)!));
    await file.sync();
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw e;
  }
  await Deno.rename(temp, path);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) written += await file.write(bytes.subarray(written));
}
