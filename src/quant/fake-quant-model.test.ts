import { beforeAll, describe, expect, it } from "vitest";
import llama from "../../models/llama.ts";
import { FIXTURES } from "../../test/golden.ts";
import { f32, type RTensor } from "../interp/tensor.ts";
import { roundToBf16, roundToF16 } from "../weights/half.ts";
import { activationScale, type Calibration, kvScale } from "./calibration.ts";
import { fp8WeightScales, quantHooks, quantizeWeights } from "./fake-quant-model.ts";
import { roundToE4M3 } from "../numerics/fp8-e4m3.ts";
import { fakeQuantInt4PerChannel, fakeQuantInt8PerChannel } from "./int-quant.ts";
import { DEFAULT_PROMPTS } from "./prompts.ts";
import { calibrateModel, loadQuantizableModel, type QuantizableModel } from "../driver/quantized-model.ts";
import { resolveQuant } from "./spec.ts";

let m: QuantizableModel;
let calibration: Calibration;
beforeAll(async () => {
  m = await loadQuantizableModel(llama, `${FIXTURES}llama`);
  calibration = calibrateModel(m, DEFAULT_PROMPTS);
});

const W = "transformer.layers.0.mlp";
const data = (t: RTensor) => t.data as Float32Array;
/** Row-parallel split of [rows, cols] into tp column blocks. */
function splitCols(t: RTensor, tp: number): RTensor[] {
  const [rows, cols] = t.shape as [number, number];
  const n = cols / tp;
  return Array.from({ length: tp }, (_, r) =>
    f32(
      [rows, n],
      Float32Array.from({ length: rows * n }, (_, i) => data(t)[Math.floor(i / n) * cols + r * n + (i % n)]!),
    ),
  );
}

describe("weight-only fake quantization", () => {
  it("W8A16 quantizes the float16 weight per output channel, dequantizing with a float16 scale", () => {
    const spec = resolveQuant(m.lowered.graph, { weight: "w8a16" });
    const q = quantizeWeights(m.weights, spec, "float16");
    const w = m.weights.get(`${W}.fc.weight`)![0]!;
    const [rows, cols] = w.shape as [number, number];
    expect(data(q.get(`${W}.fc.weight`)![0]!)).toEqual(fakeQuantInt8PerChannel(data(w).map(roundToF16), rows, cols, { roundScale: roundToF16 }));
    expect(q.get("lm_head.weight")).toBe(m.weights.get("lm_head.weight")); // excluded by default
    expect(q.get("transformer.vocab_embedding.weight")).toBe(m.weights.get("transformer.vocab_embedding.weight"));
  });

  it("W4A16 on a row-parallel weight quantizes each rank's columns with that rank's own channel maxima", () => {
    const spec = resolveQuant(m.lowered.graph, { weight: "w4a16" });
    const full = m.weights.get(`${W}.proj.weight`)![0]!;
    const ranks = splitCols(full, 2);
    const q = quantizeWeights(new Map([[`${W}.proj.weight`, ranks]]), { ...spec, linears: spec.linears.filter((l) => l.module === `${W}.proj`) }, "float16");
    const [rows, n] = ranks[0]!.shape as [number, number];
    ranks.forEach((r, i) =>
      expect(data(q.get(`${W}.proj.weight`)![i]!)).toEqual(fakeQuantInt4PerChannel(data(r).map(roundToF16), rows, n, { roundScale: roundToF16 })),
    );
    // Not the same as quantizing the whole matrix and splitting it.
    const whole = splitCols(f32(full.shape, fakeQuantInt4PerChannel(data(full).map(roundToF16), rows, 2 * n, { roundScale: roundToF16 })), 2);
    expect(data(q.get(`${W}.proj.weight`)![1]!)).not.toEqual(data(whole[1]!));
  });
});

describe("FP8 fake quantization", () => {
  it("gives fc and gate one scale (the larger), so TensorRT-LLM's fuse_gate_mlp requantization is exact", () => {
    const spec = resolveQuant(m.lowered.graph, { weight: "fp8", calibration });
    const scales = fp8WeightScales(m.weights, spec.linears);
    const amax = (p: string) => data(m.weights.get(p)![0]!).reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    const s = scales.get(`${W}.fc`)![0]!;
    expect(s).toBe(Math.fround(Math.max(amax(`${W}.fc.weight`), amax(`${W}.gate.weight`)) / 448));
    expect(scales.has(`${W}.gate`)).toBe(false);
    // fuse_gate_mlp: dequantize each with its own scale, requantize with max(scales): with equal scales nothing moves.
    const codes = data(m.weights.get(`${W}.gate.weight`)![0]!).map((x) => roundToE4M3(x / s));
    for (const c of codes) expect(roundToE4M3(Math.fround(Math.fround(c * s) / s))).toBe(c);
    // The simulated weight is code * scale rounded to float16 (FP8Linear casts the scale to the model dtype).
    const q = quantizeWeights(m.weights, spec, "float16");
    expect(data(q.get(`${W}.gate.weight`)![0]!)).toEqual(codes.map((c) => c * roundToF16(s)));
  });

  it("fake-quantizes a quantized Linear's input with the calibrated scale in the model dtype, and leaves others alone", () => {
    const spec = resolveQuant(m.lowered.graph, { weight: "fp8", calibration, excluded: ["transformer.layers.1.attention.dense"] });
    const hooks = quantHooks(spec, "bfloat16");
    const x = f32([1, 4], Float32Array.of(0.013, -0.5, 3.3, 100));
    const s = roundToBf16(activationScale(calibration, `${W}.fc`));
    expect(s).not.toBe(activationScale(calibration, `${W}.fc`));
    expect(Array.from(data(hooks.linearInput!(`${W}.fc`, x, 0)))).toEqual(Array.from(data(x)).map((v) => Math.fround(roundToE4M3(v / s) * s)));
    expect(hooks.linearInput!("transformer.layers.1.attention.dense", x, 0)).toBe(x);
    expect(hooks.kvCache!("transformer.layers.0.attention", "k", x, 0)).toBe(x); // no --kv-cache
  });

  it("quantizes K and V with one per-attention scale: INT8 rounds half to even and saturates", () => {
    const spec = resolveQuant(m.lowered.graph, { kv: "int8", calibration });
    const s = kvScale(calibration, "transformer.layers.0.attention", "int8");
    const t = f32([1, 1, 1, 4], Float32Array.of(2.5 * s, -3.5 * s, 1000 * s, 0));
    expect(Array.from(data(quantHooks(spec, "float16").kvCache!("transformer.layers.0.attention", "v", t, 0)))).toEqual(
      [2 * s, -4 * s, 127 * s, 0].map(Math.fround),
    );
    expect(quantizeWeights(m.weights, spec, "float16").get(`${W}.fc.weight`)).toBe(m.weights.get(`${W}.fc.weight`));
  });
});
