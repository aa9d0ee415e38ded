// safetensors.ts: writer -> reader round trips over every dtype, the real HF fixtures (values taken from the files
// with Python's struct module), one test per malformed-header rule, and writer atomicity (no file until finish).

import { writeSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SAFETENSORS_DTYPES, type SafetensorsDtype } from "./dtypes.ts";
import { SafetensorsError, SafetensorsFile, SafetensorsWriter, writeSafetensors } from "./safetensors.ts";

const FIXTURES = join(import.meta.dirname, "../../test/fixtures/hf");
let dir: string;
let counter = 0;
const tmp = (name = "t") => join(dir, `${name}-${counter++}.safetensors`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kiln-safetensors-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A file with a hand-made header: u64le length prefix (overridable), header bytes as given, then data bytes. */
async function rawFile(header: unknown, dataBytes: number, lengthPrefix?: bigint): Promise<string> {
  const json = typeof header === "string" ? Buffer.from(header) : header instanceof Uint8Array ? Buffer.from(header) : Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(lengthPrefix ?? BigInt(json.length));
  const path = tmp("raw");
  await writeFile(path, Buffer.concat([prefix, json, Buffer.alloc(dataBytes, 7)]));
  return path;
}

async function openError(path: string): Promise<SafetensorsError> {
  const err = await SafetensorsFile.open(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SafetensorsError);
  const e = err as SafetensorsError;
  expect(e.message.startsWith(`${path}: `)).toBe(true);
  expect(e.message).not.toContain("\n");
  // The synchronous opener validates identically.
  expect(() => SafetensorsFile.openSync(path)).toThrow(e.message);
  return e;
}

const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 17) & 0xff);

describe("round trip through writer and reader", () => {
  const dtypes = Object.keys(SAFETENSORS_DTYPES) as SafetensorsDtype[];
  const specs = dtypes.map((dtype, i) => ({ name: `t.${i}.${dtype}`, dtype, shape: [2, i + 1] }));

  test("every dtype: names, order, shapes, offsets, bytes and metadata survive", async () => {
    const path = tmp();
    const tensors = specs.map((s, i) => ({ ...s, data: pattern(2 * (i + 1) * SAFETENSORS_DTYPES[s.dtype].bytes, i) }));
    await writeSafetensors(path, tensors, { format: "pt", note: "ünïcode" });

    const f = await SafetensorsFile.open(path);
    expect(f.metadata).toEqual({ format: "pt", note: "ünïcode" });
    expect(f.tensors().map((t) => [t.name, t.dtype, t.shape])).toEqual(specs.map((s) => [s.name, s.dtype, s.shape]));
    for (const t of tensors) expect(await f.readBytes(t.name)).toEqual(t.data);
    const last = tensors.at(-1)!;
    expect(await f.readBytes(last.name, 3, 5)).toEqual(last.data.subarray(3, 8));
    expect(await f.readBytes(last.name, 4)).toEqual(last.data.subarray(4));
    await f.close();

    // Check the layout independently of the reader: 8-aligned header padded with spaces, offsets in entry order.
    const bytes = await readFile(path);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = bytes.subarray(8, 8 + n).toString("utf8");
    expect(text).toMatch(/^\{"__metadata__":\{"format":"pt","note":"ünïcode"\},"t\.0\.F64":\{"dtype":"F64","shape":\[2,1\],"data_offsets":\[0,16\]\}/);
    expect(text.trimEnd().endsWith("}")).toBe(true);
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    expect(bytes.length).toBe(8 + n + tensors.reduce((a, t) => a + t.data.length, 0));
    expect(f.info(specs[1]!.name)!.byteOffset).toBe(8 + n + 16);
  });

  test("scalars, zero-sized tensors, integer-like names and an empty file", async () => {
    const path = tmp();
    await writeSafetensors(path, [
      { name: "10", dtype: "F32", shape: [], data: new Float32Array([2.5]) },
      { name: "empty", dtype: "F16", shape: [3, 0], data: new Uint16Array(0) },
      { name: "2", dtype: "I32", shape: [2], data: new Int32Array([-5, 7]) },
    ]);
    const f = SafetensorsFile.openSync(path);
    expect(f.metadata).toBeUndefined();
    expect(f.info("10")).toMatchObject({ dtype: "F32", shape: [], byteLength: 4 });
    expect(f.readF32Sync("10")).toEqual(new Float32Array([2.5]));
    expect(f.readF32Sync("empty")).toEqual(new Float32Array(0));
    expect(f.readI32Sync("2")).toEqual(new Int32Array([-5, 7]));
    f.closeSync();
    // Integer-like names keep entry order in the written header, even though JSON.parse reorders them.
    const bytes = await readFile(path);
    expect(bytes.subarray(8).toString().indexOf('"10"')).toBeLessThan(bytes.subarray(8).toString().indexOf('"2"'));

    const emptyPath = tmp();
    await writeSafetensors(emptyPath, []);
    const e = await SafetensorsFile.open(emptyPath);
    expect(e.tensors()).toEqual([]);
    expect((await stat(emptyPath)).size).toBe(16); // "{}" padded to 8
    await e.close();
  });

  test("readF32 and readI32 convert every supported dtype", async () => {
    const path = tmp();
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7c00]); // 1, -2, 0.5, Inf
    const bf16 = new Uint16Array([0x3f80, 0xc040, 0x0000, 0xff80]); // 1, -3, 0, -Inf
    const u8 = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    await writeSafetensors(path, [
      { name: "f32", dtype: "F32", shape: [2], data: new Float32Array([1.5, -0]) },
      { name: "f16", dtype: "F16", shape: [4], data: f16 },
      { name: "bf16", dtype: "BF16", shape: [2, 2], data: bf16 },
      { name: "f64", dtype: "F64", shape: [2], data: u8(new Float64Array([0.1, 1e300])) },
      { name: "i64", dtype: "I64", shape: [3], data: u8(new BigInt64Array([-3n, 2n ** 40n, 7n])) },
      { name: "i64small", dtype: "I64", shape: [2], data: u8(new BigInt64Array([-(2n ** 31n), 2n ** 31n - 1n])) },
      { name: "u32", dtype: "U32", shape: [1], data: u8(new Uint32Array([4e9])) },
      { name: "i32", dtype: "I32", shape: [2], data: new Int32Array([-7, 1 << 30]) },
      { name: "i16", dtype: "I16", shape: [2], data: u8(new Int16Array([-300, 300])) },
      { name: "i8", dtype: "I8", shape: [2], data: new Uint8Array([0xff, 0x7f]) },
      { name: "u8", dtype: "U8", shape: [2], data: new Uint8Array([0xff, 3]) },
      { name: "bool", dtype: "BOOL", shape: [2], data: new Uint8Array([1, 0]) },
      { name: "fp8", dtype: "F8_E4M3", shape: [1], data: new Uint8Array([0x38]) },
    ]);
    const f = await SafetensorsFile.open(path);
    expect(await f.readF32("f32")).toEqual(new Float32Array([1.5, -0]));
    expect(await f.readF32("f16")).toEqual(new Float32Array([1, -2, 0.5, Infinity]));
    expect(await f.readF32("bf16")).toEqual(new Float32Array([1, -3, 0, -Infinity]));
    expect(await f.readF32("f64")).toEqual(new Float32Array([Math.fround(0.1), Infinity]));
    expect(await f.readF32("i64")).toEqual(new Float32Array([-3, 2 ** 40, 7]));
    expect(await f.readF32("i16")).toEqual(new Float32Array([-300, 300]));
    expect(await f.readF32("i8")).toEqual(new Float32Array([-1, 127]));
    expect(await f.readF32("u8")).toEqual(new Float32Array([255, 3]));
    expect(await f.readF32("bool")).toEqual(new Float32Array([1, 0]));
    await expect(f.readF32("fp8")).rejects.toThrow(`${path}: tensor "fp8": cannot convert F8_E4M3 to float32`);

    expect(await f.readI32("i32")).toEqual(new Int32Array([-7, 1 << 30]));
    expect(await f.readI32("i64small")).toEqual(new Int32Array([-(2 ** 31), 2 ** 31 - 1]));
    expect(await f.readI32("u8")).toEqual(new Int32Array([255, 3]));
    expect(await f.readI32("i8")).toEqual(new Int32Array([-1, 127]));
    await expect(f.readI32("i64")).rejects.toThrow(`tensor "i64": element 1 = 1099511627776 does not fit int32`);
    await expect(f.readI32("u32")).rejects.toThrow(`tensor "u32": element 0 = 4000000000 does not fit int32`);
    await expect(f.readI32("f32")).rejects.toThrow(`tensor "f32": cannot read F32 as int32`);
    await f.close();
  });
});

describe("reading the HF fixtures", () => {
  test("gpt2 model.safetensors: header, names, shapes and values", async () => {
    const path = join(FIXTURES, "gpt2/model.safetensors");
    const f = await SafetensorsFile.open(path);
    expect(f.metadata).toEqual({ format: "pt" });
    const tensors = f.tensors();
    expect(tensors).toHaveLength(28);
    expect(tensors[0]).toEqual({ name: "transformer.h.0.attn.c_attn.bias", dtype: "F32", shape: [192], byteOffset: 8 + 2624, byteLength: 768 });
    expect(f.info("transformer.wte.weight")).toEqual({
      name: "transformer.wte.weight",
      dtype: "F32",
      shape: [512, 64],
      byteOffset: 435784,
      byteLength: 131072,
    });
    expect(f.info("transformer.h.1.mlp.c_fc.weight")?.shape).toEqual([64, 256]);
    expect(f.info("lm_head.weight")).toBeUndefined(); // tied embeddings: not stored

    const lnf = await f.readF32("transformer.ln_f.weight");
    expect(lnf).toHaveLength(64);
    expect([...lnf.subarray(0, 4)]).toEqual([0.6970360279083252, 1.0079251527786255, 0.5326759815216064, 0.991294801235199]);
    expect(lnf.reduce((a, b) => a + b, 0)).toBeCloseTo(62.728572845458984, 4);
    const wte = f.readF32Sync("transformer.wte.weight");
    expect(wte).toHaveLength(512 * 64);
    expect(wte[1]).toBe(-0.49659010767936707);
    await f.close();
  });

  test("golden.safetensors: F32 logits and I32 token ids", async () => {
    const f = await SafetensorsFile.open(join(FIXTURES, "gpt2/golden.safetensors"));
    expect(f.tensors().map((t) => t.name)).toEqual(["logits.0", "logits.1", "greedy.0", "greedy.1", "input_ids.0", "input_ids.1"]);
    expect(await f.readI32("input_ids.0")).toEqual(new Int32Array([7, 300, 12, 45, 99, 3, 511, 250, 1, 64, 128]));
    expect(await f.readI32("greedy.0")).toEqual(new Int32Array(8).fill(128));
    const logits = await f.readF32("logits.1");
    expect(logits).toHaveLength(6 * 512);
    expect([...logits.subarray(0, 3)]).toEqual([0.2712012231349945, -1.9770320653915405, 0.13207943737506866]);
    await f.close();
  });

  test("every fixture file opens and validates", async () => {
    for (const model of ["gpt2", "gptj", "llama", "llama3_gqa"]) {
      for (const file of ["model.safetensors", "golden.safetensors"]) {
        const f = await SafetensorsFile.open(join(FIXTURES, model, file));
        expect(f.tensors().length).toBeGreaterThan(0);
        await f.close();
      }
    }
  });
});

describe("header validation", () => {
  const t = (extra: object = {}) => ({ dtype: "F32", shape: [2], data_offsets: [0, 8], ...extra });

  test("file shorter than 8 bytes", async () => {
    const path = tmp();
    await writeFile(path, Buffer.from([1, 2, 3]));
    expect((await openError(path)).message).toMatch(/file is 3 bytes, too short for the 8-byte header length/);
  });

  test("header length past the end of the file", async () => {
    const path = await rawFile({ a: t() }, 8, 1000n);
    expect((await openError(path)).message).toMatch(/header length 1000 runs past the end of the \d+-byte file/);
  });

  test("absurd header length", async () => {
    const path = await rawFile({}, 0, 2n ** 62n);
    expect((await openError(path)).message).toMatch(/header length 4611686018427387904 exceeds the 100000000-byte limit/);
  });

  test.each([
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 0, /header is not valid UTF-8/],
    ["invalid JSON", '{"a": ', 0, /header is not valid JSON \(/],
    ["a JSON array", "[1, 2]", 0, /header is not a JSON object/],
    ["JSON null", "null", 0, /header is not a JSON object/],
    ["entry not an object", { a: 3 }, 0, /tensor "a": entry is not an object/],
    ["missing dtype", { a: { shape: [2], data_offsets: [0, 8] } }, 8, /tensor "a": missing "dtype"/],
    ["dtype not a string", { a: t({ dtype: 4 }) }, 8, /tensor "a": "dtype" must be a string/],
    ["unknown dtype", { a: t({ dtype: "F7" }) }, 8, /tensor "a": unknown dtype "F7"/],
    ["missing shape", { a: { dtype: "F32", data_offsets: [0, 8] } }, 8, /tensor "a": missing "shape"/],
    ["shape not an array", { a: t({ shape: "2" }) }, 8, /tensor "a": "shape" must be an array of non-negative integers, got "2"/],
    ["negative dimension", { a: t({ shape: [-2] }) }, 8, /tensor "a": "shape" must be an array of non-negative integers, got \[-2\]/],
    ["fractional dimension", { a: t({ shape: [1.5] }) }, 8, /tensor "a": "shape" must be an array/],
    ["missing data_offsets", { a: { dtype: "F32", shape: [2] } }, 8, /tensor "a": missing "data_offsets"/],
    ["data_offsets of wrong arity", { a: t({ data_offsets: [0] }) }, 8, /tensor "a": "data_offsets" must be \[begin, end\]/],
    ["negative data_offsets", { a: t({ data_offsets: [-8, 0] }) }, 8, /tensor "a": "data_offsets" must be \[begin, end\]/],
    ["end before begin", { a: t({ data_offsets: [8, 0] }) }, 8, /tensor "a": data_offsets \[8, 0\] end before begin/],
    [
      "offsets past the data section",
      { a: t({ data_offsets: [0, 16], shape: [4] }) },
      8,
      /tensor "a": data_offsets \[0, 16\] run past the 8-byte data section/,
    ],
    ["byte length not shape x dtype", { a: t({ shape: [3] }) }, 8, /tensor "a": has 8 bytes but shape \[3\] of F32 needs 12/],
    ["overlapping tensors", { a: t(), b: t({ data_offsets: [4, 12] }) }, 12, /tensors "a" \[0, 8\) and "b" \[4, 12\) overlap/],
    ["identical tensors", { a: t(), b: t() }, 8, /tensors "a" \[0, 8\) and "b" \[0, 8\) overlap/],
    ["a gap between tensors", { a: t(), b: t({ data_offsets: [12, 20] }) }, 20, /data bytes \[8, 12\) belong to no tensor/],
    ["data not starting at 0", { a: t({ data_offsets: [4, 12] }) }, 12, /data bytes \[0, 4\) belong to no tensor/],
    ["trailing bytes", { a: t() }, 10, /data bytes \[8, 10\) after the last tensor belong to no tensor/],
    ["__metadata__ not an object", { __metadata__: "pt", a: t() }, 8, /"__metadata__" must be an object mapping strings to strings/],
    ["__metadata__ with a number", { __metadata__: { format: "pt", n: 3 }, a: t() }, 8, /"__metadata__" key "n" has a non-string value/],
  ])("rejects %s", async (_label, header, dataBytes, message) => {
    const path = await rawFile(header, dataBytes);
    expect((await openError(path)).message).toMatch(message);
  });

  test("padding spaces after the JSON are accepted", async () => {
    const path = await rawFile(`${JSON.stringify({ a: t() })}      `, 8);
    const f = await SafetensorsFile.open(path);
    expect(await f.readF32("a")).toHaveLength(2);
    await f.close();
  });
});

describe("reader misuse", () => {
  test("unknown tensor, bad ranges, use after close", async () => {
    const path = tmp();
    await writeSafetensors(path, [{ name: "w", dtype: "F32", shape: [4], data: new Float32Array(4) }]);
    const f = await SafetensorsFile.open(path);
    await expect(f.readF32("nope")).rejects.toThrow(`${path}: no tensor "nope"`);
    expect(await f.readBytes("w", 10)).toHaveLength(6);
    await expect(f.readBytes("w", 20)).rejects.toThrow(`${path}: tensor "w": byte range start=20 length=undefined is outside its 16 bytes`);
    await expect(f.readBytes("w", 8, 9)).rejects.toThrow(/byte range start=8 length=9 is outside its 16 bytes/);
    expect(await f.readBytes("w", 16)).toHaveLength(0);
    expect(() => f.closeSync()).toThrow(/opened with open\(\), close it with close\(\)/);
    await f.close();
    await f.close(); // idempotent
    await expect(f.readBytes("w")).rejects.toThrow(`${path}: file is closed`);
  });

  test("a missing file reports its path", async () => {
    await expect(SafetensorsFile.open(join(dir, "missing.safetensors"))).rejects.toThrow(/ENOENT.*missing\.safetensors/);
  });
});

describe("streaming writer", () => {
  const tempsLeft = async (path: string) => (await readdir(dir)).filter((n) => n.startsWith(`${path.split("/").at(-1)}.tmp-`));
  const missing = (path: string) =>
    stat(path).then(
      () => false,
      () => true,
    );

  test("chunked, concurrent writes in any tensor order; nothing at path until finish", async () => {
    const path = tmp();
    const big = pattern(1000, 3);
    const w = await SafetensorsWriter.create(path, [
      { name: "a", dtype: "U8", shape: [10, 100] },
      { name: "b", dtype: "BF16", shape: [3] },
    ]);
    expect(w.tempPath.startsWith(`${path}.tmp-${process.pid}-`)).toBe(true);
    await w.write("b", new Uint8Array([1, 2, 3, 4, 5, 6]));
    // Unawaited chunks: each claims its range synchronously.
    await Promise.all([w.write("a", big.subarray(0, 1)), w.write("a", big.subarray(1, 600)), w.write("a", big.subarray(600))]);
    expect(await missing(path)).toBe(true);
    await w.finish();
    expect(await tempsLeft(path)).toEqual([]);
    const f = await SafetensorsFile.open(path);
    expect(await f.readBytes("a")).toEqual(big);
    expect(await f.readBytes("b")).toEqual(new Uint8Array([1, 2, 3, 4, 5, 6]));
    await f.close();
    await expect(w.write("a", new Uint8Array(1))).rejects.toThrow(/write of tensor "a" after finish\(\) or abort\(\)/);
  });

  test.each([0, 8, 1592, 4088])("dataOffsetResidue %i pads the header with spaces so the data starts at that page offset", async (residue) => {
    const path = tmp();
    const w = await SafetensorsWriter.create(path, [{ name: "a", dtype: "F16", shape: [3] }], { k: "v" }, { dataOffsetResidue: residue });
    await w.write("a", Uint8Array.of(1, 2, 3, 4, 5, 6));
    await w.finish();
    const bytes = await readFile(path);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    expect((8 + n) % 4096).toBe(residue);
    const json = `{"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]}}`;
    // The smallest padding that reaches the residue: less than one page of spaces after the JSON.
    expect(n - json.length).toBeLessThan(4096 + 8);
    expect(bytes.subarray(8, 8 + n).toString("latin1")).toBe(json.padEnd(n, " "));
    const f = await SafetensorsFile.open(path);
    expect(await f.readBytes("a")).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6));
    await f.close();
  });

  test("a residue that is not a multiple of 8 below 4096 is refused", async () => {
    for (const bad of [4, 4096, -8, 1.5]) {
      await expect(SafetensorsWriter.create(tmp(), [], undefined, { dataOffsetResidue: bad })).rejects.toThrow(
        /data offset residue must be a multiple of 8 in \[0, 4096\)/,
      );
    }
  });

  test("writeWith hands the writer's descriptor and the claimed position to the caller, in claim order; its failure fails finish", async () => {
    const path = tmp();
    const w = await SafetensorsWriter.create(path, [{ name: "a", dtype: "U8", shape: [6] }]);
    const seen: number[] = [];
    await Promise.all([
      w.writeWith("a", 2, async (fd, at) => void seen.push(at, writeSync(fd, Uint8Array.of(1, 2), 0, 2, at))),
      w.write("a", Uint8Array.of(3, 4)),
    ]);
    await expect(w.writeWith("a", 3, async () => {})).rejects.toThrow(/3 more bytes overflow its 6 bytes \(4 already written\)/);
    await expect(w.writeWith("a", 2, () => Promise.reject(new Error("disk on fire")))).rejects.toThrow("disk on fire");
    await expect(w.finish()).rejects.toThrow(/a write failed: disk on fire/);
    // The first claim starts the data section, right after the 8-byte prefix and the 8-padded JSON header.
    expect(seen[0]).toBe(8 + Math.ceil(`{"a":{"dtype":"U8","shape":[6],"data_offsets":[0,6]}}`.length / 8) * 8);
    expect(await missing(path)).toBe(true);
  });

  test("an interrupted (aborted) writer leaves no file and no temp file", async () => {
    const path = tmp();
    const w = await SafetensorsWriter.create(path, [{ name: "a", dtype: "F32", shape: [4] }]);
    await w.write("a", new Uint8Array(8));
    await w.abort();
    await w.abort();
    expect(await missing(path)).toBe(true);
    expect(await tempsLeft(path)).toEqual([]);
  });

  test("finish with an incomplete tensor fails and cleans up", async () => {
    const path = tmp();
    const w = await SafetensorsWriter.create(path, [
      { name: "a", dtype: "F32", shape: [1] },
      { name: "b", dtype: "F16", shape: [2] },
    ]);
    await w.write("a", new Uint8Array(4));
    await w.write("b", new Uint8Array(2));
    await expect(w.finish()).rejects.toThrow(`${path}: tensor "b" is incomplete: 2 of 4 bytes written`);
    expect(await missing(path)).toBe(true);
    expect(await tempsLeft(path)).toEqual([]);
  });

  test("overflowing and unknown writes are rejected", async () => {
    const path = tmp();
    const w = await SafetensorsWriter.create(path, [{ name: "a", dtype: "I32", shape: [2] }]);
    await w.write("a", new Uint8Array(6));
    await expect(w.write("a", new Uint8Array(3))).rejects.toThrow(`${path}: tensor "a": 3 more bytes overflow its 8 bytes (6 already written)`);
    await expect(w.write("z", new Uint8Array(1))).rejects.toThrow(`${path}: write of unknown tensor "z"`);
    await w.abort();
  });

  test.each([
    [
      "duplicate names",
      [
        { name: "a", dtype: "F32", shape: [1] },
        { name: "a", dtype: "F32", shape: [1] },
      ],
      /tensor "a": duplicate tensor name/,
    ],
    ["the reserved name", [{ name: "__metadata__", dtype: "F32", shape: [1] }], /tensor "__metadata__": invalid tensor name/],
    ["a bad shape", [{ name: "a", dtype: "F32", shape: [2, -1] }], /tensor "a": "shape" must be an array of non-negative integers/],
    ["an unknown dtype", [{ name: "a", dtype: "Q4", shape: [2] }], /tensor "a": unknown dtype "Q4"/],
  ])("create rejects %s before touching the disk", async (_label, entries, message) => {
    const path = tmp();
    await expect(SafetensorsWriter.create(path, entries as never)).rejects.toThrow(message);
    expect(await tempsLeft(path)).toEqual([]);
  });

  test("create rejects non-string metadata", async () => {
    await expect(SafetensorsWriter.create(tmp(), [], { n: 1 } as never)).rejects.toThrow(/"__metadata__" key "n" has a non-string value/);
  });

  test("writeSafetensors rejects data whose array type does not fit the dtype, and validates sizes", async () => {
    const path = tmp();
    await expect(writeSafetensors(path, [{ name: "h", dtype: "F16", shape: [2], data: new Float32Array(2) }])).rejects.toThrow(
      `${path}: tensor "h": Float32Array data does not fit dtype F16`,
    );
    await expect(writeSafetensors(path, [{ name: "x", dtype: "F32", shape: [3], data: new Float32Array(2) }])).rejects.toThrow(
      `${path}: tensor "x" is incomplete: 8 of 12 bytes written`,
    );
    await expect(writeSafetensors(path, [{ name: "x", dtype: "F32", shape: [1], data: new Float32Array(2) }])).rejects.toThrow(/overflow its 4 bytes/);
    expect(await missing(path)).toBe(true);
    expect(await tempsLeft(path)).toEqual([]);
  });

  test("writeSafetensors honours subarray views", async () => {
    const path = tmp();
    const backing = new Float32Array([9, 1, 2, 9]);
    await writeSafetensors(path, [{ name: "v", dtype: "F32", shape: [2], data: backing.subarray(1, 3) }]);
    const f = SafetensorsFile.openSync(path);
    expect(f.readF32Sync("v")).toEqual(new Float32Array([1, 2]));
    f.closeSync();
  });

  test("replaces an existing file atomically", async () => {
    const path = tmp();
    await writeSafetensors(path, [{ name: "old", dtype: "U8", shape: [1], data: new Uint8Array([1]) }]);
    await writeSafetensors(path, [{ name: "new", dtype: "U8", shape: [1], data: new Uint8Array([2]) }]);
    const f = await SafetensorsFile.open(path);
    expect(f.tensors().map((x) => x.name)).toEqual(["new"]);
    await f.close();
  });
});
