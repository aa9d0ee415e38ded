// FP8 E4M3FN codec (OCP / NVIDIA "fn" variant: 1 sign, 4 exponent bits with bias 7, 3 mantissa bits; no
// infinities; 0x7F / 0xFF are the only NaNs; max finite ±448; smallest subnormal 2^-9).
// Invariants:
//   - Encoding first rounds the input to float32 (as a Float32Array store does), then rounds to nearest, ties to
//     the even mantissa, subnormals included. The result is a single correct rounding of that float32.
//   - SATURATING: |x| > 448, ±Inf included, encodes as ±448 (0x7E / 0xFE). This is NOT torch's
//     `.to(torch.float8_e4m3fn)` (c10/util/Float8_e4m3fn.h), which gives NaN for |x| > 464 (464 itself ties to
//     448); it is what TensorRT-LLM / ModelOpt produce: ModelOpt's quantizer clamps to ±448 before the cast
//     (modelopt/torch/quantization/tensor_quant.py `_fp8_eager`) and CUDA's `__nv_fp8_e4m3(float)`, used by
//     TensorRT-LLM's kernels (common/cudaTypeUtils.cuh), converts with __NV_SATFINITE.
//   - NaN encodes as 0x7F whatever its sign; -0 encodes as 0x80 and decodes to -0.
//   - Decoding is exact (every E4M3 value is a float32).

import { QuantError } from "./quant-error.ts";
import { roundHalfEven } from "./rounding.ts";

export const E4M3_MAX = 448;
export const E4M3_NAN_BITS = 0x7f;

const F32_448_BITS = 0x43e00000; // 1.75 * 2^8
const F32_MIN_NORMAL_BITS = 0x3c800000; // 2^-6, the smallest normal E4M3 value
const SUBNORMAL_UNITS = 512; // subnormals are multiples of 2^-9

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** x (rounded to float32 first) -> E4M3FN bit pattern, round-to-nearest-even, saturating to ±448. */
export function f32ToE4M3Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 24) & 0x80;
  const mag = bits & 0x7fffffff;
  if (mag > 0x7f800000) return E4M3_NAN_BITS;
  // Everything above 448 saturates: (448, 464] would round to 448 anyway, and beyond that lies only NaN.
  if (mag > F32_448_BITS) return sign | 0x7e;
  if (mag < F32_MIN_NORMAL_BITS) {
    // Subnormal range: the code is round(|x| / 2^-9), exact in double. A result of 8 is the smallest normal,
    // whose bit pattern is also 8, so no special case is needed.
    return sign | roundHalfEven(Math.abs(f32[0]) * SUBNORMAL_UNITS);
  }
  let exp = (mag >>> 23) - 127; // -6..8
  const frac = mag & 0x7fffff;
  let mant = frac >>> 20;
  const rest = frac & 0xfffff;
  if (rest > 0x80000 || (rest === 0x80000 && (mant & 1) === 1)) mant++;
  if (mant === 8) {
    mant = 0;
    exp++; // cannot pass 8 with mant 6: inputs above 448 were handled
  }
  return sign | ((exp + 7) << 3) | mant;
}

function decodeBits(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 3) & 0xf;
  const mant = b & 7;
  if (exp === 0xf && mant === 7) return NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (1 + mant / 8) * 2 ** (exp - 7);
}

const DECODE = Float32Array.from({ length: 256 }, (_, b) => decodeBits(b));

/** E4M3FN bit pattern (an integer 0..255) -> its exact value; 0x7F / 0xFF -> NaN. */
export function e4m3BitsToF32(b: number): number {
  if (!Number.isInteger(b) || b < 0 || b > 255) throw new QuantError(`E4M3 bit pattern ${b} is not a byte`);
  return DECODE[b]!;
}

/** The E4M3FN value nearest to x (saturating), as a number; NaN stays NaN. */
export const roundToE4M3 = (x: number): number => DECODE[f32ToE4M3Bits(x)]!;

function checkScale(scale: number): void {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new QuantError(`FP8 scale ${scale} is not a positive finite number`);
}

function checkDst(dst: ArrayLike<number>, n: number): void {
  if (dst.length !== n) throw new QuantError(`destination length ${dst.length} differs from source length ${n}`);
}

const BATCH = 4096;
const batchF32 = new Float32Array(BATCH);
const batchU32 = new Uint32Array(batchF32.buffer);

/** Quantize: dst[i] = E4M3(float32(src[i] / scale)), bit for bit what f32ToE4M3Bits gives element by element.
 *  The quotients go through a Float32Array in blocks (one float32 rounding each, as the scalar path's store does)
 *  and the normal range is encoded inline on their bits: the scalar call per element costs ~10x the work, and the
 *  FP8 compile of an 8B model encodes 8e9 of them. Subnormals, NaN and saturation take the scalar path. */
export function f32ToE4M3(src: Float32Array, scale = 1, dst: Uint8Array = new Uint8Array(src.length)): Uint8Array {
  checkScale(scale);
  checkDst(dst, src.length);
  for (let start = 0; start < src.length; start += BATCH) {
    const n = Math.min(BATCH, src.length - start);
    for (let i = 0; i < n; i++) batchF32[i] = src[start + i]! / scale;
    for (let i = 0; i < n; i++) {
      const bits = batchU32[i]!;
      const mag = bits & 0x7fffffff;
      if (mag > F32_448_BITS || mag < F32_MIN_NORMAL_BITS) {
        dst[start + i] = f32ToE4M3Bits(batchF32[i]!);
        continue;
      }
      // Round the 23-bit fraction to 3 bits, ties to even; a carry into the exponent is the right result
      // (448 is the largest value reaching here, and it rounds to itself).
      const lsb = (mag >>> 20) & 1;
      const rounded = (mag + 0x7ffff + lsb) >>> 20; // exponent and 3 mantissa bits
      dst[start + i] = ((bits >>> 24) & 0x80) | (rounded - ((127 - 7) << 3));
    }
  }
  return dst;
}

/** Dequantize: dst[i] = float32(decode(src[i]) * scale). */
export function e4m3ToF32(src: Uint8Array, scale = 1, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkScale(scale);
  checkDst(dst, src.length);
  for (let i = 0; i < src.length; i++) dst[i] = DECODE[src[i]!]! * scale;
  return dst;
}
