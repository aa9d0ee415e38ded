// NumPy .npy files (format version 1.0), the container TensorRT-LLM's LoRA tools and Triton examples use for
// runtime adapter tensors (model.lora_weights.npy / model.lora_config.npy). Written by hand rather than through a
// library because the format is a 10-byte preamble plus a Python-literal header and Kiln needs only C-order,
// little-endian float32 / float16 / int32 arrays. Invariants: the header is padded with spaces and ends in '\n' so
// the data starts at a multiple of 64 bytes (numpy's own alignment); decode accepts exactly what encode writes.

import { f32ToF16, f16ToF32 } from "./half.ts";

export type NpyDtype = "float32" | "float16" | "int32";

const DESCR: Record<NpyDtype, string> = { float32: "<f4", float16: "<f2", int32: "<i4" };
const BYTES: Record<NpyDtype, number> = { float32: 4, float16: 2, int32: 4 };
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export class NpyError extends Error {
  override name = "NpyError";
}

export interface NpyArray {
  readonly dtype: NpyDtype;
  readonly shape: readonly number[];
  /** float32 and float16 arrays are returned as float32 values, int32 as int32. */
  readonly data: Float32Array | Int32Array;
}

export function encodeNpy(a: NpyArray): Uint8Array {
  const n = a.shape.reduce((x, y) => x * y, 1);
  if (a.data.length !== n) throw new NpyError(`npy: ${a.data.length} values do not fill shape [${a.shape}]`);
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(", ")})`;
  let header = `{'descr': '${DESCR[a.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += `${" ".repeat(63 - ((10 + header.length) % 64))}\n`;
  const out = new Uint8Array(10 + header.length + n * BYTES[a.dtype]);
  out.set(MAGIC, 0);
  out.set([1, 0, header.length & 0xff, header.length >> 8], 6);
  out.set(new TextEncoder().encode(header), 10);
  const view = new DataView(out.buffer, 10 + header.length);
  const half = a.dtype === "float16" ? f32ToF16(Float32Array.from(a.data)) : undefined;
  for (let i = 0; i < n; i++) {
    if (half) view.setUint16(i * 2, half[i]!, true);
    else if (a.dtype === "float32") view.setFloat32(i * 4, a.data[i]!, true);
    else view.setInt32(i * 4, a.data[i]!, true);
  }
  return out;
}

export function decodeNpy(bytes: Uint8Array, where = "npy"): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m) || bytes[6] !== 1) throw new NpyError(`${where}: not a version 1.0 .npy file`);
  const len = bytes[8]! | (bytes[9]! << 8);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + len));
  const m = /'descr': '([<>|a-z0-9]+)', 'fortran_order': False, 'shape': \(([0-9, ]*)\)/.exec(header);
  const dtype = m && (Object.keys(DESCR) as NpyDtype[]).find((d) => DESCR[d] === m[1]);
  if (!m || !dtype) throw new NpyError(`${where}: unsupported header ${header.trim()}`);
  const shape = m[2]!
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map(Number);
  const n = shape.reduce((x, y) => x * y, 1);
  if (bytes.length !== 10 + len + n * BYTES[dtype]) throw new NpyError(`${where}: ${bytes.length - 10 - len} data bytes for shape [${shape}] ${dtype}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset + 10 + len);
  if (dtype === "float16") return { dtype, shape, data: f16ToF32(Uint16Array.from({ length: n }, (_, i) => view.getUint16(i * 2, true))) };
  const data =
    dtype === "int32"
      ? Int32Array.from({ length: n }, (_, i) => view.getInt32(i * 4, true))
      : Float32Array.from({ length: n }, (_, i) => view.getFloat32(i * 4, true));
  return { dtype, shape, data };
}
