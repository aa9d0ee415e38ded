import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { e4m3BitsToF32, e4m3ToF32, f32ToE4M3, f32ToE4M3Bits, roundToE4M3 } from "./fp8-e4m3.ts";
import { QuantError } from "./quant-error.ts";

// Spec-level value of a code, written from the format definition (bias 7, 3 mantissa bits, 2^-9 subnormal step).
const specValue = (b: number): number => {
  const e = (b >> 3) & 15;
  const m = b & 7;
  const mag = e === 0 ? m / 512 : (8 + m) * 2 ** (e - 10);
  return b & 0x80 ? -mag : mag;
};

// Brute-force oracle: nearest finite positive code to |x| (ties to the even code), saturating, sign re-applied.
function oracle(x: number): number {
  const v = Math.fround(x);
  if (Number.isNaN(v)) return 0x7f;
  const sign = v < 0 || Object.is(v, -0) ? 0x80 : 0;
  const a = Math.abs(v);
  if (a > 448) return sign | 0x7e;
  let best = 0;
  for (let b = 1; b <= 0x7e; b++) {
    const d = Math.abs(specValue(b) - a);
    const db = Math.abs(specValue(best) - a);
    if (d < db || (d === db && (b & 1) === 0)) best = b;
  }
  return sign | best;
}

const f32FromBits = (u: number): number => new Float32Array(new Uint32Array([u]).buffer)[0]!;

describe("f32ToE4M3Bits: hand-checked values", () => {
  const cases: [string, number, number][] = [
    ["0", 0, 0x00],
    ["-0", -0, 0x80],
    ["1", 1, 0x38], // 0 0111 000
    ["-1", -1, 0xb8],
    ["0.5", 0.5, 0x30],
    ["240", 240, 0x77], // 1.875 * 2^7
    ["256", 256, 0x78],
    ["448 (max)", 448, 0x7e],
    ["449 saturates", 449, 0x7e],
    ["464 (tie 448|480) -> 448", 464, 0x7e],
    ["470: torch gives NaN, Kiln saturates", 470, 0x7e],
    ["1e9 saturates", 1e9, 0x7e],
    ["+Inf -> 448", Infinity, 0x7e],
    ["-Inf -> -448", -Infinity, 0xfe],
    ["-1e9 -> -448", -1e9, 0xfe],
    ["NaN", NaN, 0x7f],
    ["smallest subnormal 2^-9", 2 ** -9, 0x01],
    ["largest subnormal 7*2^-9", 7 * 2 ** -9, 0x07],
    ["smallest normal 2^-6", 2 ** -6, 0x08],
    ["2^-10 ties to 0", 2 ** -10, 0x00],
    ["-2^-10 ties to -0", -(2 ** -10), 0x80],
    ["just above 2^-10 rounds up", 2 ** -10 + 2 ** -30, 0x01],
    ["3*2^-10 ties to even 2*2^-9", 3 * 2 ** -10, 0x02],
    ["1.0625 ties to 1 (even mantissa 000)", 1.0625, 0x38],
    ["1.1875 ties to 1.25 (even mantissa 010)", 1.1875, 0x3a],
    ["432 ties to 448 (mantissa 110)", 432, 0x7e],
    ["15*2^-10 ties to 2^-6 (code 8 is even)", 15 * 2 ** -10, 0x08],
  ];
  it.each(cases)("%s", (_label, x, bits) => {
    expect(f32ToE4M3Bits(x)).toBe(bits);
  });
});

describe("e4m3BitsToF32", () => {
  it("decodes the landmarks", () => {
    expect(e4m3BitsToF32(0x7e)).toBe(448);
    expect(e4m3BitsToF32(0xfe)).toBe(-448);
    expect(e4m3BitsToF32(0x01)).toBe(2 ** -9);
    expect(e4m3BitsToF32(0x38)).toBe(1);
    expect(Object.is(e4m3BitsToF32(0x80), -0)).toBe(true);
    expect(e4m3BitsToF32(0x7f)).toBeNaN();
    expect(e4m3BitsToF32(0xff)).toBeNaN();
  });

  it("matches the format definition for every byte", () => {
    for (let b = 0; b < 256; b++) {
      if ((b & 0x7f) === 0x7f) continue;
      expect(e4m3BitsToF32(b)).toBe(specValue(b));
    }
  });

  it("rejects non-bytes", () => {
    expect(() => e4m3BitsToF32(256)).toThrow(QuantError);
    expect(() => e4m3BitsToF32(1.5)).toThrow(QuantError);
  });
});

describe("round trips and the oracle", () => {
  it("decode -> encode is the identity on all 254 non-NaN patterns", () => {
    for (let b = 0; b < 256; b++) {
      if ((b & 0x7f) === 0x7f) continue;
      expect(f32ToE4M3Bits(e4m3BitsToF32(b))).toBe(b);
    }
  });

  it("every midpoint between neighbouring codes goes to the even code", () => {
    for (let b = 0; b < 0x7e; b++) {
      const mid = (specValue(b) + specValue(b + 1)) / 2;
      const even = b % 2 === 0 ? b : b + 1;
      expect(f32ToE4M3Bits(mid)).toBe(even);
      expect(f32ToE4M3Bits(-mid)).toBe(0x80 | even);
    }
  });

  it("agrees with the brute-force oracle on arbitrary float32 bit patterns", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (u) => f32ToE4M3Bits(f32FromBits(u)) === oracle(f32FromBits(u))),
      { numRuns: 3000 },
    );
  });

  it("agrees with the oracle inside the E4M3 range", () => {
    fc.assert(
      fc.property(fc.float({ min: -500, max: 500, noNaN: true }), (x) => f32ToE4M3Bits(x) === oracle(x)),
      { numRuns: 3000 },
    );
  });

  it("roundToE4M3 is idempotent and never farther than half a step", () => {
    fc.assert(
      fc.property(fc.float({ min: -448, max: 448, noNaN: true }), (x) => {
        const r = roundToE4M3(x);
        const step = Math.abs(r) < 2 ** -6 ? 2 ** -9 : 2 ** (Math.floor(Math.log2(Math.max(Math.abs(x), 2 ** -6))) - 3);
        return roundToE4M3(r) === r && Math.abs(r - Math.fround(x)) <= step / 2;
      }),
    );
  });
});

describe("array versions", () => {
  it("f32ToE4M3 divides by the scale before rounding", () => {
    const q = f32ToE4M3(new Float32Array([896, -2, 1000, 0]), 2);
    expect([...q]).toEqual([0x7e, 0xb8, 0x7e, 0x00]);
  });

  it("e4m3ToF32 multiplies by the scale", () => {
    const x = e4m3ToF32(new Uint8Array([0x7e, 0xb8, 0x01]), 0.5);
    expect([...x]).toEqual([224, -0.5, 2 ** -10]);
  });

  it("writes into a given destination and checks its length", () => {
    const dst = new Uint8Array(2);
    expect(f32ToE4M3(new Float32Array([1, -1]), 1, dst)).toBe(dst);
    expect([...dst]).toEqual([0x38, 0xb8]);
    expect(() => f32ToE4M3(new Float32Array(3), 1, dst)).toThrow(/destination length 2/);
  });

  it("the block encoder equals the scalar one bit for bit, over every float32 exponent and across blocks", () => {
    // Random bit patterns cover every exponent (subnormal, normal, saturating, Inf, NaN), both signs and the ties of
    // the 3-bit rounding; 10007 elements span several 4096-element blocks and a ragged tail.
    const bits = new Uint32Array(10007);
    let seed = 12345;
    for (let i = 0; i < bits.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const tie = i % 5 === 0 ? (seed & ~0xfffff) | 0x80000 : seed; // exactly halfway between two E4M3 codes
      bits[i] = i % 3 === 0 ? (tie & 0x807fffff) | ((0x70 + (i % 32)) << 23) : tie; // bias towards E4M3's range
    }
    const src = new Float32Array(bits.buffer);
    for (const scale of [1, 0.37, 3e-3]) {
      const fast = f32ToE4M3(src, scale);
      const slow = Uint8Array.from(src, (x) => f32ToE4M3Bits(x / scale));
      expect(fast).toEqual(slow);
    }
  });

  it("rejects a zero, negative or non-finite scale", () => {
    for (const s of [0, -1, NaN, Infinity]) {
      expect(() => f32ToE4M3(new Float32Array(1), s)).toThrow(QuantError);
      expect(() => e4m3ToF32(new Uint8Array(1), s)).toThrow(QuantError);
    }
  });
});
