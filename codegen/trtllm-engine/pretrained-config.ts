// config.json of a TensorRT-LLM checkpoint: a PretrainedConfig dict with the fields TensorRT-LLM 1.2.1 reads (facts
// §2.1), derived from the lowered graph (sizes, heads, rotary settings, activations), the mapping and the dtype, plus
// the fields a built-in class adds (LLaMA attn_bias/mlp_bias, GPT gpt_variant/bias, GPT-J rotary_dim). Only real
// field names are written; `mapping` carries world_size/tp_size/pp_size only (older versions reject other keys), plus
// moe_tp_size/moe_ep_size for mixture-of-experts models, with the `moe` MoeConfig dict (docs/moe.md).
// `quantization` holds QuantConfig fields: quant_algo, kv_cache_quant_algo and, when Linears are quantized,
// exclude_modules (TensorRT-LLM's defaults plus what hints exclude; src/quant/exclusions.ts); other QuantConfig
// fields keep TensorRT-LLM's defaults and are not written.

import { engineRotaryScaling } from "./rotary-scaling.ts";
import type { JsonValue } from "../../src/ir/attrs.ts";
import { type Mapping, moeSizes } from "../../src/lower/mapping.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { excludeModules } from "../../src/quant/exclusions.ts";
import { KV_CACHE_SCHEMES, WEIGHT_SCHEMES } from "../../src/quant/schemes.ts";
import type { QuantSpec } from "../../src/quant/spec.ts";
import { decoderFacts, type MoeFacts } from "../common/decoder-facts.ts";
import type { BuiltinFamily } from "./builtin.ts";

export type TrtDtype = "float32" | "float16" | "bfloat16";

export interface ConfigOptions {
  readonly dtype: TrtDtype;
  readonly mapping: Mapping;
  /** The Hugging Face config.json (for values the graph does not hold, e.g. max_position_embeddings). */
  readonly hf: Readonly<Record<string, unknown>>;
  readonly quantization?: Readonly<Record<string, JsonValue>>;
}

/** Kiln activation -> TensorRT-LLM ACT2FN name per family (TensorRT-LLM's "gelu" is the tanh approximation). */
const ACT_NAMES: Record<string, string> = { silu: "silu", relu: "relu", gelu_tanh: "gelu", gelu: "gelu" };

const POSITION_TYPES: Record<string, string> = { none: "learned_absolute", neox: "rope_gpt_neox", gptj: "rope_gptj" };

/** TensorRT-LLM's rotary scaling dict (HF key names; `type` is what Attention reads): rotary-scaling.ts. */
export const trtRotaryScaling = (s: JsonValue): JsonValue => engineRotaryScaling(s);

/** A value computed back from a float (1 / scale^2) that is an integer up to rounding is written as that integer. */
const wholeIfClose = (x: number) => (Math.abs(x - Math.round(x)) <= 1e-9 * Math.abs(x) ? Math.round(x) : x);

/** config.json `quantization` for a resolved quantization spec (or none). */
export function quantizationConfig(spec: QuantSpec | undefined, low: LoweredModel, pp: number): Record<string, JsonValue> {
  const config: Record<string, JsonValue> = {
    quant_algo: spec?.weight ? WEIGHT_SCHEMES[spec.weight].quantAlgo : null,
    kv_cache_quant_algo: spec?.kv ? KV_CACHE_SCHEMES[spec.kv].kvCacheQuantAlgo : null,
  };
  // Group-wise INT4 from AWQ/GPTQ: zero points, no AWQ pre-quant scale (AutoAWQ folds its smoothing into the
  // preceding layers; GPTQ has none), the checkpoint's group size (QuantConfig fields, models/modeling_utils.py).
  const int4 = spec?.prequant?.int4;
  const groupwise: Record<string, JsonValue> = int4 ? { group_size: int4.groupSize, has_zero_point: true, pre_quant_scale: false } : {};
  return spec?.weight ? { ...config, ...groupwise, exclude_modules: excludeModules(spec, low.graph, low.numLayers, pp) } : config;
}

/** MoeConfig.to_dict() (tensorrt_llm/layers/moe.py @ c388fec7); normalization_mode is the IntEnum's integer, as
 *  asdict writes it (a string would silently route as NONE). */
export function moeConfigDict(m: MoeFacts, shared = 0): Record<string, JsonValue> {
  return {
    num_experts: m.numExperts,
    shared_expert_intermediate_size: shared,
    top_k: m.topK,
    normalization_mode: m.normalization === "renormalize" ? 1 : 0,
    sparse_mixer_epsilon: 0.01,
    tp_mode: 0,
    device_limited_n_group: 0,
    device_limited_topk_group: 0,
    device_limited_routed_scaling_factor: 1.0,
  };
}

/** Fields the built-in classes read for MoE layers: LLaMAConfig.moe (Mixtral, with the gated name "swiglu" that
 *  LLaMAConfig.from_hugging_face writes for it) and QWenConfig's qwen2_moe fields (models/qwen/config.py @ 373970a8;
 *  QWenDecoderLayer copies moe_shared_expert_intermediate_size into the MoeConfig and reads no per-layer lists). */
function moeFields(family: BuiltinFamily, m: MoeFacts, hf: Readonly<Record<string, unknown>>): Record<string, JsonValue> {
  if (family === "llama") return { hidden_act: "swiglu", moe: moeConfigDict(m) };
  return {
    qwen_type: "qwen2_moe",
    hidden_act: "swiglu",
    intermediate_size: typeof hf.intermediate_size === "number" ? hf.intermediate_size : m.expertInter,
    moe_intermediate_size: m.expertInter,
    moe_shared_expert_intermediate_size: m.sharedInter,
    mlp_only_layers: [],
    decoder_sparse_step: 1,
    moe: moeConfigDict(m),
  };
}

export function pretrainedConfig(low: LoweredModel, architecture: string, family: BuiltinFamily | undefined, o: ConfigOptions): Record<string, JsonValue> {
  const f = decoderFacts(low, o.hf);
  const a = f.att;
  const headDim = a.headDim as number;
  const common: Record<string, JsonValue> = {
    architecture,
    dtype: o.dtype,
    logits_dtype: "float32",
    vocab_size: f.vocab,
    hidden_size: f.hidden,
    num_hidden_layers: low.numLayers,
    num_attention_heads: a.heads!,
    num_key_value_heads: a.kvHeads!,
    head_size: headDim,
    intermediate_size: f.intermediate,
    hidden_act: family === "gpt" && f.act === "gelu_tanh" && a.rope === "none" ? "gelu_new" : ACT_NAMES[f.act]!,
    norm_epsilon: f.norm?.attrs.eps ?? 1e-5,
    position_embedding_type: POSITION_TYPES[a.rope as string]!,
    max_position_embeddings: f.maxPositions,
    rotary_base: a.ropeTheta!,
    rotary_scaling: trtRotaryScaling(a.ropeScaling!),
    ...(a.rope !== "none" && { rotary_pct: (a.rotaryDim as number) / headDim, rotary_dim: a.rotaryDim! }),
    mapping: {
      world_size: o.mapping.tp * o.mapping.pp,
      tp_size: o.mapping.tp,
      pp_size: o.mapping.pp,
      ...(f.moe && { moe_tp_size: moeSizes(o.mapping).moeTp, moe_ep_size: moeSizes(o.mapping).moeEp }),
    },
    quantization: o.quantization ?? { quant_algo: null, kv_cache_quant_algo: null },
  };
  const extras: Record<BuiltinFamily, Record<string, JsonValue>> = {
    llama: { attn_bias: a.qkvBias!, mlp_bias: f.mlpBias },
    // QWenConfig (tensorrt_llm/models/qwen/config.py @ 0428c188): qwen_type picks the variant; attn_bias is the q/k/v bias.
    qwen: { qwen_type: "qwen2", attn_bias: a.qkvBias!, mlp_bias: f.mlpBias, tie_word_embeddings: o.hf.tie_word_embeddings === true },
    // GPTConfig (models/gpt/config.py @ 6b25e1e0): one bias flag; rotary models are the starcoder2 variant.
    gpt: { gpt_variant: a.rope === "none" ? "gpt2" : "starcoder2", bias: a.qkvBias!, q_scaling: 1.0 },
    gptj: { rotary_dim: a.rotaryDim! },
    // GPTNeoXDecoderLayer reads rotary_emb_base and rotary_pct (examples/models/contrib/gptneox/convert_checkpoint.py
    // @ 2a9abd95 writes exactly these).
    // GemmaConfig (models/gemma/config.py @ 9df6d722): attn_bias/mlp_bias, hidden_act verbatim from HF, and
    // use_parallel_embedding = tp_size > 1 (sharded by vocab rows), which the rank files follow.
    gemma: {
      attn_bias: a.qkvBias!,
      mlp_bias: f.mlpBias,
      hidden_act: f.act === "gelu_tanh" ? "gelu_pytorch_tanh" : ACT_NAMES[f.act]!,
      use_parallel_embedding: o.mapping.tp > 1,
      embedding_sharding_dim: 0,
    },
    // Phi3Config (models/phi3/config.py @ 1e6a4f97): silu becomes swiglu (one fused fc), rotary_pct is
    // partial_rotary_factor, tie_word_embeddings decides whether the converter copies the embedding into lm_head.
    phi3: { hidden_act: "swiglu", tie_word_embeddings: o.hf.tie_word_embeddings === true },
    // Gemma 2: GemmaConfig's gemma2 group (Gemma2ConfigGroup keys; query_pre_attn_scalar from the softmax scale
    // 1 / sqrt(query_pre_attn_scalar), the attention and final logit caps, null when absent).
    gemma2: {
      attn_bias: a.qkvBias!,
      mlp_bias: f.mlpBias,
      hidden_act: f.act === "gelu_tanh" ? "gelu_pytorch_tanh" : ACT_NAMES[f.act]!,
      use_parallel_embedding: o.mapping.tp > 1,
      embedding_sharding_dim: 0,
      query_pre_attn_scalar: wholeIfClose(1 / ((a.scale as number) * (a.scale as number))),
      attn_logit_softcapping: (a.softcap as number) || null,
      final_logit_softcapping: (low.graph.nodes.find((n) => n.op === "trtllm.lm_head")?.attrs.softcap as number | undefined) || null,
    },
    gptneox: { rotary_emb_base: a.ropeTheta!, rotary_pct: (a.rotaryDim as number) / headDim },
  };
  return { ...common, ...(family ? extras[family] : {}), ...(family && f.moe ? moeFields(family, f.moe, o.hf) : {}) };
}
