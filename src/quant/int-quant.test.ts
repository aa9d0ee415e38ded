import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  dequantizePerChannel,
  fakeQuantInt4PerChannel,
  fakeQuantInt8PerChannel,
  packInt4,
  quantizeInt4PerChannel,
  quantizeInt8PerChannel,
  unpackInt4,
} from "./int-quant.ts";
import { QuantError } from "../numerics/quant-error.ts";

const f32 = (xs: number[]): Float32Array => new Float32Array(xs);

describe("quantizeInt8PerChannel", () => {
  it("uses scale = amax / 128, so +amax saturates to 127 and -amax reaches -128", () => {
    const { q, scales } = quantizeInt8PerChannel(f32([1, -0.5, 0.25, -1]), 1, 4);
    expect(scales[0]).toBe(1 / 128);
    expect([...q]).toEqual([127, -64, 32, -128]);
  });

  it("breaks ties away from zero, like TensorRT-LLM's C round()", () => {
    // amax 128 makes the scale exactly 1, so w / scale = w.
    const { q } = quantizeInt8PerChannel(f32([128, 2.5, -2.5, 0.5, -0.5, 1.5, 127.5]), 1, 7);
    expect([...q]).toEqual([127, 3, -3, 1, -1, 2, 127]);
  });

  it("gives each row (output channel) its own scale", () => {
    const { q, scales } = quantizeInt8PerChannel(f32([64, -32, 0.5, 0.25]), 2, 2);
    expect([...scales]).toEqual([0.5, 0.5 / 128]);
    expect([...q]).toEqual([127, -64, 127, 64]);
  });

  it("maps an all-zero row to scale 0 and codes 0, and fake-quantizes it to zeros without NaN", () => {
    const w = f32([0, 0, 0, 3, -3, 1.5]);
    const { q, scales } = quantizeInt8PerChannel(w, 2, 3);
    expect(scales[0]).toBe(0);
    expect([...q.subarray(0, 3)]).toEqual([0, 0, 0]);
    expect([...fakeQuantInt8PerChannel(w, 2, 3).subarray(0, 3)]).toEqual([0, 0, 0]);
  });

  it("rejects NaN and Inf weights, naming the tensor and position", () => {
    expect(() => quantizeInt8PerChannel(f32([1, 2, NaN, 4]), 2, 2, "mlp.fc.weight")).toThrow(/tensor "mlp\.fc\.weight": non-finite weight NaN at \[1, 0\]/);
    expect(() => quantizeInt4PerChannel(f32([1, -Infinity]), 1, 2)).toThrow(QuantError);
  });

  it("rejects a length that does not match the shape", () => {
    expect(() => quantizeInt8PerChannel(f32([1, 2, 3]), 2, 2, "w")).toThrow(/3 values do not form a \[2, 2\] matrix/);
  });
});

describe("quantizeInt4PerChannel", () => {
  it("uses scale = amax / 8 and clamps to [-8, 7]", () => {
    const { q, scales } = quantizeInt4PerChannel(f32([8, -8, 7.5, -7.5, 2.5, -0.5, 0.49]), 1, 7);
    expect(scales[0]).toBe(1);
    expect([...q]).toEqual([7, -8, 7, -8, 3, -1, 0]);
  });

  it("fake-quantizes to codes times scale", () => {
    const w = f32([1, -1, 0.3, 0.1]);
    const fq = fakeQuantInt4PerChannel(w, 1, 4); // scale 1/8: 8 -> 7, -8, 2.4 -> 2, 0.8 -> 1
    expect([...fq]).toEqual([7 / 8, -1, 2 / 8, 1 / 8]);
  });
});

describe("fake quantization properties", () => {
  const matrix = fc
    .tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 9 }))
    .chain(([rows, cols]) =>
      fc.tuple(
        fc.constant(rows),
        fc.constant(cols),
        fc.float32Array({ minLength: rows * cols, maxLength: rows * cols, noNaN: true, noDefaultInfinity: true, min: -1e4, max: 1e4 }),
      ),
    );

  it.each([
    ["int8", quantizeInt8PerChannel, 127],
    ["int4", quantizeInt4PerChannel, 7],
  ] as const)("%s: codes stay in range and the error is at most one step (half a step below saturation)", (_n, quantize, qmax) => {
    fc.assert(
      fc.property(matrix, ([rows, cols, w]) => {
        const { q, scales } = quantize(w, rows, cols);
        const deq = dequantizePerChannel(q, scales, rows, cols);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            const i = r * cols + c;
            const s = scales[r]!;
            if (q[i]! < -qmax - 1 || q[i]! > qmax) return false;
            const err = Math.abs(deq[i]! - w[i]!);
            const bound = q[i] === qmax ? s : s / 2;
            // Slack: the float32 rounding of w / scale and of q * scale, a few ulps of w.
            if (err > bound + Math.abs(w[i]!) * 2 ** -21 + 1e-30) return false;
          }
        }
        return true;
      }),
    );
  });

  it("roundScale rounds the scale used for dequantization", () => {
    const w = f32([1, -0.5]);
    const fq = fakeQuantInt8PerChannel(w, 1, 2, { roundScale: () => 0.5 });
    expect([...fq]).toEqual([127 * 0.5, -64 * 0.5]);
  });
});

describe("int4 packing", () => {
  it("puts element 2j in the low nibble and 2j+1 in the high nibble", () => {
    expect([...packInt4(new Int8Array([1, -1]))]).toEqual([0xf1]);
    expect([...packInt4(new Int8Array([-8, 7, 0, -1]))]).toEqual([0x78, 0xf0]);
  });

  it("leaves the high nibble of an odd tail zero", () => {
    expect([...packInt4(new Int8Array([3, 4, -3]))]).toEqual([0x43, 0x0d]);
  });

  it("rejects codes outside [-8, 7], naming the index", () => {
    expect(() => packInt4(new Int8Array([0, 8]))).toThrow(/int4 code 8 at index 1/);
    expect(() => packInt4(new Int8Array([-9]))).toThrow(QuantError);
  });

  it("unpackInt4 inverts packInt4", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -8, max: 7 }), { maxLength: 33 }), (xs) => {
        const q = new Int8Array(xs);
        expect([...unpackInt4(packInt4(q), q.length)]).toEqual(xs);
      }),
    );
  });

  it("unpackInt4 rejects a count that does not fit the bytes", () => {
    expect(() => unpackInt4(new Uint8Array(2), 5)).toThrow(/2 packed bytes cannot hold exactly 5/);
  });
});
