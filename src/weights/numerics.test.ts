// numerics.ts: the Inf/NaN count of every float dtype at any alignment, overflow/underflow of narrowing casts, and
// the native helper's count in C (native/copy_ranges.c) on the bytes it moves, on each of its paths.

import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { castFloats, type FloatDtype } from "./float-cast.ts";
import { f32ToBf16, f32ToF16 } from "./half.ts";
import { rangeCopier } from "./copy-ranges.ts";
import { castLosses, countNonFinite, countNonFiniteJs, NumericsTally } from "./numerics.ts";

const dir = mkdtempSync(join(tmpdir(), "kiln-numerics-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `values` encoded as `dtype` bytes. */
function encode(values: number[], dtype: FloatDtype): Uint8Array {
  const f = Float32Array.from(values);
  if (dtype === "F32") return new Uint8Array(f.buffer);
  const u = new Uint16Array(values.length);
  (dtype === "F16" ? f32ToF16 : f32ToBf16)(f, u);
  return new Uint8Array(u.buffer);
}

const planted = (n: number, bad: Record<number, number>) => Array.from({ length: n }, (_, i) => bad[i] ?? Math.sin(i) * 100);

describe("countNonFinite", () => {
  for (const dtype of ["F32", "F16", "BF16"] as FloatDtype[])
    for (const offset of [0, 2, 4])
      it(`${dtype} at byte offset ${offset}`, () => {
        const values = planted(1001, { 0: Number.NaN, 7: Number.POSITIVE_INFINITY, 500: Number.NEGATIVE_INFINITY, 1000: Number.NaN });
        const bytes = encode(values, dtype);
        if (dtype === "F32" && offset % 4) return;
        const buf = new ArrayBuffer(bytes.length + offset);
        new Uint8Array(buf, offset).set(bytes);
        expect(countNonFinite(buf, offset, values.length, dtype)).toBe(4);
        expect(countNonFiniteJs(buf, offset, values.length, dtype)).toBe(4);
        for (const n of [1000, 1001]) expect(countNonFiniteJs(encode(planted(1001, { 1000: Number.NaN }), dtype).buffer, 0, n, dtype)).toBe(n - 1000);
        expect(countNonFinite(encode(planted(1001, {}), dtype).buffer, 0, 1001, dtype)).toBe(0);
        expect(countNonFinite(encode(planted(1001, { 1000: Number.NaN }), dtype).buffer, 0, 1001, dtype)).toBe(1); // in the odd tail
        expect(countNonFinite(encode(planted(1001, { 998: -Number.POSITIVE_INFINITY }), dtype).buffer, 0, 1001, dtype)).toBe(1); // high lane of the last word
      });
});

describe("castLosses", () => {
  it("F32 -> F16: overflow of finite values, underflow of non-zero ones, source NaN is neither", () => {
    const src = Float32Array.from([70000, -1e6, 1e-9, 0, Number.NaN, 1.5, 65504]);
    const dst = new Uint16Array(src.length);
    castFloats("F32", "F16", src.buffer, 0, dst.buffer, 0, src.length);
    expect(castLosses(src.buffer, 0, "F32", dst.buffer, 0, "F16", src.length)).toEqual({ overflow: 2, underflow: 1 });
    const bf = new Uint16Array(src.length);
    castFloats("F32", "BF16", src.buffer, 0, bf.buffer, 0, src.length);
    expect(castLosses(src.buffer, 0, "F32", bf.buffer, 0, "BF16", src.length)).toEqual({ overflow: 0, underflow: 0 });
  });

  it("a tally turns counts into one error naming each tensor, and --allow-nonfinite lets it pass", () => {
    const t = new NumericsTally();
    t.add("a", { nonFinite: 2, overflow: 2 }, { from: "F32", to: "F16" });
    t.add("b", { nonFinite: 1 });
    t.add("c", { underflow: 3 }, { from: "F32", to: "F16" });
    expect(() => t.check(false, "out")).toThrow(
      /out: 2 tensors would hold non-finite weights: tensor "a": 2 values overflow to Inf in the cast from F32 to F16; tensor "b": 1 non-finite value \(Inf\/NaN\) in the source/,
    );
    expect(() => t.check(true, "out")).not.toThrow();
    expect(t.warnings()).toEqual(['tensor "c": 3 non-zero values underflow to zero in the cast from F32 to F16']);
  });
});

describe.skipIf(!rangeCopier())("the native helper's count", () => {
  for (const kernel of [true, false])
    for (const map of [false, true])
      for (const from of ["F32", "BF16"] as const)
        it(`${from} kernel=${kernel} map=${map}`, async () => {
          const copier = rangeCopier()!;
          const values = planted(300_000, { 3: Number.NaN, 299999: Number.POSITIVE_INFINITY, 150000: Number.NaN });
          const bytes = encode(values, from);
          const srcPath = join(dir, `src-${from}-${kernel}-${map}`);
          const dstPath = `${srcPath}.out`;
          writeFileSync(srcPath, bytes);
          writeFileSync(dstPath, "");
          const [s, d] = [openSync(srcPath, "r"), openSync(dstPath, "r+")];
          try {
            const mapped = map && copier.preallocate(d, bytes.length);
            const n = await copier.copy(d, 0, Float64Array.from([s, 0, 0, bytes.length]), { kernel, map: mapped, scan: from });
            expect(n).toBe(3);
            expect(readFileSync(dstPath).equals(Buffer.from(bytes))).toBe(true);
            expect(await copier.copy(d, 0, Float64Array.from([s, 16, 0, 64]), { kernel, map: mapped })).toBe(0); // no scan: 0
          } finally {
            closeSync(s);
            closeSync(d);
          }
        });
});
