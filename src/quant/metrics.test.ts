import { describe, expect, it } from "vitest";
import { klRow, quantAccuracy } from "./metrics.ts";

const f = (...v: number[]) => Float32Array.from(v);

describe("klRow", () => {
  it("matches a hand-computed value: p = (1/2, 1/2), q = (3/4, 1/4)", () => {
    // KL = 1/2 ln((1/2)/(3/4)) + 1/2 ln((1/2)/(1/4)) = 1/2 ln(4/3)
    expect(klRow([0, 0], [Math.log(3), 0])).toBeCloseTo(0.5 * Math.log(4 / 3), 12);
  });
  it("is 0 for identical rows and for rows that differ by a constant (same softmax)", () => {
    expect(klRow([1, 2, 3], [1, 2, 3])).toBe(0);
    expect(klRow([1, 2, 3], [11, 12, 13])).toBeLessThan(1e-15);
  });
  it("stays finite for large logits (max subtracted)", () => {
    expect(klRow([1000, 0], [0, 1000])).toBeCloseTo(1000, 6);
  });
});

describe("quantAccuracy", () => {
  it("pools relative error, top-1 agreement and KL over positions of all prompts", () => {
    const ref1 = f(0, 0, 2, 1); // positions: [0, 0], [2, 1]
    const q1 = f(Math.log(3), 0, 1, 2); // argmax: 0 vs 0 (tie picks the first), 1 vs 0
    const ref2 = f(3, 4);
    const a = quantAccuracy(
      [
        [ref1, q1],
        [ref2, ref2],
      ],
      2,
    );
    expect(a.positions).toBe(3);
    expect(a.top1Agreement).toBeCloseTo(2 / 3, 12);
    const num = Math.log(3) ** 2 + 0 + 1 + 1;
    const den = 0 + 0 + 4 + 1 + 9 + 16;
    expect(a.relLogitError).toBeCloseTo(Math.sqrt(num / den), 6);
    const kl2 = klRow([2, 1], [1, 2]); // (e-1)/(e+1) * 1 ... computed by klRow, checked by hand below
    expect(kl2).toBeCloseTo(((Math.E - 1) / (Math.E + 1)) * 1, 12);
    expect(a.klDivergence).toBeCloseTo((0.5 * Math.log(4 / 3) + kl2 + 0) / 3, 6);
  });
  it("rejects mismatched logits and empty input", () => {
    expect(() => quantAccuracy([[f(1, 2), f(1)]], 2)).toThrow(/do not form matching \[T, 2\] rows/);
    expect(() => quantAccuracy([], 2)).toThrow(/no positions/);
  });
});
