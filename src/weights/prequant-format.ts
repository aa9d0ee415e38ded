// Which pre-quantized format a Hugging Face checkpoint directory is in, read from its quantization metadata only
// (no tensor is opened here). Recognized:
//   - ModelOpt FP8 exports: `hf_quant_config.json` {"producer": {"name": "modelopt"}, "quantization": {"quant_algo":
//     "FP8", "kv_cache_quant_algo": "FP8" | null, "exclude_modules": [...]}}, or the same fields in config.json's
//     `quantization_config` with quant_method "modelopt". Tensors: `<linear>.weight` F8_E4M3, `<linear>.weight_scale`
//     and `<linear>.input_scale` F32 scalars, KV scales `<attn>.k_proj.k_scale` / `<attn>.v_proj.v_scale`. The scale
//     names are the external keys TensorRT-LLM's own HF loader maps for FP8Linear (tensorrt_llm/quantization/
//     layers.py @ 2340c776 FP8Linear.tllm_to_externel_key_dict: activation_scaling_factor <- input_scale,
//     weights_scaling_factor <- weight_scale).
//   - compressed-tensors FP8 (llm-compressor's "float-quantized" format): config.json `quantization_config` with
//     quant_method "compressed-tensors", config_groups whose `weights` are {num_bits: 8, type: "float"} and strategy
//     "tensor" or "channel", static per-tensor `input_activations` (or none), `ignore`, and `kv_cache_scheme`. Tensors:
//     `weight` F8_E4M3, `weight_scale` ([1] or [out, 1]), `input_scale` ([1]), KV scales `<attn>.k_scale` / `.v_scale`.
//   - AWQ (AutoAWQ GEMM) and GPTQ (AutoGPTQ) INT4: config.json `quantization_config` with quant_method "awq" / "gptq",
//     bits 4, group_size; see int4-packing.ts for the tensors.
// Invariants: a checkpoint with quantization metadata Kiln cannot honour is an error naming the file and field, never
// silently read as unquantized; a checkpoint without any is `undefined`.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KilnError } from "../io/kiln-error.ts";

export class PrequantError extends KilnError {
  override name = "PrequantError";
}

export interface Fp8Format {
  readonly kind: "fp8";
  readonly producer: "modelopt" | "compressed-tensors";
  /** Weight scales: one per tensor, or one per output channel (compressed-tensors strategy "channel"). */
  readonly weightScales: "tensor" | "channel";
  /** Whether the checkpoint carries calibrated FP8 KV-cache scales. */
  readonly kvCache: boolean;
  /** Where the format was read from (for messages). */
  readonly from: string;
}

export interface Int4Format {
  readonly kind: "int4";
  readonly producer: "awq" | "gptq";
  readonly groupSize: number;
  /** GPTQ act-order: rows are grouped by `g_idx`, not by position. */
  readonly descAct: boolean;
  /** GPTQ symmetric checkpoints still store zeros (8); AWQ always has zero points. */
  readonly from: string;
}

export type PrequantFormat = Fp8Format | Int4Format;

const describe = (f: PrequantFormat): string =>
  f.kind === "fp8" ? `${f.producer} FP8 (per-${f.weightScales} weight scales)` : `${f.producer.toUpperCase()} INT4 (group size ${f.groupSize})`;
export const describePrequant = describe;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function modelopt(q: Json, from: string): PrequantFormat {
  const algo = q.quant_algo;
  if (algo !== "FP8")
    throw new PrequantError(`${from}: quant_algo ${JSON.stringify(algo)} is not supported for pre-quantized input (Kiln reads ModelOpt "FP8")`);
  const kv = q.kv_cache_quant_algo ?? null;
  if (kv !== null && kv !== "FP8") throw new PrequantError(`${from}: kv_cache_quant_algo ${JSON.stringify(kv)} is not supported (only "FP8" or null)`);
  return { kind: "fp8", producer: "modelopt", weightScales: "tensor", kvCache: kv === "FP8", from };
}

function compressedTensors(q: Json, from: string): PrequantFormat {
  const groups = isObject(q.config_groups) ? Object.entries(q.config_groups) : [];
  if (!groups.length) throw new PrequantError(`${from}: quantization_config.config_groups is missing or empty`);
  const strategies = new Set<string>();
  for (const [name, g] of groups) {
    const at = `${from}: quantization_config.config_groups.${name}`;
    const w = isObject(g) && isObject(g.weights) ? g.weights : undefined;
    if (!w || w.num_bits !== 8 || w.type !== "float")
      throw new PrequantError(`${at}.weights: only FP8 weights (num_bits 8, type "float") are supported, got ${JSON.stringify(w)?.slice(0, 120)}`);
    if (w.strategy !== "tensor" && w.strategy !== "channel")
      throw new PrequantError(`${at}.weights.strategy ${JSON.stringify(w.strategy)} is not supported (only "tensor" or "channel")`);
    if (w.dynamic === true || w.symmetric === false) throw new PrequantError(`${at}.weights: only static symmetric FP8 weights are supported`);
    const a = (g as Json).input_activations;
    if (a !== null && a !== undefined) {
      if (!isObject(a) || a.num_bits !== 8 || a.type !== "float" || a.strategy !== "tensor" || a.dynamic === true)
        throw new PrequantError(
          `${at}.input_activations: only static per-tensor FP8 activations are supported (TensorRT-LLM 1.2.1 FP8Linear), got ${JSON.stringify(a).slice(0, 120)}`,
        );
    } else throw new PrequantError(`${at}: weight-only FP8 (no input_activations) has no TensorRT-LLM 1.2.1 engine-flow equivalent`);
    strategies.add(w.strategy as string);
  }
  if (strategies.size > 1) throw new PrequantError(`${from}: config groups mix weight strategies ${[...strategies].join(" and ")}`);
  const fmt = q.format;
  if (fmt !== undefined && fmt !== "float-quantized" && fmt !== "naive-quantized")
    throw new PrequantError(`${from}: compressed-tensors format ${JSON.stringify(fmt)} is not supported (only "float-quantized")`);
  const kv = q.kv_cache_scheme;
  if (kv !== null && kv !== undefined && (!isObject(kv) || kv.num_bits !== 8 || kv.type !== "float"))
    throw new PrequantError(`${from}: kv_cache_scheme ${JSON.stringify(kv).slice(0, 120)} is not FP8`);
  return { kind: "fp8", producer: "compressed-tensors", weightScales: [...strategies][0] as "tensor" | "channel", kvCache: isObject(kv), from };
}

function int4(q: Json, producer: "awq" | "gptq", from: string): PrequantFormat {
  if (q.bits !== 4 && q.w_bit !== 4) throw new PrequantError(`${from}: ${producer} bits ${JSON.stringify(q.bits ?? q.w_bit)} is not supported (only 4)`);
  const gs = q.group_size ?? q.q_group_size;
  if (typeof gs !== "number" || !Number.isInteger(gs) || gs <= 0)
    throw new PrequantError(`${from}: ${producer} group_size ${JSON.stringify(gs)} must be a positive integer (per-column -1 is not supported)`);
  if (producer === "awq" && q.version !== undefined && String(q.version).toLowerCase() !== "gemm")
    throw new PrequantError(`${from}: AWQ version ${JSON.stringify(q.version)} is not supported (only "gemm")`);
  if (producer === "gptq" && q.checkpoint_format !== undefined && q.checkpoint_format !== "gptq")
    throw new PrequantError(`${from}: GPTQ checkpoint_format ${JSON.stringify(q.checkpoint_format)} is not supported (only "gptq")`);
  return { kind: "int4", producer, groupSize: gs, descAct: producer === "gptq" && q.desc_act === true, from };
}

/** The pre-quantized format of `dir` (config.json already parsed as `hf`), or undefined for a plain checkpoint. */
export function detectPrequant(dir: string, hf: Readonly<Record<string, unknown>>): PrequantFormat | undefined {
  const quantFile = join(dir, "hf_quant_config.json");
  if (existsSync(quantFile)) {
    let j: unknown;
    try {
      j = JSON.parse(readFileSync(quantFile, "utf8"));
    } catch (e) {
      throw new PrequantError(`${quantFile}: not valid JSON (${(e as Error).message})`);
    }
    if (!isObject(j) || !isObject(j.quantization)) throw new PrequantError(`${quantFile}: no "quantization" object`);
    return modelopt(j.quantization, quantFile);
  }
  const q = hf.quantization_config;
  if (q === undefined || q === null) return undefined;
  const from = `${join(dir, "config.json")} quantization_config`;
  if (!isObject(q)) throw new PrequantError(`${from}: not an object`);
  const method = q.quant_method;
  if (method === "modelopt") return modelopt(isObject(q.quantization) ? q.quantization : q, from);
  if (method === "compressed-tensors") return compressedTensors(q, from);
  if (method === "awq" || method === "gptq") return int4(q, method, from);
  throw new PrequantError(`${from}: quant_method ${JSON.stringify(method)} is not a pre-quantized format Kiln reads (modelopt, compressed-tensors, awq, gptq)`);
}
