// half.ts against the @petamoriken/float16 oracle (f16) and an independent value-based reference (bf16):
// exhaustive over all 65 536 half patterns, random f32 bit patterns, hand-picked ties and edges, and properties.

import { fc, test as fcTest } from "@fast-check/vitest";
import { getFloat16, setFloat16 } from "@petamoriken/float16";
import { describe, expect, test } from "vitest";
import {
  bf16BitsToF32,
  bf16ToF16,
  bf16ToF32,
  f16BitsToF32,
  f16ToBf16,
  f16ToF32,
  f32ToBf16,
  f32ToBf16Bits,
  f32ToF16,
  f32ToF16Bits,
  roundToBf16,
  roundToF16,
} from "./half.ts";

const dv = new DataView(new ArrayBuffer(4));
const oracleF16Bits = (x: number): number => {
  setFloat16(dv, 0, x, true);
  return dv.getUint16(0, true);
};
const oracleF16Value = (h: number): number => {
  dv.setUint16(0, h, true);
  return getFloat16(dv, 0, true);
};

const f32OfBits = (u: number): number => new Float32Array(new Uint32Array([u]).buffer)[0]!;
const bitsOfF32 = (x: number): number => new Uint32Array(new Float32Array([x]).buffer)[0]!;
/** Index of the first difference (or -1): much faster than toEqual on 64k-element arrays. */
const firstDiff = (a: Uint16Array, b: Uint16Array): number => (a.length !== b.length ? 0 : a.findIndex((x, i) => x !== b[i]));
const isNanF16 = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isNanBf16 = (h: number): boolean => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0;

/** bf16 rounding by comparing the two neighbouring bf16 values numerically (no bit tricks shared with half.ts). */
function referenceBf16Bits(x: number): number {
  const u = bitsOfF32(x);
  if (Number.isNaN(x)) return 0x7fc0;
  const lo = u >>> 16;
  if ((u & 0xffff) === 0) return lo;
  const hi = lo + 1;
  const vLo = f32OfBits(lo << 16);
  const vHi = (hi & 0x7fff) === 0x7f80 ? Math.sign(x) * 2 ** 128 : f32OfBits(hi << 16); // Inf neighbour as 2^128
  const dLo = Math.abs(x - vLo);
  const dHi = Math.abs(vHi - x);
  if (dLo !== dHi) return dLo < dHi ? lo : hi;
  return (lo & 1) === 0 ? lo : hi;
}

/** Random f32 bit patterns spread over every exponent, plus their values. */
function randomF32(n: number, seed: number): Float32Array {
  const bits = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0; // LCG: deterministic across runs
    bits[i] = s ^ (Math.imul(s, 0x9e3779b1) >>> 13);
  }
  return new Float32Array(bits.buffer);
}

describe("f16", () => {
  test("f16 -> f32 matches the oracle for all 65536 patterns", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = f16ToF32(all);
    let mismatches = 0;
    for (let h = 0; h < 65536; h++) {
      const want = oracleF16Value(h);
      if (!Object.is(out[h], want) && !(Number.isNaN(want) && Number.isNaN(out[h]))) mismatches++;
      if (!Object.is(f16BitsToF32(h), out[h]) && !Number.isNaN(out[h])) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  test("f16 -> f32 -> f16 is the identity on all patterns, NaN payloads included", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    expect(
      firstDiff(
        f32ToF16(f16ToF32(all)),
        all.map((h) => (isNanF16(h) ? h | 0x200 : h)),
      ),
    ).toBe(-1);
  });

  test("f32 -> f16 matches the oracle on 300k random bit patterns", () => {
    const src = randomF32(300_000, 42);
    const got = f32ToF16(src);
    let mismatches = 0;
    for (let i = 0; i < src.length; i++) {
      const want = oracleF16Bits(src[i]!);
      const ok = Number.isNaN(src[i]) ? isNanF16(got[i]!) : got[i] === want;
      if (!ok || f32ToF16Bits(src[i]!) !== got[i]) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  test.each([
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519.99609375, 0x7bff], // largest f32 below the midpoint
    [65520, 0x7c00], // midpoint between 65504 and 65536 ties to even = Inf
    [-65520, 0xfc00],
    [1e9, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 2^-24 goes to even 0
    [-(2 ** -25), 0x8000],
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between subnormals 1 and 2 goes to 2
    [5 * 2 ** -25, 0x0002], // tie between 2 and 3 goes to 2
    [2 ** -14 - 2 ** -25, 0x0400], // tie between largest subnormal 0x3ff and 0x400 carries into the exponent
    [1 + 2 ** -11, 0x3c00], // tie goes down to even mantissa
    [1 + 3 * 2 ** -11, 0x3c02], // tie goes up to even mantissa
    [1e-10, 0x0000],
    [f32OfBits(1), 0x0000], // f32 subnormal
  ])("f32ToF16Bits(%s) = %i", (x, bits) => {
    expect(f32ToF16Bits(x)).toBe(bits);
    expect(oracleF16Bits(x)).toBe(bits); // the table itself is right
  });

  test("NaN narrows to a quiet NaN of the same sign, never to Inf", () => {
    for (const u of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0x7f802000]) {
      const h = f32ToF16(new Float32Array(new Uint32Array([u]).buffer))[0]!;
      expect(isNanF16(h)).toBe(true);
      expect(h & 0x200).toBe(0x200);
      expect(h >>> 15).toBe(u >>> 31);
    }
    expect(isNanF16(f32ToF16Bits(Number.NaN))).toBe(true);
    expect(roundToF16(Number.NaN)).toBeNaN();
  });

  fcTest.prop([fc.float()])("roundToF16 agrees with the oracle's f16round path", (x) => {
    const want = oracleF16Value(oracleF16Bits(x));
    const got = roundToF16(x);
    expect(Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want)).toBe(true);
  });

  fcTest.prop([fc.float({ noNaN: true }), fc.float({ noNaN: true })])("rounding to f16 is monotone", (a, b) => {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    expect(roundToF16(lo)).toBeLessThanOrEqual(roundToF16(hi));
  });
});

describe("bf16", () => {
  test("bf16 -> f32 -> bf16 is the identity on all 65536 patterns, with quiet NaNs", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const wide = bf16ToF32(all);
    for (const h of [0x3f80, 0xbf80, 0x7f80, 0xff80, 0x0001, 0x8000]) expect(Object.is(wide[h], bf16BitsToF32(h))).toBe(true);
    expect(wide[0x3f80]).toBe(1);
    expect(wide[0xc040]).toBe(-3);
    expect(
      firstDiff(
        f32ToBf16(wide),
        all.map((h) => (isNanBf16(h) ? h | 0x40 : h)),
      ),
    ).toBe(-1);
  });

  test("f32 -> bf16 matches a value-based reference on 300k random bit patterns", () => {
    const src = randomF32(300_000, 7);
    const got = f32ToBf16(src);
    let mismatches = 0;
    for (let i = 0; i < src.length; i++) {
      const want = referenceBf16Bits(src[i]!);
      const ok = Number.isNaN(src[i]) ? isNanBf16(got[i]!) : got[i] === want;
      if (!ok || f32ToBf16Bits(src[i]!) !== got[i]) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  test.each([
    [1, 0x3f80],
    [-0, 0x8000],
    [1 + 2 ** -8, 0x3f80], // tie to even (down)
    [1 + 3 * 2 ** -8, 0x3f82], // tie to even (up)
    [f32OfBits(0x7f7fffff), 0x7f80], // max f32 rounds up to Inf
    [f32OfBits(0x7f7f7fff), 0x7f7f], // just below the midpoint stays finite
    [-Infinity, 0xff80],
    [f32OfBits(0x00000001), 0x0000], // f32 subnormal rounds to +0
    [f32OfBits(0x00008000), 0x0000], // tie to even 0
    [f32OfBits(0x00018000), 0x0002], // tie to even 2
  ])("f32ToBf16Bits(%s) = %i", (x, bits) => {
    expect(f32ToBf16Bits(x)).toBe(bits);
    expect(referenceBf16Bits(x)).toBe(bits);
  });

  test("signalling NaN stays NaN", () => {
    const h = f32ToBf16(new Float32Array(new Uint32Array([0xff800001]).buffer))[0]!;
    expect(h).toBe(0xffc0);
    expect(roundToBf16(Number.NaN)).toBeNaN();
  });

  fcTest.prop([fc.float({ noNaN: true })])("roundToBf16 is idempotent and the nearest bf16", (x) => {
    const r = roundToBf16(x);
    expect(Object.is(roundToBf16(r), r)).toBe(true);
    expect(Object.is(r, bf16BitsToF32(referenceBf16Bits(x)))).toBe(true);
  });
});

describe("f16 <-> bf16", () => {
  test("direct conversions equal the two-step path through f32 for all patterns", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    expect(firstDiff(f16ToBf16(all), f32ToBf16(f16ToF32(all)))).toBe(-1);
    expect(firstDiff(bf16ToF16(all), f32ToF16(bf16ToF32(all)))).toBe(-1);
  });

  test("known values", () => {
    // f16 0x3c01 = 1 + 2^-10 is below bf16 resolution and rounds to 1; 65504 rounds up to 65536 in bf16.
    expect([...f16ToBf16(new Uint16Array([0x3c01, 0x7bff, 0x0001, 0x7c00]))]).toEqual([0x3f80, 0x4780, 0x3380, 0x7f80]);
    // bf16 1e38-ish overflows f16; bf16 2^-24 is the smallest f16 subnormal.
    expect([...bf16ToF16(new Uint16Array([0x7e96, 0x3380, 0xbf80]))]).toEqual([0x7c00, 0x0001, 0xbc00]);
  });
});

describe("dst handling", () => {
  test("writes into a provided destination and returns it", () => {
    const dst = new Float32Array(2);
    expect(f16ToF32(new Uint16Array([0x3c00, 0xc000]), dst)).toBe(dst);
    expect([...dst]).toEqual([1, -2]);
    const sub = new Uint16Array(4).subarray(1, 3);
    f32ToBf16(new Float32Array([1, -3]), sub);
    expect([...sub]).toEqual([0x3f80, 0xc040]);
  });

  test("rejects a destination of the wrong length", () => {
    expect(() => f32ToF16(new Float32Array(3), new Uint16Array(2))).toThrow(/f32ToF16: dst has 2 elements, src has 3/);
  });
});
