// Streaming safetensors reader and writer. Format: u64 little-endian header length N, N bytes of UTF-8 JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}, then the data section.
// Invariants: a file is never loaded whole; the reader keeps one open descriptor and does positioned reads of
// exactly the bytes asked for. A header is accepted only if it is fully valid: known dtypes, byte lengths that
// match shape x dtype, and tensors that tile the data section with no overlap and no gap (the reference
// implementation's rule). The writer lays out the header up front (offsets in entry order, JSON padded with
// spaces to a multiple of 8 bytes), streams into a temp file, and renames it into place only when every tensor
// is complete, so an interrupted write never leaves a file at the target path.

import { removeOnSignal } from "../io/signal-cleanup.ts";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { type FileHandle, open as openFile, rename, rm } from "node:fs/promises";
import { promisify } from "node:util";
import { bf16ToF32, f16ToF32 } from "./half.ts";
import { dtypeBytes, dtypeInfo, isSafetensorsDtype, type SafetensorsDtype } from "./dtypes.ts";

export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute position of the first byte in the file. */
  byteOffset: number;
  byteLength: number;
}

export interface TensorSpec {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

/** Same cap as the reference implementation: a bigger header is corruption, not a model. */
const MAX_HEADER_BYTES = 100_000_000;
/** Single read/write syscalls are capped near 2 GiB, so large tensors move in 1 GiB pieces. */
const IO_CHUNK = 1 << 30;
const METADATA_KEY = "__metadata__";

const fsRead = promisify(fs.read);

// ---------------------------------------------------------------- validation shared by reader and writer

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Element count of a shape, or a reason why it is not a valid shape. */
function shapeElements(shape: unknown): number | string {
  if (!Array.isArray(shape) || !shape.every(isCount)) return `"shape" must be an array of non-negative integers, got ${JSON.stringify(shape)}`;
  const n = shape.reduce((a: number, b: number) => a * b, 1);
  return Number.isSafeInteger(n) ? n : `shape ${JSON.stringify(shape)} has too many elements`;
}

function checkMetadata(where: string, metadata: unknown): Record<string, string> {
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    throw new SafetensorsError(`${where}: "${METADATA_KEY}" must be an object mapping strings to strings`);
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") throw new SafetensorsError(`${where}: "${METADATA_KEY}" key "${k}" has a non-string value`);
  }
  return metadata as Record<string, string>;
}

// ---------------------------------------------------------------- header parsing (pure)

interface Header {
  tensors: TensorInfo[];
  metadata: Record<string, string> | undefined;
}

/** Header length from the 8-byte prefix, checked against the file size. */
function headerLength(path: string, fileSize: number, prefix: Uint8Array): number {
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(`${path}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (8n + n > BigInt(fileSize)) throw new SafetensorsError(`${path}: header length ${n} runs past the end of the ${fileSize}-byte file`);
  return Number(n);
}

function parseJson(path: string, bytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(`${path}: header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${path}: header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new SafetensorsError(`${path}: header is not a JSON object`);
  return json as Record<string, unknown>;
}

/** One header entry -> TensorInfo with data-relative offsets turned absolute; `dataLength` bounds them. */
function parseEntry(path: string, name: string, raw: unknown, dataStart: number, dataLength: number): TensorInfo {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${path}: tensor "${name}": ${msg}`);
  };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return fail("entry is not an object");
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (dtype === undefined) fail(`missing "dtype"`);
  if (typeof dtype !== "string") return fail(`"dtype" must be a string`);
  if (!isSafetensorsDtype(dtype)) return fail(`unknown dtype "${dtype}"`);
  if (shape === undefined) fail(`missing "shape"`);
  const elements = shapeElements(shape);
  if (typeof elements === "string") return fail(elements);
  if (offsets === undefined) fail(`missing "data_offsets"`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    return fail(`"data_offsets" must be [begin, end] with non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`data_offsets [${begin}, ${end}] end before begin`);
  if (end > dataLength) fail(`data_offsets [${begin}, ${end}] run past the ${dataLength}-byte data section`);
  const expected = elements * dtypeBytes(dtype);
  if (end - begin !== expected) fail(`has ${end - begin} bytes but shape ${JSON.stringify(shape)} of ${dtype} needs ${expected}`);
  return { name, dtype, shape: shape as number[], byteOffset: dataStart + begin, byteLength: end - begin };
}

/** Tensors must tile [0, dataLength) exactly, as the reference implementation demands. */
function checkTiling(path: string, tensors: readonly TensorInfo[], dataStart: number, dataLength: number): void {
  const sorted = [...tensors].sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  let cursor = dataStart;
  let last: TensorInfo | undefined;
  for (const t of sorted) {
    const rel = (x: number) => x - dataStart;
    if (t.byteOffset < cursor && last) {
      throw new SafetensorsError(
        `${path}: tensors "${last.name}" [${rel(last.byteOffset)}, ${rel(cursor)}) and "${t.name}" [${rel(t.byteOffset)}, ${rel(t.byteOffset + t.byteLength)}) overlap`,
      );
    }
    if (t.byteOffset > cursor) throw new SafetensorsError(`${path}: data bytes [${rel(cursor)}, ${rel(t.byteOffset)}) belong to no tensor`);
    cursor = t.byteOffset + t.byteLength;
    last = t;
  }
  if (cursor !== dataStart + dataLength) {
    throw new SafetensorsError(`${path}: data bytes [${cursor - dataStart}, ${dataLength}) after the last tensor belong to no tensor`);
  }
}

function parseHeader(path: string, fileSize: number, headerBytes: Uint8Array): Header {
  const json = parseJson(path, headerBytes);
  const dataStart = 8 + headerBytes.length;
  const dataLength = fileSize - dataStart;
  let metadata: Record<string, string> | undefined;
  const tensors: TensorInfo[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === METADATA_KEY) metadata = checkMetadata(path, raw);
    else tensors.push(parseEntry(path, name, raw, dataStart, dataLength));
  }
  checkTiling(path, tensors, dataStart, dataLength);
  return { tensors, metadata };
}

// ---------------------------------------------------------------- positioned I/O

async function readFully(path: string, fd: number, dst: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < dst.length; ) {
    const { bytesRead } = await fsRead(fd, dst, done, Math.min(IO_CHUNK, dst.length - done), position + done);
    if (bytesRead === 0) throw new SafetensorsError(`${path}: unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

function readFullySync(path: string, fd: number, dst: Uint8Array, position: number): void {
  for (let done = 0; done < dst.length; ) {
    const bytesRead = fs.readSync(fd, dst, done, Math.min(IO_CHUNK, dst.length - done), position + done);
    if (bytesRead === 0) throw new SafetensorsError(`${path}: unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

async function writeFully(handle: FileHandle, src: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < src.length; ) {
    const { bytesWritten } = await handle.write(src, done, Math.min(IO_CHUNK, src.length - done), position + done);
    done += bytesWritten;
  }
}

// ---------------------------------------------------------------- decoding raw bytes

/** Raw tensor bytes (a fresh, exactly sized buffer) -> float32, or undefined for dtypes with no decoder. */
function decodeF32(dtype: SafetensorsDtype, raw: ArrayBuffer): Float32Array | undefined {
  if (dtype === "F32") return new Float32Array(raw); // zero-copy view
  if (dtype === "F16") return f16ToF32(new Uint16Array(raw));
  if (dtype === "BF16") return bf16ToF32(new Uint16Array(raw));
  if (dtype === "F8_E4M3" || dtype === "F8_E5M2") return undefined;
  const src = new (dtypeInfo(dtype).view)(raw);
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
  return out;
}

function decodeI32(path: string, info: TensorInfo, raw: ArrayBuffer): Int32Array {
  const d = dtypeInfo(info.dtype);
  if (d.kind === "float") throw new SafetensorsError(`${path}: tensor "${info.name}": cannot read ${info.dtype} as int32`);
  if (info.dtype === "I32") return new Int32Array(raw);
  const src = new d.view(raw);
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = Number(src[i]);
    if (v !== (v | 0)) throw new SafetensorsError(`${path}: tensor "${info.name}": element ${i} = ${src[i]} does not fit int32`);
    out[i] = v;
  }
  return out;
}

// ---------------------------------------------------------------- reader

export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string> | undefined;
  readonly #fd: number;
  /** Set when opened asynchronously; owns #fd (and closes it if the object is garbage-collected). */
  readonly #handle: FileHandle | undefined;
  readonly #tensors: TensorInfo[];
  readonly #byName: Map<string, TensorInfo>;
  #closed = false;

  private constructor(path: string, fd: number, handle: FileHandle | undefined, header: Header) {
    this.path = path;
    this.metadata = header.metadata;
    this.#fd = fd;
    this.#handle = handle;
    this.#tensors = header.tensors;
    this.#byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  static async open(path: string): Promise<SafetensorsFile> {
    // Non-blocking, so a FIFO cannot hang the open; anything but a regular file is refused before a read.
    const handle = await openFile(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      const st = await handle.stat();
      if (!st.isFile())
        throw new SafetensorsError(
          `${path}: is ${st.isDirectory() ? "a directory" : st.isFIFO() ? "a FIFO" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "not a regular file"}, not a safetensors file`,
        );
      const { size } = st;
      if (size < 8) throw new SafetensorsError(`${path}: file is ${size} bytes, too short for the 8-byte header length`);
      const prefix = new Uint8Array(8);
      await readFully(path, handle.fd, prefix, 0);
      const header = new Uint8Array(headerLength(path, size, prefix));
      await readFully(path, handle.fd, header, 8);
      return new SafetensorsFile(path, handle.fd, handle, parseHeader(path, size, header));
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** Synchronous open, for small files in synchronous code (the CPU interpreter). Close with closeSync(). */
  static openSync(path: string): SafetensorsFile {
    const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new SafetensorsError(`${path}: is not a regular file, not a safetensors file`);
      const { size } = st;
      if (size < 8) throw new SafetensorsError(`${path}: file is ${size} bytes, too short for the 8-byte header length`);
      const prefix = new Uint8Array(8);
      readFullySync(path, fd, prefix, 0);
      const header = new Uint8Array(headerLength(path, size, prefix));
      readFullySync(path, fd, header, 8);
      return new SafetensorsFile(path, fd, undefined, parseHeader(path, size, header));
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** All tensors in header order (JSON.parse puts integer-like names such as "0" first). */
  tensors(): TensorInfo[] {
    return [...this.#tensors];
  }

  info(name: string): TensorInfo | undefined {
    return this.#byName.get(name);
  }

  /** Bytes [start, start + length) of a tensor, relative to its first byte; defaults to the whole tensor. */
  async readBytes(name: string, start = 0, length?: number): Promise<Uint8Array> {
    const { position, out } = this.#range(name, start, length);
    await readFully(this.path, this.#fd, out, position);
    return out;
  }

  readBytesSync(name: string, start = 0, length?: number): Uint8Array {
    const { position, out } = this.#range(name, start, length);
    readFullySync(this.path, this.#fd, out, position);
    return out;
  }

  /** The tensor as float32 (F32 is read straight into the result; F8 types are rejected). */
  async readF32(name: string): Promise<Float32Array> {
    return this.#toF32(name, await this.readBytes(name));
  }

  readF32Sync(name: string): Float32Array {
    return this.#toF32(name, this.readBytesSync(name));
  }

  /** The tensor as int32, for integer and BOOL dtypes; throws if a value does not fit. */
  async readI32(name: string): Promise<Int32Array> {
    return decodeI32(this.path, this.#require(name), (await this.readBytes(name)).buffer as ArrayBuffer);
  }

  readI32Sync(name: string): Int32Array {
    return decodeI32(this.path, this.#require(name), this.readBytesSync(name).buffer as ArrayBuffer);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#handle) await this.#handle.close();
    else fs.closeSync(this.#fd);
  }

  closeSync(): void {
    if (this.#handle) throw new SafetensorsError(`${this.path}: opened with open(), close it with close()`);
    if (this.#closed) return;
    this.#closed = true;
    fs.closeSync(this.#fd);
  }

  #require(name: string): TensorInfo {
    if (this.#closed) throw new SafetensorsError(`${this.path}: file is closed`);
    const info = this.#byName.get(name);
    if (!info) throw new SafetensorsError(`${this.path}: no tensor "${name}"`);
    return info;
  }

  #range(name: string, start: number, length: number | undefined): { position: number; out: Uint8Array } {
    const info = this.#require(name);
    const len = length ?? info.byteLength - start;
    if (!isCount(start) || !isCount(len) || start + len > info.byteLength) {
      throw new SafetensorsError(`${this.path}: tensor "${name}": byte range start=${start} length=${length} is outside its ${info.byteLength} bytes`);
    }
    return { position: info.byteOffset + start, out: new Uint8Array(len) };
  }

  #toF32(name: string, bytes: Uint8Array): Float32Array {
    const info = this.#require(name);
    const out = decodeF32(info.dtype, bytes.buffer as ArrayBuffer);
    if (!out) throw new SafetensorsError(`${this.path}: tensor "${name}": cannot convert ${info.dtype} to float32`);
    return out;
  }
}

// ---------------------------------------------------------------- writer

interface Slot {
  position: number;
  length: number;
  written: number;
}

/** Page size the data section can be aligned to (see WriterOptions.dataOffsetResidue). */
export const DATA_ALIGN = 4096;

export interface WriterOptions {
  /**
   * Pad the header with spaces (as the format allows) so the data section starts at a file offset congruent to
   * this modulo DATA_ALIGN; a multiple of 8 below DATA_ALIGN. The converter picks the residue that puts copied
   * tensors at the same page offset as in their source file, so the kernel copies whole pages.
   */
  dataOffsetResidue?: number;
  /**
   * Called once the header is written, with the temp file's descriptor and final size, to reserve its blocks
   * (copy-ranges.ts preallocate); its result is `preallocated`.
   */
  preallocate?: (fd: number, size: number) => boolean;
}

/** The padded header bytes and each tensor's absolute slot, in entry order. Validates the entries. */
function layout(path: string, entries: readonly TensorSpec[], metadata: Record<string, string> | undefined, residue: number | undefined) {
  if (residue !== undefined && (!Number.isInteger(residue) || residue < 0 || residue >= DATA_ALIGN || residue % 8 !== 0)) {
    throw new SafetensorsError(`${path}: data offset residue must be a multiple of 8 in [0, ${DATA_ALIGN}), got ${residue}`);
  }
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(checkMetadata(path, metadata))}`);
  const relative = new Map<string, [number, number]>();
  let offset = 0;
  for (const { name, dtype, shape } of entries) {
    const fail = (msg: string): never => {
      throw new SafetensorsError(`${path}: tensor "${name}": ${msg}`);
    };
    if (typeof name !== "string" || name === "" || name === METADATA_KEY) fail("invalid tensor name");
    if (relative.has(name)) fail("duplicate tensor name");
    if (typeof dtype !== "string" || !isSafetensorsDtype(dtype)) fail(`unknown dtype "${dtype}"`);
    const elements = shapeElements(shape);
    if (typeof elements === "string") return fail(elements);
    const end = offset + elements * dtypeBytes(dtype);
    relative.set(name, [offset, end]);
    // Built by hand, not via JSON.stringify of one object, so integer-like names keep their entry order.
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: [offset, end] })}`);
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(",")}}`, "utf8");
  // The smallest multiple of 8 that holds the JSON (and puts the data start, 8 + padded, at the residue).
  const eight = Math.ceil(json.length / 8) * 8;
  const padded = residue === undefined ? eight : eight + ((((residue - 8 - eight) % DATA_ALIGN) + DATA_ALIGN) % DATA_ALIGN);
  const header = Buffer.alloc(8 + padded, 0x20); // pad with spaces, like the reference writer
  header.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(header, 8);
  const slots = new Map<string, Slot>();
  for (const [name, [begin, end]] of relative) slots.set(name, { position: header.length + begin, length: end - begin, written: 0 });
  return { header, slots, fileSize: header.length + offset };
}

export class SafetensorsWriter {
  readonly path: string;
  readonly tempPath: string;
  readonly #handle: FileHandle;
  readonly #slots: Map<string, Slot>;
  readonly #pending = new Set<Promise<void>>();
  #failure: unknown;
  #state: "open" | "finishing" | "done" = "open";

  /** The temp file has its final size and reserved blocks (WriterOptions.preallocate). */
  readonly preallocated: boolean;

  readonly #unregister: () => void;

  private constructor(path: string, tempPath: string, handle: FileHandle, slots: Map<string, Slot>, preallocated: boolean, unregister: () => void) {
    this.#unregister = unregister;
    this.preallocated = preallocated;
    this.path = path;
    this.tempPath = tempPath;
    this.#handle = handle;
    this.#slots = slots;
  }

  /** Lays out the whole file from `entries` (data in this order) and writes the header to a temp file. */
  static async create(path: string, entries: readonly TensorSpec[], metadata?: Record<string, string>, opts: WriterOptions = {}): Promise<SafetensorsWriter> {
    const { header, slots, fileSize } = layout(path, entries, metadata, opts.dataOffsetResidue);
    const tempPath = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
    const handle = await openFile(tempPath, "wx");
    const unregister = removeOnSignal(tempPath);
    let preallocated = false;
    try {
      await writeFully(handle, header, 0);
      preallocated = opts.preallocate?.(handle.fd, fileSize) ?? false;
    } catch (e) {
      await handle.close();
      await rm(tempPath, { force: true });
      unregister();
      throw e;
    }
    return new SafetensorsWriter(path, tempPath, handle, slots, preallocated, unregister);
  }

  /**
   * Appends the next chunk of a tensor's bytes. Chunks of one tensor go in order; tensors may come in any order.
   * Calls need not be awaited one by one: each claims its file range synchronously.
   */
  write(name: string, bytes: Uint8Array): Promise<void> {
    return this.writeWith(name, bytes.length, (_fd, position) => writeFully(this.#handle, bytes, position));
  }

  /**
   * Appends the next `byteLength` bytes of a tensor, written by `io` at absolute `position` of the open temp
   * file `fd` (e.g. a kernel copy from a source file). Same ordering and bookkeeping as write(): the range is
   * claimed synchronously, and a failure of `io` fails finish().
   */
  async writeWith(name: string, byteLength: number, io: (fd: number, position: number) => Promise<void>): Promise<void> {
    if (this.#state !== "open") throw new SafetensorsError(`${this.path}: write of tensor "${name}" after finish() or abort()`);
    const slot = this.#slots.get(name);
    if (!slot) throw new SafetensorsError(`${this.path}: write of unknown tensor "${name}"`);
    if (slot.written + byteLength > slot.length) {
      throw new SafetensorsError(
        `${this.path}: tensor "${name}": ${byteLength} more bytes overflow its ${slot.length} bytes (${slot.written} already written)`,
      );
    }
    const position = slot.position + slot.written;
    slot.written += byteLength;
    const done = io(this.#handle.fd, position);
    this.#pending.add(done);
    try {
      await done;
    } catch (e) {
      this.#failure ??= e;
      throw e;
    } finally {
      this.#pending.delete(done);
    }
  }

  /** Waits for pending writes, checks every tensor is complete, then atomically renames the temp file to `path`. */
  async finish(): Promise<void> {
    if (this.#state !== "open") throw new SafetensorsError(`${this.path}: finish() after finish() or abort()`);
    this.#state = "finishing";
    await Promise.allSettled(this.#pending);
    const incomplete = [...this.#slots].find(([, s]) => s.written !== s.length);
    let error: SafetensorsError | undefined;
    if (this.#failure !== undefined) error = new SafetensorsError(`${this.path}: a write failed: ${(this.#failure as Error).message}`);
    else if (incomplete) {
      const [name, s] = incomplete;
      error = new SafetensorsError(`${this.path}: tensor "${name}" is incomplete: ${s.written} of ${s.length} bytes written`);
    }
    if (error) {
      await this.#discard();
      throw error;
    }
    try {
      await this.#handle.close();
      await rename(this.tempPath, this.path);
    } catch (e) {
      await rm(this.tempPath, { force: true });
      throw e;
    } finally {
      this.#state = "done";
      this.#unregister();
    }
  }

  /** Drops everything written so far; nothing is left at `path` or at the temp path. Safe to call twice. */
  async abort(): Promise<void> {
    if (this.#state === "done") return;
    this.#state = "finishing";
    await Promise.allSettled(this.#pending);
    await this.#discard();
  }

  async #discard(): Promise<void> {
    this.#state = "done";
    await this.#handle.close().catch(() => {});
    await rm(this.tempPath, { force: true });
    this.#unregister();
  }
}

/** Typed arrays accepted per dtype besides raw Uint8Array bytes (which fit any dtype). */
export type TensorData = Uint8Array | Float32Array | Int32Array | Uint16Array;

export interface TensorWithData extends TensorSpec {
  data: TensorData;
}

/** Writes a small file in one call. The typed array must be Uint8Array or match the dtype's view. */
export async function writeSafetensors(path: string, tensors: readonly TensorWithData[], metadata?: Record<string, string>): Promise<void> {
  for (const t of tensors) {
    if (isSafetensorsDtype(t.dtype) && !(t.data instanceof Uint8Array) && !(t.data instanceof dtypeInfo(t.dtype).view)) {
      throw new SafetensorsError(`${path}: tensor "${t.name}": ${t.data.constructor.name} data does not fit dtype ${t.dtype}`);
    }
  }
  const writer = await SafetensorsWriter.create(path, tensors, metadata);
  try {
    for (const t of tensors) await writer.write(t.name, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    await writer.finish();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}
