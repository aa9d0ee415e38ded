// Casts between the float dtypes the converter handles (F32, F16, BF16) on raw little-endian words in
// ArrayBuffers. Invariants: every narrowing is one correct round-to-nearest-even (half.ts does the rounding;
// F16 <-> BF16 goes through an exact widening first), widening is exact, and a same-dtype cast is a byte copy
// that keeps every bit (NaN payloads included). Offsets are in bytes and must be aligned to the element size.

import { bf16ToF16, bf16ToF32, f16ToBf16, f16ToF32, f32ToBf16, f32ToF16 } from "./half.ts";

export type FloatDtype = "F32" | "F16" | "BF16";

export const FLOAT_BYTES: Readonly<Record<FloatDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

export const isConvertibleDtype = (d: string): d is FloatDtype => Object.hasOwn(FLOAT_BYTES, d);

type Cast = (src: ArrayBuffer, srcOffset: number, dst: ArrayBuffer, dstOffset: number, n: number) => void;

const f32 = (b: ArrayBuffer, o: number, n: number) => new Float32Array(b, o, n);
const u16 = (b: ArrayBuffer, o: number, n: number) => new Uint16Array(b, o, n);

const CASTS: Readonly<Record<`${FloatDtype}>${FloatDtype}`, Cast>> = {
  "F32>F32": (s, so, d, dO, n) => new Uint8Array(d, dO, n * 4).set(new Uint8Array(s, so, n * 4)),
  "F16>F16": (s, so, d, dO, n) => new Uint8Array(d, dO, n * 2).set(new Uint8Array(s, so, n * 2)),
  "BF16>BF16": (s, so, d, dO, n) => new Uint8Array(d, dO, n * 2).set(new Uint8Array(s, so, n * 2)),
  "F32>F16": (s, so, d, dO, n) => f32ToF16(f32(s, so, n), u16(d, dO, n)),
  "F32>BF16": (s, so, d, dO, n) => f32ToBf16(f32(s, so, n), u16(d, dO, n)),
  "F16>F32": (s, so, d, dO, n) => f16ToF32(u16(s, so, n), f32(d, dO, n)),
  "BF16>F32": (s, so, d, dO, n) => bf16ToF32(u16(s, so, n), f32(d, dO, n)),
  "F16>BF16": (s, so, d, dO, n) => f16ToBf16(u16(s, so, n), u16(d, dO, n)),
  "BF16>F16": (s, so, d, dO, n) => bf16ToF16(u16(s, so, n), u16(d, dO, n)),
};

/** Converts `n` elements of dtype `from` at `src[srcOffset..]` into dtype `to` at `dst[dstOffset..]`. */
export function castFloats(from: FloatDtype, to: FloatDtype, src: ArrayBuffer, srcOffset: number, dst: ArrayBuffer, dstOffset: number, n: number): void {
  if (n > 0) CASTS[`${from}>${to}`](src, srcOffset, dst, dstOffset, n);
}
