// The fast elementwise kernels are bit-identical to the reference ones on equal and trailing-broadcast shapes,
// and delegate the rest (other broadcasts, integer tensors) to the reference.

import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { KERNELS } from "../kernels.ts";
import { f32, i32 } from "../tensor.ts";
import { FAST_ELEMENTWISE } from "./elementwise.ts";

const ctx = { bindings: new Map<string, number>() };
const vals = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + seed) * 4);
const shape = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 });

describe("fast elementwise kernels", () => {
  for (const op of ["add", "sub", "mul", "div"] as const)
    test.prop([shape, fc.integer({ min: 0, max: 4 }), fc.boolean(), fc.nat(100)], { numRuns: 40 })(
      `${op} equals the reference bit for bit`,
      (s, cut, leadingOne, seed) => {
        const bShape = [...(leadingOne ? [1] : []), ...s.slice(Math.min(cut, s.length - 1))];
        const n = (d: number[]) => d.reduce((a, b) => a * b, 1);
        const a = f32(s, vals(n(s), seed));
        const b = f32(bShape, vals(n(bShape), seed + 1));
        for (const ins of [
          [a, b],
          [b, a],
          [a, a],
        ]) {
          const ref = KERNELS[op](ins, {}, ctx)[0]!;
          const fast = FAST_ELEMENTWISE[op](ins, {}, ctx)[0]!;
          expect(fast.shape).toEqual(ref.shape);
          expect(Array.from(fast.data)).toEqual(Array.from(ref.data));
        }
      },
    );

  it("delegates a middle-axis broadcast and integer tensors to the reference", () => {
    const a = f32([2, 3, 4], vals(24, 1));
    const b = f32([2, 1, 4], vals(8, 2));
    expect(Array.from(FAST_ELEMENTWISE.mul([a, b], {}, ctx)[0]!.data)).toEqual(Array.from(KERNELS.mul([a, b], {}, ctx)[0]!.data));
    const n = i32([3], Int32Array.of(1, 2, 3));
    const r = FAST_ELEMENTWISE.add([n, n], {}, ctx)[0]!;
    expect(r.data).toBeInstanceOf(Int32Array);
    expect(Array.from(r.data)).toEqual([2, 4, 6]);
  });

  it("silu and the silu gated activation equal the reference bit for bit", () => {
    const x = f32([3, 10], vals(30, 3));
    expect(Array.from(FAST_ELEMENTWISE.silu([x], {}, ctx)[0]!.data)).toEqual(Array.from(KERNELS.silu([x], {}, ctx)[0]!.data));
    const g = FAST_ELEMENTWISE.gated_activation([x], { act: "silu" }, ctx)[0]!;
    expect(g.shape).toEqual([3, 5]);
    expect(Array.from(g.data)).toEqual(Array.from(KERNELS.gated_activation([x], { act: "silu" }, ctx)[0]!.data));
    const relu = FAST_ELEMENTWISE.gated_activation([x], { act: "relu" }, ctx)[0]!;
    expect(Array.from(relu.data)).toEqual(Array.from(KERNELS.gated_activation([x], { act: "relu" }, ctx)[0]!.data));
  });
});
