// Float16 / bfloat16 codecs over typed arrays (Node 20 has no Float16Array), plus scalar helpers.
// Invariants: narrowing (f32 -> f16/bf16) rounds to nearest, ties to even, overflows to ±Inf exactly as IEEE 754
// does, keeps ±0 and f16 subnormals, and turns every NaN into a quiet NaN of the same sign (never into Inf).
// Widening (f16/bf16 -> f32) is exact and keeps NaN payloads bit for bit. f16 <-> bf16 goes through f32, whose
// first step is exact, so it is a single correct rounding. Halves are raw bit patterns in Uint16Array.
// Scalar helpers take a JS number that is first rounded to float32 (as a Float32Array store does), so they
// agree with the array loops; values are assumed little-endian like every platform Node runs on.

/** f32 bit pattern -> f16 bit pattern, round-to-nearest-even. `u` is an unsigned 32-bit integer. */
function f32BitsToF16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a >= 0x7f800000) {
    // Inf stays Inf; NaN keeps its top payload bits and gets the quiet bit so truncation cannot make it Inf.
    return a === 0x7f800000 ? sign | 0x7c00 : sign | 0x7e00 | ((a >>> 13) & 0x3ff);
  }
  // 65520 is the midpoint between 65504 (max f16) and 65536; the tie goes to the even neighbour, which is Inf.
  if (a >= 0x477ff000) return sign | 0x7c00;
  if (a >= 0x38800000) {
    // Normal f16 range (>= 2^-14): rebias the exponent (127 -> 15), then round away the low 13 bits.
    // A carry out of the mantissa correctly bumps the exponent.
    const m = a - 0x38000000;
    return sign | ((m + 0xfff + ((m >>> 13) & 1)) >>> 13);
  }
  // Subnormal f16: the result is round(|x| / 2^-24). Below 2^-25 (f32 exponent < 102) everything rounds to 0.
  const e = a >>> 23;
  if (e < 102) return sign;
  const sig = (a & 0x7fffff) | 0x800000; // |x| = sig * 2^(e - 150), so |x| / 2^-24 = sig >> (126 - e)
  const shift = 126 - e; // 14..24
  return sign | ((sig + (1 << (shift - 1)) - 1 + ((sig >>> shift) & 1)) >>> shift);
}

/** f16 bit pattern -> f32 bit pattern (exact). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // Subnormal f16 is a normal f32: shift the leading 1 up to the implicit position.
  let e = 113;
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** f32 bit pattern -> bf16 bit pattern, round-to-nearest-even. */
function f32BitsToBf16Bits(u: number): number {
  // NaN: keep sign and top payload, force the quiet bit (0x40 of bf16) so a payload in the low half survives.
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  // Adding 0x7fff plus the kept LSB rounds ties to even; a carry into the exponent yields Inf at the top.
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

// f16 -> f32 via a 65 536-entry table (256 KiB) is ~3x faster than bit twiddling; built on first use.
let f16Table: Uint32Array | undefined;
function f16ToF32Table(): Uint32Array {
  if (f16Table === undefined) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

function checkDst(src: ArrayLike<number>, dst: ArrayLike<number>, fn: string): void {
  if (dst.length !== src.length) throw new RangeError(`${fn}: dst has ${dst.length} elements, src has ${src.length}`);
}

/** Bits of a Float32Array as unsigned integers, without copying. */
const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

export function f16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkDst(src, dst, "f16ToF32");
  const table = f16ToF32Table();
  const out = bitsOf(dst);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return dst;
}

export function f32ToF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkDst(src, dst, "f32ToF16");
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) dst[i] = f32BitsToF16Bits(bits[i]!);
  return dst;
}

export function bf16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkDst(src, dst, "bf16ToF32");
  const out = bitsOf(dst);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
  return dst;
}

export function f32ToBf16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkDst(src, dst, "f32ToBf16");
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) dst[i] = f32BitsToBf16Bits(bits[i]!);
  return dst;
}

export function f16ToBf16(src: Uint16Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkDst(src, dst, "f16ToBf16");
  const table = f16ToF32Table();
  for (let i = 0; i < src.length; i++) dst[i] = f32BitsToBf16Bits(table[src[i]!]!);
  return dst;
}

export function bf16ToF16(src: Uint16Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkDst(src, dst, "bf16ToF16");
  // `<< 16` can set bit 31 and go negative; `>>> 0` makes it the unsigned pattern the kernel expects.
  for (let i = 0; i < src.length; i++) dst[i] = f32BitsToF16Bits((src[i]! << 16) >>> 0);
  return dst;
}

// One-element scratch views: a store rounds a double to float32, the aliased read gives its bits.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

function f32FromBits(u: number): number {
  scratchU32[0] = u;
  return scratchF32[0]!;
}

export const f32ToF16Bits = (x: number): number => f32BitsToF16Bits(f32Bits(x));
export const f16BitsToF32 = (h: number): number => f32FromBits(f16ToF32Table()[h & 0xffff]!);
export const f32ToBf16Bits = (x: number): number => f32BitsToBf16Bits(f32Bits(x));
export const bf16BitsToF32 = (h: number): number => f32FromBits((h & 0xffff) << 16);

/** x rounded to the nearest f16 value, returned as a number (like Math.f16round, after a float32 store). */
export const roundToF16 = (x: number): number => f16BitsToF32(f32ToF16Bits(x));
/** x rounded to the nearest bf16 value, returned as a number. */
export const roundToBf16 = (x: number): number => bf16BitsToF32(f32ToBf16Bits(x));
