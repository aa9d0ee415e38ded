// .npy codec: round trips for each dtype, numpy's 64-byte data alignment, and one-line rejection of what it does
// not write. (numpy itself reads these files in python-bridge/tests/test_lora_runtime_files.py.)

import { describe, expect, it } from "vitest";
import { decodeNpy, encodeNpy } from "./npy.ts";

describe("npy", () => {
  it("round-trips float32, float16 and int32 with the header padded to 64 bytes", () => {
    for (const [dtype, data] of [
      ["float32", Float32Array.from([1.5, -2, 3.25, 0, 1e-3, 7])],
      ["float16", Float32Array.from([1.5, -2, 3.25, 0, 0.5, 7])],
      ["int32", Int32Array.from([1, -2, 3, 0, 2 ** 30, 7])],
    ] as const) {
      const bytes = encodeNpy({ dtype, shape: [1, 2, 3], data });
      const headerLen = bytes[8]! | (bytes[9]! << 8);
      expect((10 + headerLen) % 64).toBe(0);
      expect(new TextDecoder().decode(bytes.subarray(10, 10 + headerLen))).toMatch(
        /^\{'descr': '<[fi][42]', 'fortran_order': False, 'shape': \(1, 2, 3\), \} *\n$/,
      );
      const back = decodeNpy(bytes);
      expect(back.shape).toEqual([1, 2, 3]);
      expect([...back.data]).toEqual([...data]);
    }
    expect(decodeNpy(encodeNpy({ dtype: "float32", shape: [4], data: new Float32Array(4) })).shape).toEqual([4]);
  });

  it("rejects what it does not write", () => {
    expect(() => encodeNpy({ dtype: "float32", shape: [2, 2], data: new Float32Array(3) })).toThrow(/^npy: 3 values do not fill shape \[2,2\]$/);
    expect(() => decodeNpy(new Uint8Array(20), "x.npy")).toThrow(/^x\.npy: not a version 1\.0 \.npy file$/);
    const ok = encodeNpy({ dtype: "float32", shape: [2], data: new Float32Array(2) });
    expect(() => decodeNpy(ok.subarray(0, ok.length - 1), "y.npy")).toThrow(/^y\.npy: 7 data bytes for shape \[2\] float32$/);
  });
});
