// float-cast.ts: every 16-bit pattern (NaNs included) casts exactly as half.ts's array functions do, on both
// the aligned two-per-word path and the unaligned path, on this thread and on cast workers (in place too, many
// jobs in flight); F32 casts and same-dtype copies keep bits.

import { describe, expect, test } from "vitest";
import { castFloats, castsOnWorkers, CastWorkerError, CastWorkers, type FloatDtype } from "./float-cast.ts";
import { bf16ToF16, bf16ToF32, f16ToBf16, f16ToF32, f32ToBf16, f32ToF16 } from "./half.ts";

const ALL_HALVES = Uint16Array.from({ length: 65536 }, (_, i) => i);

/** Index of the first differing 16-bit element, or -1 (fast on 65 536 elements, where toEqual is not). */
function firstDifference(a: Uint16Array, b: Uint16Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  return a.findIndex((x, i) => x !== b[i]);
}

/** Runs castFloats with source and destination placed `offset` bytes into fresh buffers. */
function cast(from: FloatDtype, to: FloatDtype, src: Uint16Array | Float32Array, offset: number): ArrayBuffer {
  const n = src.length;
  const inBuf = new ArrayBuffer(offset + src.byteLength);
  new Uint8Array(inBuf, offset).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  const outBuf = new ArrayBuffer(offset + n * (to === "F32" ? 4 : 2));
  castFloats(from, to, inBuf, offset, outBuf, offset, n);
  return outBuf.slice(offset);
}

describe("castFloats", () => {
  for (const offset of [0, 2]) {
    test(`BF16 <-> F16 over all 65 536 patterns, byte offset ${offset}`, () => {
      expect(firstDifference(new Uint16Array(cast("BF16", "F16", ALL_HALVES, offset)), bf16ToF16(ALL_HALVES))).toBe(-1);
      expect(firstDifference(new Uint16Array(cast("F16", "BF16", ALL_HALVES, offset)), f16ToBf16(ALL_HALVES))).toBe(-1);
    });
  }

  test("odd lengths finish the element the word loop leaves", () => {
    const three = Uint16Array.of(0x3f80, 0x3300, 0x33c0);
    expect([...new Uint16Array(cast("BF16", "F16", three, 0))]).toEqual([0x3c00, 0x0000, 0x0002]);
  });

  test("widening and narrowing through F32 match half.ts", () => {
    const halves = ALL_HALVES.subarray(0, 4096 * 3);
    expect(new Uint32Array(cast("F16", "F32", halves, 0))).toEqual(new Uint32Array(f16ToF32(halves).buffer));
    expect(new Uint32Array(cast("BF16", "F32", halves, 0))).toEqual(new Uint32Array(bf16ToF32(halves).buffer));
    const floats = Float32Array.of(1 + 2 ** -8, 65520, -0, 3.14159, 1e-8);
    expect(new Uint16Array(cast("F32", "F16", floats, 0))).toEqual(f32ToF16(floats));
    expect(new Uint16Array(cast("F32", "BF16", floats, 0))).toEqual(f32ToBf16(floats));
  });

  test("same-dtype casts copy bits, NaN payloads included", () => {
    const nans = new Float32Array(new Uint32Array([0x7fa00001, 0xffc00abc, 0x3f800000]).buffer);
    expect(new Uint32Array(cast("F32", "F32", nans, 0))).toEqual(new Uint32Array([0x7fa00001, 0xffc00abc, 0x3f800000]));
    expect(new Uint16Array(cast("BF16", "BF16", Uint16Array.of(0x7f81, 0xffff), 2))).toEqual(Uint16Array.of(0x7f81, 0xffff));
  });
});

describe("CastWorkers", () => {
  /** `data` copied into a fresh SharedArrayBuffer `offset` bytes in, with room for the output after it. */
  function shared(data: Uint16Array, offset: number): SharedArrayBuffer {
    const buf = new SharedArrayBuffer(offset + data.byteLength);
    new Uint16Array(buf, offset, data.length).set(data);
    return buf;
  }

  test("give castFloats' bits on all 65 536 patterns, both directions, aligned, unaligned and in place", async () => {
    const workers = new CastWorkers(2);
    try {
      for (const [from, to, want] of [
        ["BF16", "F16", bf16ToF16(ALL_HALVES)],
        ["F16", "BF16", f16ToBf16(ALL_HALVES)],
      ] as const) {
        for (const offset of [0, 2]) {
          const src = shared(ALL_HALVES, offset);
          const dst = new SharedArrayBuffer(offset + ALL_HALVES.byteLength);
          await workers.cast(from, to, src, offset, dst, offset, ALL_HALVES.length);
          expect(firstDifference(new Uint16Array(dst, offset), want), `${from}>${to} offset ${offset}`).toBe(-1);
          await workers.cast(from, to, src, offset, src, offset, ALL_HALVES.length); // in place
          expect(firstDifference(new Uint16Array(src, offset), want), `${from}>${to} in place, offset ${offset}`).toBe(-1);
        }
      }
    } finally {
      await workers.close();
    }
  });

  test("many jobs in flight at once each land in their own buffer", async () => {
    const workers = new CastWorkers(2);
    try {
      const jobs = Array.from({ length: 40 }, (_, j) => {
        const data = ALL_HALVES.subarray(j * 1000, j * 1000 + 1001 + j); // odd lengths too
        const buf = shared(data, 0);
        return { data, buf, done: workers.cast("BF16", "F16", buf, 0, buf, 0, data.length) };
      });
      await Promise.all(jobs.map((j) => j.done));
      for (const j of jobs) expect(firstDifference(new Uint16Array(j.buf), bf16ToF16(j.data))).toBe(-1);
    } finally {
      await workers.close();
    }
  });

  test("casts that do not run on workers, and casts after close(), are rejected", async () => {
    const workers = new CastWorkers(1);
    const buf = new SharedArrayBuffer(16);
    expect(castsOnWorkers("F32", "F16")).toBe(false);
    expect(castsOnWorkers("BF16", "F16")).toBe(true);
    await expect(workers.cast("F32", "F16", buf, 0, buf, 8, 2)).rejects.toThrow(/cast F32>F16 does not run on workers/);
    await workers.close();
    await expect(workers.cast("BF16", "F16", buf, 0, buf, 0, 4)).rejects.toThrow(CastWorkerError);
  });
});
