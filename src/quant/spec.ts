// What `--quant`, `--kv-cache` and the DSL's `quantize: false` hints ask for, resolved against one lowered model:
// which Linears get quantized, which attentions get a KV-cache scale, and the calibration the scales come from.
// Invariants: FP8 weights and any KV-cache format need a calibration that covers every quantized Linear's input
// and every attention (checked here, naming what is missing); weight-only schemes need none; TensorRT-LLM's
// weight-only and FP8 GEMMs take half-precision activations, so a quantized model's dtype is float16 or bfloat16.

import { activationScale, type Calibration, kvScale } from "./calibration.ts";
import { attentionModules, type QuantLinear, quantizableLinears } from "./linears.ts";
import { QuantError } from "../numerics/quant-error.ts";
import { type KvCacheQuant, KV_CACHE_SCHEMES, WEIGHT_SCHEMES, type WeightQuant } from "./schemes.ts";
import type { Graph } from "../ir/graph.ts";
import type { RTensor } from "../interp/tensor.ts";
import type { Dense } from "../weights/weight-map.ts";

export type QuantDtype = "float32" | "float16" | "bfloat16";

/** Scales a pre-quantized checkpoint carries (src/quant/prequant.ts), by TensorRT-LLM module path. */
export interface PrequantScales {
  /** What the checkpoint was, for weights.map.json and messages (e.g. "modelopt FP8 (per-tensor weight scales)"). */
  readonly source: string;
  /** FP8 weights_scaling_factor per scale group (the same on every tp rank). */
  readonly weightScale: ReadonlyMap<string, number>;
  /** activation_scaling_factor per quantized Linear. */
  readonly inputScale: ReadonlyMap<string, number>;
  /** kv_cache_scaling_factor per attention. */
  readonly kvScale: ReadonlyMap<string, number>;
  /** Group-wise INT4 (AWQ/GPTQ): the group size, and per-element planes of a source Linear's unpacked tensors. */
  readonly int4?: Int4Planes;
}

/** Planes [out, in] of one INT4 source Linear (by its virtual weight name): codes q (0..15), scales s, zeros z. */
export interface Int4Planes {
  readonly groupSize: number;
  readonly plane: (source: string, which: "q" | "s" | "z") => Promise<Dense>;
  /** The lowered weights the engine multiplies with (tp 1), for the simulator: c * s + round(zero) per element. */
  readonly engineWeights?: ReadonlyMap<string, RTensor>;
}

export interface QuantOptions {
  readonly weight?: WeightQuant;
  readonly kv?: KvCacheQuant;
  /** Global module paths of Linears that stay unquantized (from hints; see exclusions.ts). */
  readonly excluded?: readonly string[];
  readonly calibration?: Calibration;
  /** Scales read from a pre-quantized checkpoint: they replace calibration and Kiln's own weight scales. */
  readonly prequant?: PrequantScales;
}

export interface QuantSpec extends QuantOptions {
  /** The Linears --quant replaces, in graph order (empty without --quant). */
  readonly linears: readonly QuantLinear[];
  /** Attention modules with a KV-cache scale (empty without --kv-cache). */
  readonly attentions: readonly string[];
}

export const isQuantized = (o: QuantOptions): boolean => o.weight !== undefined || o.kv !== undefined;

/** Whether the options need a calibration (FP8 activations or a quantized KV cache). */
export const needsCalibration = (o: QuantOptions): boolean =>
  !o.prequant && ((o.weight !== undefined && WEIGHT_SCHEMES[o.weight].needsCalibration) || (o.kv !== undefined && KV_CACHE_SCHEMES[o.kv].needsCalibration));

export function checkQuantDtype(o: QuantOptions, dtype: QuantDtype): void {
  if (o.weight !== undefined && dtype === "float32")
    throw new QuantError(`--quant ${o.weight} needs --dtype float16 or bfloat16: TensorRT-LLM's quantized GEMMs take half-precision activations`);
}

/** Resolves the options against a lowered graph; throws QuantError naming any module calibration does not cover. */
export function resolveQuant(g: Graph, o: QuantOptions): QuantSpec {
  if (o.weight && WEIGHT_SCHEMES[o.weight].prequantOnly && !o.prequant?.int4)
    throw new QuantError(`--quant ${o.weight} comes only from a pre-quantized AWQ/GPTQ checkpoint`);
  const excluded = new Set(o.excluded ?? []);
  const all = quantizableLinears(g);
  for (const m of excluded) if (!all.some((l) => l.module === m)) throw new QuantError(`excluded module '${m}' is not a quantizable Linear of this model`);
  const linears = o.weight ? all.filter((l) => !excluded.has(l.module)) : [];
  const attentions = o.kv ? attentionModules(g) : [];
  if (needsCalibration(o)) {
    const c = o.calibration;
    if (!c)
      throw new QuantError(
        `${o.weight === "fp8" ? "--quant fp8" : `--kv-cache ${o.kv}`} needs calibration: run kiln calibrate, or let kiln calibrate on its default prompts`,
      );
    const missing = [
      ...(o.weight === "fp8" ? linears.filter((l) => c.inputs[l.module] === undefined).map((l) => l.module) : []),
      ...attentions.filter((a) => c.kvCache[a] === undefined),
    ];
    if (missing.length)
      throw new QuantError(
        `calibration of model '${c.model}' has no statistics for ${missing.slice(0, 4).join(", ")}${missing.length > 4 ? ` and ${missing.length - 4} more` : ""}`,
      );
  }
  return { ...o, linears, attentions };
}

/** A quantized Linear's activation_scaling_factor: the pre-quantized checkpoint's, else calibrated. */
export const inputScaleOf = (spec: QuantSpec, module: string): number =>
  spec.prequant ? spec.prequant.inputScale.get(module)! : activationScale(spec.calibration!, module);

/** An attention's kv_cache_scaling_factor: the pre-quantized checkpoint's, else calibrated. */
export const kvScaleOf = (spec: QuantSpec, attention: string): number =>
  spec.prequant ? spec.prequant.kvScale.get(attention)! : kvScale(spec.calibration!, attention, spec.kv!);
