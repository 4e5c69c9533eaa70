import assert from "node:assert/strict";
import { FIXTURES, noFixtures } from "./fixtures.ts";
import { SafetensorsFile, writeSafetensors } from "../../src/model/safetensors.ts";

/** Builds safetensors bytes by hand (not through the writer under test). */
function fileBytes(header: unknown, dataBytes: number, options: { headerLength?: bigint } = {}): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const bytes = new Uint8Array(8 + json.length + dataBytes);
  new DataView(bytes.buffer).setBigUint64(0, options.headerLength ?? BigInt(json.length), true);
  bytes.set(json, 8);
  return bytes;
}

async function openBytes(bytes: Uint8Array): Promise<SafetensorsFile> {
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  await Deno.writeFile(path, bytes);
  try {
    return await SafetensorsFile.open(path);
  } finally {
    await Deno.remove(path);
  }
}

async function assertRejects(bytes: Uint8Array, reason: RegExp): Promise<void> {
  await assert.rejects(openBytes(bytes), (e: Error) => {
    assert.match(e.message, /^Invalid safetensors file \/tmp\/\S+\.safetensors: /);
    assert.match(e.message, reason);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

Deno.test("SafetensorsFile.open() rejects a header length larger than the file", async () => {
  await assertRejects(
    fileBytes({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, 4, { headerLength: 10_000n }),
    /header length 10000 exceeds the \d+ bytes after it$/,
  );
});

Deno.test("SafetensorsFile.open() rejects a header length near 2^64", async () => {
  await assertRejects(
    fileBytes({}, 0, { headerLength: 0xffff_ffff_ffff_fff0n }),
    /header length 18446744073709551600/,
  );
});

Deno.test("SafetensorsFile.open() rejects a file shorter than the length prefix", async () => {
  await assertRejects(new Uint8Array(5), /5 bytes is too short for the 8-byte header length$/);
});

Deno.test("SafetensorsFile.open() rejects a header that is not JSON", async () => {
  await assertRejects(fileBytes("{not json", 0), /header is not valid UTF-8 JSON/);
});

Deno.test("SafetensorsFile.open() rejects overlapping data_offsets", async () => {
  const header = {
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  };
  await assertRejects(fileBytes(header, 12), /tensor "b" overlaps tensor "a"/);
});

Deno.test("SafetensorsFile.open() rejects a gap between tensors", async () => {
  const header = {
    a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
    b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
  };
  await assertRejects(fileBytes(header, 12), /4 unused bytes before tensor "b"/);
});

Deno.test("SafetensorsFile.open() rejects an unknown dtype naming the tensor", async () => {
  const header = { ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } };
  await assertRejects(
    fileBytes(header, 8),
    /tensor "ids" has unsupported dtype "I64" \(supported: F32, F16, BF16\)$/,
  );
});

Deno.test("SafetensorsFile.open() rejects a byte length that does not match shape and dtype", async () => {
  const header = { w: { dtype: "BF16", shape: [2, 3], data_offsets: [0, 24] } };
  await assertRejects(fileBytes(header, 24), /tensor "w" has 24 bytes but shape \[2, 3\] of BF16 needs 12$/);
});

Deno.test("SafetensorsFile.open() rejects a truncated data section", async () => {
  const header = { w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } };
  const whole = fileBytes(header, 16);
  await assertRejects(
    whole.subarray(0, whole.length - 3),
    /run past the 13-byte data section \(truncated file\?\)$/,
  );
});

Deno.test("SafetensorsFile.open() rejects trailing bytes after the last tensor", async () => {
  const header = { w: { dtype: "F32", shape: [1], data_offsets: [0, 4] } };
  await assertRejects(fileBytes(header, 6), /2 trailing bytes after the last tensor$/);
});

Deno.test("SafetensorsFile.open() rejects non-string metadata", async () => {
  await assertRejects(fileBytes({ __metadata__: { step: 3 } }, 0), /__metadata__ must map names to strings$/);
});

Deno.test("SafetensorsFile.open() names a missing file", async () => {
  await assert.rejects(
    SafetensorsFile.open("/tmp/r2ec-no-such-file.safetensors"),
    { message: "Invalid safetensors file /tmp/r2ec-no-such-file.safetensors: file not found" },
  );
});

Deno.test("SafetensorsFile.read() widens F16 including subnormals and infinities", async () => {
  const halves = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00, 0x3555]);
  const bytes = fileBytes({ h: { dtype: "F16", shape: [5], data_offsets: [0, 10] } }, 10);
  bytes.set(new Uint8Array(halves.buffer), bytes.length - 10);
  using file = await openBytes(bytes);
  assert.deepEqual([...file.read("h")], [1, -2, 2 ** -24, Infinity, Math.fround(0x155 / 1024 * 0.25 + 0.25)]);
});

Deno.test("writeSafetensors() round-trips F32 exactly and keeps metadata", async () => {
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  const values = new Float32Array([1.5, -0, 3.1415927, 1e-40, -7e30, 0.1]);
  await writeSafetensors(path, new Map([["w", { dtype: "F32", shape: [2, 3], data: values }]]), {
    format: "pt",
  });
  using file = await SafetensorsFile.open(path);
  assert.deepEqual(file.metadata, { format: "pt" });
  assert.deepEqual(file.shape("w"), [2, 3]);
  assert.deepEqual(file.read("w"), values);
  await Deno.remove(path);
});

Deno.test("writeSafetensors() rounds BF16 ties to even", async () => {
  const path = await Deno.makeTempFile({ suffix: ".safetensors" });
  // 1 + 2^-8 lies halfway between bf16 1.0 (even mantissa) and 1 + 2^-7: it rounds down to 1.0.
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): it rounds up to 1 + 2^-6.
  // 1 + 2^-8 + 2^-20 is just above the first tie: it rounds up to 1 + 2^-7.
  const values = new Float32Array([1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -2.5, NaN]);
  await writeSafetensors(path, new Map([["w", { dtype: "BF16", shape: [5], data: values }]]));
  using file = await SafetensorsFile.open(path);
  const raw = new Uint16Array(file.readRaw("w").buffer);
  assert.deepEqual([...raw.subarray(0, 4)], [0x3f80, 0x3f82, 0x3f81, 0xc020]);
  const read = file.read("w");
  assert.deepEqual([...read.subarray(0, 4)], [1, 1 + 2 ** -6, 1 + 2 ** -7, -2.5]);
  assert.ok(Number.isNaN(read[4]));
  await Deno.remove(path);
});

Deno.test("writeSafetensors() leaves no temporary file and refuses a shape mismatch", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/w.safetensors`;
  await assert.rejects(
    writeSafetensors(path, new Map([["w", { dtype: "F32", shape: [3], data: new Float32Array(2) }]])),
    /tensor "w" has 2 values but shape \[3\]/,
  );
  assert.deepEqual([...Deno.readDirSync(dir)], []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "SafetensorsFile.read() widens the qwen2-tiny BF16 weights bit for bit",
  ignore: noFixtures,
  async fn() {
    const path = `${FIXTURES}/qwen2-tiny/model.safetensors`;
    using file = await SafetensorsFile.open(path);
    assert.deepEqual(file.shape("model.layers.1.self_attn.k_proj.bias"), [32]);
    // Decode independently: sign, exponent and mantissa of each stored bfloat16, from the raw bytes.
    const bytes = await Deno.readFile(path);
    const view = new DataView(bytes.buffer);
    const headerLength = Number(view.getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    for (const name of ["model.embed_tokens.weight", "model.layers.1.self_attn.k_proj.bias"]) {
      const [begin] = header[name].data_offsets as number[];
      const values = file.read(name);
      for (let i = 0; i < values.length; i++) {
        const bf16 = view.getUint16(8 + headerLength + begin + 2 * i, true);
        const sign = bf16 >> 15 ? -1 : 1;
        const exponent = (bf16 >> 7) & 0xff;
        assert.ok(exponent < 255, "fixture values are finite");
        const expected = exponent === 0
          ? sign * ((bf16 & 0x7f) / 128) * 2 ** -126
          : sign * (1 + (bf16 & 0x7f) / 128) * 2 ** (exponent - 127);
        assert.equal(values[i], expected, `${name}[${i}]`);
      }
    }
  },
});
