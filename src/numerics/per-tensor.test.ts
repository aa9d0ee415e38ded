import { describe, expect, it } from "vitest";
import { AbsMaxObserver, absMax, fakeQuantFp8, fakeQuantInt8PerTensor, fp8WeightScale, kvCacheScale, quantizeFp8PerTensor } from "./per-tensor.ts";
import { QuantError } from "./quant-error.ts";

const f32 = (xs: number[]): Float32Array => new Float32Array(xs);

describe("scales", () => {
  it("fp8WeightScale is amax / 448 in float32", () => {
    expect(fp8WeightScale(448)).toBe(1);
    expect(fp8WeightScale(896)).toBe(2);
    expect(fp8WeightScale(1)).toBe(Math.fround(1 / 448));
  });

  it("treats a zero (or denormal) amax as 1, like ModelOpt, so the scale stays positive", () => {
    expect(fp8WeightScale(0)).toBe(Math.fround(1 / 448));
    expect(fp8WeightScale(2 ** -25)).toBe(Math.fround(1 / 448));
    expect(kvCacheScale("int8", 0)).toBe(Math.fround(1 / 127));
  });

  it("kvCacheScale divides by 127 for int8 and 448 for fp8", () => {
    expect(kvCacheScale("int8", 127)).toBe(1);
    expect(kvCacheScale("int8", 12.7)).toBe(Math.fround(12.7 / 127));
    expect(kvCacheScale("fp8", 896)).toBe(2);
  });

  it("rejects a negative or non-finite amax", () => {
    for (const a of [-1, NaN, Infinity]) expect(() => fp8WeightScale(a)).toThrow(QuantError);
  });
});

describe("absMax", () => {
  it("finds max |x| and names a non-finite element", () => {
    expect(absMax(f32([1, -3, 2]))).toBe(3);
    expect(absMax(f32([]))).toBe(0);
    expect(() => absMax(f32([0, Infinity]), "x")).toThrow(/tensor "x": non-finite value Infinity at index 1/);
  });
});

describe("quantizeFp8PerTensor", () => {
  it("scales by amax / 448 and encodes E4M3", () => {
    const { q, scale } = quantizeFp8PerTensor(f32([0, 896, -896, 1, 2.125]));
    expect(scale).toBe(2);
    // 1 / 2 = 0.5 -> 0x30; 2.125 / 2 = 1.0625 ties to 1 -> 0x38
    expect([...q]).toEqual([0x00, 0x7e, 0xfe, 0x30, 0x38]);
  });

  it("quantizes an all-zero tensor to zeros with a positive scale", () => {
    const { q, scale } = quantizeFp8PerTensor(f32([0, -0, 0]));
    expect([...q]).toEqual([0x00, 0x80, 0x00]);
    expect(scale).toBeGreaterThan(0);
  });

  it("rejects NaN weights with the tensor name", () => {
    expect(() => quantizeFp8PerTensor(f32([NaN]), "attention.dense.weight")).toThrow(/attention\.dense\.weight/);
  });
});

describe("fakeQuantFp8", () => {
  it("rounds to E4M3 in scaled units and saturates at 448 * scale", () => {
    const y = fakeQuantFp8(f32([1.0625, 1000, -1000, 3 * 2 ** -10, 0.1]), 1);
    expect([...y]).toEqual([1, 448, -448, 2 ** -8, 0.1015625]);
    expect([...fakeQuantFp8(f32([2000]), 4)]).toEqual([1792]);
  });

  it("keeps NaN as NaN", () => {
    expect(fakeQuantFp8(f32([NaN]), 1)[0]).toBeNaN();
  });
});

describe("fakeQuantInt8PerTensor (INT8 KV cache)", () => {
  it("rounds ties to even, saturates to [-128, 127], maps NaN to 0", () => {
    const y = fakeQuantInt8PerTensor(f32([2.5, 3.5, -2.5, 200, -200, NaN, 0.4]), 1);
    expect([...y]).toEqual([2, 4, -2, 127, -128, 0, 0]);
    expect([...fakeQuantInt8PerTensor(f32([1, 0.74]), 0.5)]).toEqual([1, 0.5]);
  });

  it("rejects a bad scale or destination", () => {
    expect(() => fakeQuantInt8PerTensor(f32([1]), 0)).toThrow(QuantError);
    expect(() => fakeQuantInt8PerTensor(f32([1]), 1, new Float32Array(2))).toThrow(/destination length/);
  });
});

describe("AbsMaxObserver", () => {
  it("tracks the running amax and the number of values seen", () => {
    const obs = new AbsMaxObserver("layers.0.attention.kv");
    expect([obs.amax, obs.count]).toEqual([0, 0]);
    obs.update(f32([1, -3]));
    obs.update(f32([2]));
    obs.update(f32([]));
    expect([obs.amax, obs.count]).toEqual([3, 3]);
  });

  it("rejects a non-finite value, naming the observer, index and batch", () => {
    const obs = new AbsMaxObserver("kv");
    obs.update(f32([1]));
    expect(() => obs.update(f32([0, NaN]))).toThrow(/calibration of "kv": non-finite value NaN at index 1 of batch 1/);
    expect(obs.count).toBe(1);
  });
});
