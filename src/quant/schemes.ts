// The quantization schemes Kiln supports, as data: for each `--quant` / `--kv-cache` choice, TensorRT-LLM 1.2's
// algorithm name for config.json, the numeric format (implemented in int-quant.ts / per-tensor.ts), and the tensors
// a checkpoint carries per quantized module. Plus TensorRT-LLM's default `exclude_modules` and its matcher.
// Sources (shared/docs/trtllm-1.2-facts.md §7 and the files named there):
//   - Weight-only (W8A16/W4A16): a pre-quantized `.weight` must already be CUTLASS-preprocessed, and that layout
//     depends on the GPU architecture of the machine that runs the preprocessing (cutlass_preprocessors.cpp,
//     `preprocess_weights_for_mixed_gemm` reads getSMVersion()). So Kiln writes the weight in the model dtype and
//     lets `from_checkpoint -> preprocess_weights -> weight_only_quantize_dict` quantize it at load; that only
//     touches tensors whose name CONTAINS one of `loadTimeQuantizedNames` and adds `.per_channel_scale`.
//   - FP8 (per-tensor): `.weight` F8_E4M3 plus two F32 [1] scales; `lm_head` usually stays unquantized.
//   - KV cache: `kv_cache_scaling_factor` F32 [1] on the attention module; TensorRT-LLM derives
//     `kv_cache_rcp_scaling_factor` itself when absent.
// Invariant: every scheme's tensors are listed in the order a converter should emit them; shapes are symbolic over
// the Linear's local `out` / `in` features.

import type { SafetensorsDtype } from "../weights/dtypes.ts";
import type { KvCacheFormat } from "../numerics/per-tensor.ts";
import { fnmatchCase } from "./fnmatch.ts";
import { QuantError } from "../numerics/quant-error.ts";

export type WeightQuant = "w8a16" | "w4a16" | "fp8" | "w4a16_awq";
export type KvCacheQuant = KvCacheFormat;

/** A tensor stored beside a quantized module: `<module path>.<suffix>`. "model" = the checkpoint's `dtype`. */
export interface TensorSpec {
  readonly suffix: string;
  readonly dtype: SafetensorsDtype | "model";
  readonly shape: readonly ("out" | "in" | "out/2" | "out/4" | "in/group" | 1)[];
}

export interface WeightScheme {
  /** `quantization.quant_algo` in config.json. */
  readonly quantAlgo: "W8A16" | "W4A16" | "FP8" | "W4A16_AWQ";
  readonly format: "int8-per-channel" | "int4-per-channel" | "fp8-per-tensor" | "int4-groupwise";
  /** What Kiln writes per quantized Linear. */
  readonly checkpointTensors: readonly TensorSpec[];
  /** Substrings that make TensorRT-LLM quantize a tensor at load (weight-only only; empty otherwise). */
  readonly loadTimeQuantizedNames: readonly string[];
  /** What the engine holds after load-time quantization, for reference (weight-only only). */
  readonly engineTensors: readonly TensorSpec[];
  /** Whether activation statistics are needed (calibration). */
  readonly needsCalibration: boolean;
  /** Only a pre-quantized checkpoint supplies this scheme's codes (src/quant/prequant.ts); never a --quant value. */
  readonly prequantOnly?: true;
}

export interface KvCacheScheme {
  /** `quantization.kv_cache_quant_algo` in config.json. */
  readonly kvCacheQuantAlgo: "INT8" | "FP8";
  /** Per attention module. */
  readonly checkpointTensors: readonly TensorSpec[];
  readonly needsCalibration: true;
}

const WEIGHT_ONLY_NAMES = ["qkv.weight", "dense.weight", "fc.weight", "proj.weight", "gate.weight"] as const;
const PLAIN_WEIGHT: TensorSpec = { suffix: "weight", dtype: "model", shape: ["out", "in"] };
const PER_CHANNEL_SCALE: TensorSpec = { suffix: "per_channel_scale", dtype: "model", shape: ["out"] };

export const WEIGHT_SCHEMES: Readonly<Record<WeightQuant, WeightScheme>> = {
  w8a16: {
    quantAlgo: "W8A16",
    format: "int8-per-channel",
    checkpointTensors: [PLAIN_WEIGHT],
    loadTimeQuantizedNames: WEIGHT_ONLY_NAMES,
    engineTensors: [{ suffix: "weight", dtype: "I8", shape: ["in", "out"] }, PER_CHANNEL_SCALE],
    needsCalibration: false,
  },
  w4a16: {
    quantAlgo: "W4A16",
    format: "int4-per-channel",
    checkpointTensors: [PLAIN_WEIGHT],
    loadTimeQuantizedNames: WEIGHT_ONLY_NAMES,
    engineTensors: [{ suffix: "weight", dtype: "I8", shape: ["in", "out/2"] }, PER_CHANNEL_SCALE],
    needsCalibration: false,
  },
  fp8: {
    quantAlgo: "FP8",
    format: "fp8-per-tensor",
    checkpointTensors: [
      { suffix: "weight", dtype: "F8_E4M3", shape: ["out", "in"] },
      { suffix: "weights_scaling_factor", dtype: "F32", shape: [1] },
      { suffix: "activation_scaling_factor", dtype: "F32", shape: [1] },
    ],
    loadTimeQuantizedNames: [],
    engineTensors: [],
    needsCalibration: true,
  },
  // Group-wise INT4 with zero points, from AWQ/GPTQ checkpoints, in the layout 1.2.1's from_checkpoint turns into
  // WeightOnlyGroupwiseQuant*Linear parameters (models/modeling_utils.py @ b35ac1b6 preprocess_perlayer_weights,
  // W4A16_AWQ branch; quantization/layers.py @ 2340c776 parameter shapes): see codegen/common/int4-tensors.ts.
  w4a16_awq: {
    quantAlgo: "W4A16_AWQ",
    format: "int4-groupwise",
    checkpointTensors: [
      { suffix: "weight", dtype: "I8", shape: ["out/2", "in"] },
      { suffix: "weights_scaling_factor", dtype: "model", shape: ["out", "in/group"] },
      { suffix: "zero", dtype: "model", shape: ["in/group", "out"] },
    ],
    loadTimeQuantizedNames: [],
    engineTensors: [
      { suffix: "weight", dtype: "model", shape: ["in", "out/4"] },
      { suffix: "weights_scaling_factor", dtype: "model", shape: ["in/group", "out"] },
      { suffix: "zero", dtype: "model", shape: ["in/group", "out"] },
    ],
    needsCalibration: false,
    prequantOnly: true,
  },
};

export const KV_CACHE_SCHEMES: Readonly<Record<KvCacheQuant, KvCacheScheme>> = {
  int8: {
    kvCacheQuantAlgo: "INT8",
    checkpointTensors: [{ suffix: "kv_cache_scaling_factor", dtype: "F32", shape: [1] }],
    needsCalibration: true,
  },
  fp8: {
    kvCacheQuantAlgo: "FP8",
    checkpointTensors: [{ suffix: "kv_cache_scaling_factor", dtype: "F32", shape: [1] }],
    needsCalibration: true,
  },
};

/**
 * TensorRT-LLM's `exclude_modules` when config.json gives none (quantization/quantize.py `quantize_layers`).
 * Weight-only schemes would otherwise also quantize Embedding modules.
 */
export const DEFAULT_EXCLUDE_MODULES: readonly string[] = [
  "*lm_head",
  "*router",
  "*vocab_embedding",
  "*position_embedding",
  "*block_embedding",
  "*shared_expert_gate",
];

/**
 * Whether TensorRT-LLM 1.2's TensorRT backend leaves `modulePath` unquantized: fnmatchcase of the full dotted
 * path against any pattern. No ancestor walk and no `re:` patterns: those exist only in the later PyTorch backend.
 */
export const matchesExclusion = (modulePath: string, patterns: readonly string[] = DEFAULT_EXCLUDE_MODULES): boolean =>
  patterns.some((p) => fnmatchCase(modulePath, p));

function parseChoice<K extends string>(table: Readonly<Record<K, unknown>>, flag: string, value: string): K {
  if (Object.hasOwn(table, value)) return value as K;
  throw new QuantError(`${flag} ${JSON.stringify(value)} is not one of ${Object.keys(table).join(", ")}`);
}

/** Validate a `--quant` value. */
export function parseWeightQuant(value: string): WeightQuant {
  if (Object.hasOwn(WEIGHT_SCHEMES, value) && WEIGHT_SCHEMES[value as WeightQuant].prequantOnly)
    throw new QuantError(`--quant ${value} comes only from a pre-quantized AWQ/GPTQ checkpoint (--hf DIR), never from a flag`);
  return parseChoice(FLAG_SCHEMES, "--quant", value);
}

/** The schemes a --quant flag may name. */
const FLAG_SCHEMES = Object.fromEntries(Object.entries(WEIGHT_SCHEMES).filter(([, s]) => !s.prequantOnly)) as Readonly<Record<WeightQuant, WeightScheme>>;

/** Validate a `--kv-cache` value. */
export const parseKvCacheQuant = (value: string): KvCacheQuant => parseChoice(KV_CACHE_SCHEMES, "--kv-cache", value);
