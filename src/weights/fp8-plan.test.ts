import { describe, expect, it } from "vitest";
import { constTensor, encodeFp8Block, f32Bytes, GroupAmax, quantTensorProblems, scaleTensor } from "./fp8-plan.ts";
import { src } from "./weight-map.ts";

describe("quantized plan tensors", () => {
  const w = (name: string, scaleGroup: string) => ({ name, dtype: "F8_E4M3" as const, expr: src(name), scaleGroup });
  it("accepts groups with members and scales (a shared scale stored beside each member)", () => {
    expect(
      quantTensorProblems([
        w("a.fc.weight", "a.fc"),
        scaleTensor("a.fc.weights_scaling_factor", "a.fc"),
        w("a.gate.weight", "a.fc"),
        scaleTensor("a.gate.weights_scaling_factor", "a.fc"),
        constTensor("s", [0.5]),
      ]),
    ).toEqual([]);
  });
  it("reports orphan scales, missing scales and bad literals", () => {
    expect(quantTensorProblems([w("x.weight", "x"), scaleTensor("y.s", "y"), constTensor("c", [NaN]), constTensor("e", [])])).toEqual([
      'tensor "c": literal values must be finite and non-empty',
      'tensor "e": literal values must be finite and non-empty',
      'scale group "y" has a scale tensor but no F8_E4M3 tensor',
      'scale group "x" has no scale tensor',
    ]);
  });
});

describe("two-pass FP8 pieces", () => {
  it("keeps max |x| per group across blocks and tensors, scale = amax / 448", () => {
    const g = new GroupAmax();
    g.add("fc", Float32Array.of(1, -3), "fc.weight");
    g.add("fc", Float32Array.of(-8.96), "gate.weight");
    g.add("proj", Float32Array.of(0, 0), "proj.weight");
    const s = g.scales();
    expect(s.get("fc")).toBe(Math.fround(Math.fround(8.96) / 448));
    expect(s.get("proj")).toBe(Math.fround(1 / 448)); // all-zero group: amax treated as 1
  });
  it("names a tensor with a non-finite value", () => {
    expect(() => new GroupAmax().add("g", Float32Array.of(1, Infinity), "l.qkv.weight")).toThrow(/"l\.qkv\.weight": non-finite value Infinity at index 1/);
  });
  it("encodes x / scale to E4M3 codes (ties to even, saturating) and F32 literals little-endian", () => {
    // scale 0.5: 0.5 -> 1 (0x38); 448 / 0.5 = 896 saturates to 0x7e; 1.0625/0.5 = 2.125 ties between 2 and 2.25 -> 2 (0x40)
    expect([...encodeFp8Block(Float32Array.of(0.5, 448, 1.0625, -0.5), 0.5)]).toEqual([0x38, 0x7e, 0x40, 0xb8]);
    expect([...f32Bytes([1])]).toEqual([0, 0, 0x80, 0x3f]);
  });
});
