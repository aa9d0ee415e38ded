import { describe, expect, it } from "vitest";
import { roundHalfAwayFromZero, roundHalfEven } from "./rounding.ts";

describe("rounding modes", () => {
  it("half away from zero (C round) vs half to even (torch.round)", () => {
    const xs = [0.5, 1.5, 2.5, -0.5, -2.5, 2.4999, -3.5];
    expect(xs.map(roundHalfAwayFromZero)).toEqual([1, 2, 3, -1, -3, 2, -4]);
    expect(xs.map(roundHalfEven)).toEqual([0, 2, 2, 0, -2, 2, -4]);
  });

  it("handles negative ties, large integers and the sign of zero", () => {
    expect(roundHalfEven(-1.5)).toBe(-2);
    expect(roundHalfEven(-0.4) === 0).toBe(true); // sign of a zero result is not specified
    expect(roundHalfEven(2 ** 53 + 2)).toBe(2 ** 53 + 2);
    expect(roundHalfEven(4503599627370495.5)).toBe(4503599627370496); // 2^52 - 0.5 ties to even 2^52
    expect(Object.is(roundHalfAwayFromZero(-0), -0)).toBe(true);
    expect(roundHalfAwayFromZero(-0.49)).toBe(-0);
  });
});
