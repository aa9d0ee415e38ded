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
import { attentionModules, quantizableLinears } from "./linears.ts";
import { QuantError } from "../numerics/quant-error.ts";
import type { DequantSource } from "../weights/dequant-source.ts";
import { describePrequant } from "../weights/prequant-format.ts";
import { exprSources } from "../weights/weight-map.ts";
import type { PrequantScales, QuantOptions } from "./spec.ts";

const moduleOf = (weight: string) => weight.slice(0, weight.lastIndexOf("."));

/** The quantization a pre-quantized checkpoint implies for `low` (FP8 only; INT4 has its own route). */
export function prequantOptions(low: LoweredModel, src: DequantSource): QuantOptions {
  const f = src.format;
  if (f.kind !== "fp8") throw new QuantError(`${f.from}: ${describePrequant(f)} checkpoints are not yet written as TensorRT-LLM checkpoints by Kiln`);
  if (f.weightScales === "channel")
    throw new QuantError(
      `${f.from}: per-channel FP8 weights map to TensorRT-LLM 1.2.1's FP8_PER_CHANNEL_PER_TOKEN (dynamic per-token activations), which Kiln does not write yet; this checkpoint has static per-tensor input scales`,
    );
  const weightScale = new Map<string, number>();
  const inputScale = new Map<string, number>();
  const excluded: string[] = [];
  const linears = quantizableLinears(low.graph);
  for (const l of linears) {
    const sources = [...new Set(exprSources(low.weights[l.param]!))];
    const quantized = sources.filter((s) => src.linears.has(s));
    if (!quantized.length) {
      excluded.push(l.module);
      continue;
    }
    if (quantized.length !== sources.length)
      throw new QuantError(
        `${l.module} fuses quantized '${quantized[0]}' with unquantized '${sources.find((s) => !src.linears.has(s))}': TensorRT-LLM cannot run one GEMM in both`,
      );
    const qs = quantized.map((s) => src.linears.get(s)!);
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
