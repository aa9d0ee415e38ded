// What a quantized TensorRT-LLM 1.2.1 engine computes, as inputs to the CPU simulator (src/lower/simulate.ts):
// each rank's Linear weights replaced by their quantize-dequantize images, and hooks that fake-quantize FP8 GEMM
// inputs and the KV cache with the same rounding and scales the engine uses.
//   - W8A16 / W4A16: TensorRT-LLM quantizes the checkpoint's half-precision weight at load, per output channel and
//     per rank (a row-parallel rank sees only its columns), with scale amax / 128 | amax / 8 in float32, and
//     dequantizes with that scale stored in the model dtype (per_channel_scale).
//   - FP8: Kiln's own weight codes E4M3(w / s_w), s_w = amax / 448 per rank and scale group (fc and gate share one,
//     linears.ts). Without the FP8 GEMM plugin (Kiln's build_config default) FP8Linear casts both scales to the
//     model dtype before its quantize/dequantize, so the GEMM reads E4M3(x / s_a') * s_a' and E4M3(w / s_w) * s_w'
//     with s' the scale rounded to the model dtype.
//   - KV cache: K and V quantized per tensor with kv_cache_scaling_factor at every position. (The engine's context
//     phase attends over the unquantized K/V unless FP8 context FMHA is on; generation steps read the cache. The
//     simulation takes the cache's view everywhere, so its prompt logits are, if anything, pessimistic.)
// Not simulated: half-precision arithmetic of the activations (the interpreter computes in float32).

import type { RTensor } from "../interp/tensor.ts";
import { tensor } from "../interp/tensor.ts";
import type { SimulationHooks } from "../lower/simulate.ts";
import { roundToBf16, roundToF16 } from "../weights/half.ts";
import { roundToE4M3 } from "../numerics/fp8-e4m3.ts";
import { QuantError } from "../numerics/quant-error.ts";
import { fakeQuantInt4PerChannel, fakeQuantInt8PerChannel } from "./int-quant.ts";
import type { QuantLinear } from "./linears.ts";
import { absMax, fakeQuantFp8, fakeQuantInt8PerTensor, fp8WeightScale } from "../numerics/per-tensor.ts";
import { inputScaleOf, kvScaleOf, type QuantDtype, type QuantSpec } from "./spec.ts";

/** Rounding to each model dtype (what a cast to it does to a float32). */
export const ROUND_TO: Readonly<Record<QuantDtype, (x: number) => number>> = { float32: Math.fround, float16: roundToF16, bfloat16: roundToBf16 };

/** FP8 weights_scaling_factor per scale group and tp rank: max |w| over the group's rank tensors / 448. */
export function fp8WeightScales(weights: ReadonlyMap<string, readonly RTensor[]>, linears: readonly QuantLinear[]): Map<string, number[]> {
  const amax = new Map<string, number[]>();
  for (const l of linears) {
    const ranks = weights.get(l.param) ?? [];
    const acc = amax.get(l.scaleGroup) ?? [];
    ranks.forEach((w, r) => (acc[r] = Math.max(acc[r] ?? 0, absMax(w.data as Float32Array, `${l.param} (tp rank ${r})`))));
    amax.set(l.scaleGroup, acc);
  }
  return new Map([...amax].map(([g, a]) => [g, a.map(fp8WeightScale)]));
}

function mapData(t: RTensor, f: (x: number) => number): RTensor {
  return tensor(t.dtype, t.shape, (t.data as Float32Array).map(f));
}

type RankWeight = (w: RTensor, l: QuantLinear, rank: number) => RTensor;

/** The quantize-dequantize image of one rank's weight, per scheme. */
function weightQuantizer(spec: QuantSpec, dtype: QuantDtype, weights: ReadonlyMap<string, readonly RTensor[]>): RankWeight {
  const round = ROUND_TO[dtype];
  const perChannel =
    (fq: typeof fakeQuantInt8PerChannel): RankWeight =>
    (w, l, r) => {
      const [rows, cols] = w.shape as [number, number];
      return tensor(w.dtype, w.shape, fq((w.data as Float32Array).map(round), rows, cols, { name: `${l.param} (tp rank ${r})`, roundScale: round }));
    };
  if (spec.weight === "w8a16") return perChannel(fakeQuantInt8PerChannel);
  if (spec.weight === "w4a16") return perChannel(fakeQuantInt4PerChannel);
  if (spec.weight === "w4a16_awq") {
    // Group-wise INT4 exists only pre-quantized: the engine's weights were computed when the model was loaded.
    const engine = spec.prequant?.int4?.engineWeights;
    if (!engine) throw new QuantError("group-wise INT4 weights need a pre-quantized checkpoint's engine weights");
    return (w, l) => engine.get(l.param) ?? w;
  }
  // Pre-quantized: the checkpoint's scale on every rank; w is the dequantized source weight, so this is
  // TensorRT-LLM's requantization e4m3(code * s_i / s) (the identity where s_i = s), dequantized with s.
  const fixed = spec.prequant?.weightScale;
  const scales = fixed ? undefined : fp8WeightScales(weights, spec.linears);
  return (w, l, r) => {
    const s = fixed ? fixed.get(l.scaleGroup)! : scales!.get(l.scaleGroup)![r]!;
    const engineScale = round(s);
    return mapData(w, (x) => roundToE4M3(x / s) * engineScale);
  };
}

/** Per-rank weights with every quantized Linear's weight replaced by what the engine multiplies with. */
export function quantizeWeights(weights: ReadonlyMap<string, RTensor[]>, spec: QuantSpec, dtype: QuantDtype): Map<string, RTensor[]> {
  const out = new Map(weights);
  if (!spec.weight) return out;
  const quantize = weightQuantizer(spec, dtype, weights);
  for (const l of spec.linears)
    out.set(
      l.param,
      weights.get(l.param)!.map((w, r) => quantize(w, l, r)),
    );
  return out;
}

/** Hooks that fake-quantize FP8 GEMM inputs and the KV cache (identity where the spec quantizes neither). */
export function quantHooks(spec: QuantSpec, dtype: QuantDtype): SimulationHooks {
  const round = ROUND_TO[dtype];
  const fp8Inputs = new Map(spec.weight === "fp8" ? spec.linears.map((l) => [l.module, round(inputScaleOf(spec, l.module))]) : []);
  const kvScales = new Map(spec.kv ? spec.attentions.map((a) => [a, kvScaleOf(spec, a)]) : []);
  const kvQuant = spec.kv === "int8" ? fakeQuantInt8PerTensor : fakeQuantFp8;
  return {
    linearInput: (module, x) => {
      const s = fp8Inputs.get(module);
      return s === undefined ? x : mapData(x, (v) => roundToE4M3(v / s) * s);
    },
    kvCache: (module, _which, t) => {
      const s = kvScales.get(module);
      return s === undefined ? t : tensor(t.dtype, t.shape, kvQuant(t.data as Float32Array, s));
    },
  };
}
