// A pre-quantized checkpoint's scales (src/weights/dequant-source.ts) resolved against one lowered model: which of
// its Linears TensorRT-LLM 1.2.1 gets as FP8, with which weight, activation and KV-cache scales. No calibration:
// every scale comes from the checkpoint.
// TensorRT-LLM's rules for Linears it fuses (Kiln reproduces them, so the engine's own requantization is exact):
//   - qkv: one FP8Linear from q, k and v, weights requantized to the largest of their weight scales and the largest
//     input scale kept (tensorrt_llm/quantization/layers.py @ 2340c776, FP8Linear.postprocess with is_qkv:
//     e4m3(float32(code) * s_i / max(s)), activation_scaling_factor = max(input scales)).
//   - fc and gate of a GatedMLP: fuse_gate_mlp (models/modeling_utils.py @ b35ac1b6) requantizes both to the larger
//     weight scale and keeps the larger activation scale when it fuses them; Kiln's scale groups (linears.ts) give
//     both that scale up front.
//   - KV cache: kv_cache_scaling_factor = max(k_scale, v_scale) (preprocess_weights' process_kv_scaling_factor).
// Invariants: a lowered Linear reads either only quantized sources (quantized) or none (kept in the model dtype,
// listed in exclude_modules); a mix is an error naming both; per-tensor scales are the same on every tp rank.

import type { LoweredModel } from "../lower/to-trtllm.ts";
import { attentionModules, type QuantLinear, quantizableLinears } from "./linears.ts";
import { QuantError } from "../numerics/quant-error.ts";
import type { DequantSource } from "../weights/dequant-source.ts";
import { describePrequant } from "../weights/prequant-format.ts";
import { type Dense, evalExpr, exprSources, type WeightExpr } from "../weights/weight-map.ts";
import type { Int4Module } from "../weights/int4-packing.ts";
import { type RTensor, tensor } from "../interp/tensor.ts";
import type { Int4Planes, PrequantScales, QuantOptions } from "./spec.ts";

const moduleOf = (weight: string) => weight.slice(0, weight.lastIndexOf("."));

/** The quantization a pre-quantized checkpoint implies for `low` (FP8 only; INT4 has its own route). */
export function prequantOptions(low: LoweredModel, src: DequantSource): QuantOptions {
  const f = src.format;
  if (f.kind === "int4") return int4Options(low, src, f.groupSize);
  if (f.weightScales === "channel")
    throw new QuantError(
      `${f.from}: per-channel FP8 weights map to TensorRT-LLM 1.2.1's FP8_PER_CHANNEL_PER_TOKEN (dynamic per-token activations), which Kiln does not write yet; this checkpoint has static per-tensor input scales`,
    );
  const weightScale = new Map<string, number>();
  const inputScale = new Map<string, number>();
  const { linears, excluded, sourcesOf } = splitLinears(low, src);
  for (const l of linears) {
    if (excluded.includes(l.module)) continue;
    const qs = sourcesOf(l).map((s) => src.linears.get(s)!);
    weightScale.set(l.scaleGroup, Math.max(weightScale.get(l.scaleGroup) ?? 0, ...qs.map((q) => q.weightScale as number)));
    inputScale.set(l.scaleGroup, Math.max(inputScale.get(l.scaleGroup) ?? 0, ...qs.map((q) => q.inputScale!)));
  }
  // Activation scales are kept per scale group (fc and gate fuse into one GEMM reading one input).
  const perModule = new Map(linears.filter((l) => !excluded.includes(l.module)).map((l) => [l.module, inputScale.get(l.scaleGroup)!]));
  const kvScale = new Map<string, number>();
  if (src.kvScales.size)
    for (const a of attentionModules(low.graph)) {
      const qkv = linears.find((l) => l.layer === a && l.role === "qkv");
      const hfAttn = qkv && moduleOf(moduleOf(exprSources(low.weights[qkv.param]!)[0]!));
      const s = hfAttn === undefined ? undefined : src.kvScales.get(hfAttn);
      if (s === undefined) throw new QuantError(`${f.from}: no k_scale/v_scale for attention ${a} (looked for '${hfAttn}.k_scale')`);
      kvScale.set(a, s);
    }
  const prequant: PrequantScales = { source: describePrequant(f), weightScale, inputScale: perModule, kvScale };
  return { weight: "fp8", ...(kvScale.size && { kv: "fp8" as const }), excluded, prequant };
}

/** The quantizable Linears, those reading no quantized source (excluded), and each one's source weights. */
function splitLinears(low: LoweredModel, src: DequantSource) {
  const excluded: string[] = [];
  const linears = quantizableLinears(low.graph);
  const sourcesOf = (l: QuantLinear) => [...new Set(exprSources(low.weights[l.param]!))];
  for (const l of linears) {
    const sources = sourcesOf(l);
    const quantized = sources.filter((s) => src.linears.has(s));
    if (!quantized.length) excluded.push(l.module);
    else if (quantized.length !== sources.length)
      throw new QuantError(
        `${l.module} fuses quantized '${quantized[0]}' with unquantized '${sources.find((s) => !src.linears.has(s))}': TensorRT-LLM cannot run one GEMM in both`,
      );
  }
  return { linears, excluded, sourcesOf };
}

/** Per-element planes of an INT4 Linear (unpacked on demand). */
function int4Planes(src: DequantSource, groupSize: number): Int4Planes {
  // A fused Linear reads up to three sources (q, k, v) three times each (q, s, z planes) per rank: keep a few.
  const recent = new Map<string, Promise<Int4Module>>();
  const moduleOf = (name: string) => {
    if (!recent.has(name)) {
      if (recent.size >= 4) recent.delete(recent.keys().next().value!);
      recent.set(name, src.int4(name));
    }
    return recent.get(name)!;
  };
  return {
    groupSize,
    plane: async (source, which) => {
      const m = await moduleOf(source);
      const data = new Float32Array(m.out * m.in);
      for (let o = 0; o < m.out; o++)
        for (let k = 0; k < m.in; k++) {
          const g = Math.floor(k / m.groupSize) * m.out + o;
          data[o * m.in + k] = which === "q" ? m.q[o * m.in + k]! : which === "s" ? m.scales[g]! : m.zeros[g]!;
        }
      return { shape: [m.out, m.in], data };
    },
  };
}

function int4Options(low: LoweredModel, src: DequantSource, groupSize: number): QuantOptions {
  const { excluded } = splitLinears(low, src);
  const int4 = int4Planes(src, groupSize);
  const prequant: PrequantScales = { source: describePrequant(src.format), weightScale: new Map(), inputScale: new Map(), kvScale: new Map(), int4 };
  return { weight: "w4a16_awq", excluded, prequant };
}

/**
 * The weights a W4A16 engine multiplies with, per lowered quantized Linear (tp 1): c * s + zero with c = q - 8 and
 * zero = round((8 - z) * s) in the model dtype, as TensorRT-LLM's groupwise kernel reconstructs them (the kernel's
 * own half-precision multiply-add is not modelled: float32 here, like the activations).
 */
export async function int4EngineWeights(low: LoweredModel, o: QuantOptions, round: (x: number) => number): Promise<Map<string, RTensor>> {
  const planes = o.prequant!.int4!;
  const out = new Map<string, RTensor>();
  for (const l of quantizableLinears(low.graph)) {
    if (o.excluded?.includes(l.module)) continue;
    const e = low.weights[l.param]!;
    const [q, s, z] = [await evalPlanes(e, planes, "q"), await evalPlanes(e, planes, "s"), await evalPlanes(e, planes, "z")];
    out.set(
      l.param,
      tensor(
        "f32",
        q.shape,
        q.data.map((qi, i) => (qi - 8) * s.data[i]! + round((8 - z.data[i]!) * s.data[i]!)),
      ),
    );
  }
  return out;
}

/** One plane of a (fused, sharded) weight expression: its source planes through the same transforms. */
export async function evalPlanes(e: WeightExpr, planes: Int4Planes, which: "q" | "s" | "z"): Promise<Dense> {
  const loaded = new Map<string, Dense>();
  for (const s of new Set(exprSources(e))) loaded.set(s, await planes.plane(s, which));
  return evalExpr(e, (s) => loaded.get(s)!);
}
