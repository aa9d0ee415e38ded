// The safetensors element types as one data table: name -> byte size, kind, and the typed array that views the
// raw little-endian bytes. Names are spelled exactly as in safetensors headers. Halves and FP8 are viewed as raw
// bit patterns (Uint16Array / Uint8Array); decoding them is half.ts's job. Sub-byte types (F4, F6) are absent
// because a byte-size table cannot describe them.

export type DtypeKind = "float" | "int" | "uint" | "bool";

type ArrayCtor =
  | Float64ArrayConstructor
  | Float32ArrayConstructor
  | Uint16ArrayConstructor
  | Uint8ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Int16ArrayConstructor
  | Int8ArrayConstructor;

export interface DtypeInfo {
  readonly bytes: number;
  readonly kind: DtypeKind;
  /** Typed array over the raw bytes (bit patterns for F16/BF16/F8). */
  readonly view: ArrayCtor;
}

export const SAFETENSORS_DTYPES = {
  F64: { bytes: 8, kind: "float", view: Float64Array },
  F32: { bytes: 4, kind: "float", view: Float32Array },
  F16: { bytes: 2, kind: "float", view: Uint16Array },
  BF16: { bytes: 2, kind: "float", view: Uint16Array },
  F8_E4M3: { bytes: 1, kind: "float", view: Uint8Array },
  F8_E5M2: { bytes: 1, kind: "float", view: Uint8Array },
  I64: { bytes: 8, kind: "int", view: BigInt64Array },
  I32: { bytes: 4, kind: "int", view: Int32Array },
  I16: { bytes: 2, kind: "int", view: Int16Array },
  I8: { bytes: 1, kind: "int", view: Int8Array },
  U64: { bytes: 8, kind: "uint", view: BigUint64Array },
  U32: { bytes: 4, kind: "uint", view: Uint32Array },
  U16: { bytes: 2, kind: "uint", view: Uint16Array },
  U8: { bytes: 1, kind: "uint", view: Uint8Array },
  BOOL: { bytes: 1, kind: "bool", view: Uint8Array },
} as const satisfies Record<string, DtypeInfo>;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

export function isSafetensorsDtype(s: string): s is SafetensorsDtype {
  return Object.hasOwn(SAFETENSORS_DTYPES, s);
}

export const dtypeInfo = (d: SafetensorsDtype): DtypeInfo => SAFETENSORS_DTYPES[d];
export const dtypeBytes = (d: SafetensorsDtype): number => SAFETENSORS_DTYPES[d].bytes;
export const isFloatDtype = (d: SafetensorsDtype): boolean => SAFETENSORS_DTYPES[d].kind === "float";
