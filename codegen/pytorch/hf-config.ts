// Hugging Face-standard config.json keys derived from a lowered graph: what transformers, TensorRT-LLM's PyTorch
// backend (KV-cache sizing, RopeParams.from_config) and other HF tooling read by name. Token ids come from the
// source config so generation stops where the original model's does. Values the graph does not hold
// (max_position_embeddings without a position table) come from the source config.
// Invariants: only JSON values; rope_scaling uses HF's own key names (rope_type, factor, low_freq_factor, ...).

import type { JsonValue } from "../../src/ir/attrs.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { layerWindows } from "../common/attention-windows.ts";
import { decoderFacts } from "../common/decoder-facts.ts";
import { type OutputDtype, TargetError } from "../common/target.ts";

/** Kiln activation -> transformers ACT2FN name. */
export const HF_ACT_NAMES: Record<string, string> = { silu: "silu", relu: "relu", gelu: "gelu", gelu_tanh: "gelu_pytorch_tanh" };

/** The graph's rope_scaling attribute in HF's form (transformers 4.x `rope_scaling`). */
export function hfRopeScaling(s: JsonValue | undefined): JsonValue {
  if (s === null || s === undefined || typeof s !== "object" || Array.isArray(s)) return null;
  const o = s as Record<string, JsonValue>;
  if (o.type === "linear") return { rope_type: "linear", factor: o.factor! };
  if (o.type === "dynamic") return { rope_type: "dynamic", factor: o.factor! };
  // yarn and longrope with every derived value resolved (attention_factor included), in transformers' key names.
  if (o.type === "yarn")
    return {
      rope_type: "yarn",
      factor: o.factor!,
      original_max_position_embeddings: o.originalMaxPositionEmbeddings!,
      beta_fast: o.betaFast!,
      beta_slow: o.betaSlow!,
      truncate: o.truncate!,
      attention_factor: o.attentionFactor!,
    };
  if (o.type === "longrope")
    return {
      rope_type: "longrope",
      short_factor: o.shortFactor!,
      long_factor: o.longFactor!,
      original_max_position_embeddings: o.originalMaxPositionEmbeddings!,
      attention_factor: o.attentionFactor!,
    };
  return {
    rope_type: "llama3",
    factor: o.factor!,
    low_freq_factor: o.lowFreqFactor!,
    high_freq_factor: o.highFreqFactor!,
    original_max_position_embeddings: o.originalMaxPositionEmbeddings!,
  };
}

const TOKEN_KEYS = ["bos_token_id", "eos_token_id", "pad_token_id"] as const;

/**
 * A special-token id from config.json, as the output's config.json and generation config carry it: null, an integer,
 * or a non-empty list of integers. Anything else is a one-line TargetError naming the field, instead of being copied
 * through unread. The value is not checked against the vocabulary: small test models keep their parent's ids (GPT-2's
 * 50256 with a 512-token vocabulary), and transformers accepts them.
 */
export function checkTokenId(key: string, value: unknown): JsonValue {
  const ok = (v: unknown) => Number.isSafeInteger(v);
  if (value === null || ok(value) || (Array.isArray(value) && value.length > 0 && value.every(ok))) return value as JsonValue;
  throw new TargetError(`config.json: ${key} must be a token id (an integer) or a list of them, got ${JSON.stringify(value)?.slice(0, 80)}`);
}

export function hfStandardConfig(low: LoweredModel, hf: Readonly<Record<string, unknown>>, dtype: OutputDtype): Record<string, JsonValue> {
  const f = decoderFacts(low, hf);
  const a = f.att;
  const headDim = a.headDim as number;
  const rope = a.rope !== "none";
  const windows = layerWindows(low.graph);
  const tokens = Object.fromEntries(TOKEN_KEYS.filter((k) => hf[k] !== undefined).map((k) => [k, checkTokenId(k, hf[k])]));
  return {
    vocab_size: f.vocab,
    hidden_size: f.hidden,
    intermediate_size: f.intermediate,
    num_hidden_layers: low.numLayers,
    num_attention_heads: a.heads!,
    num_key_value_heads: a.kvHeads!,
    head_dim: headDim,
    hidden_act: HF_ACT_NAMES[f.act]!,
    max_position_embeddings: f.maxPositions,
    ...(f.norm?.op === "rms_norm" ? { rms_norm_eps: f.norm.attrs.eps } : { layer_norm_epsilon: f.norm?.attrs.eps ?? 1e-5 }),
    ...(rope && { rope_theta: a.ropeTheta!, rope_scaling: hfRopeScaling(a.ropeScaling) }),
    ...(rope && a.rotaryDim !== headDim && { rotary_dim: a.rotaryDim!, partial_rotary_factor: (a.rotaryDim as number) / headDim }),
    // Per-layer sliding windows (0 = global), read by the generated attention layers.
    ...(windows && { kiln_attention_windows: windows }),
    attention_bias: a.qkvBias!,
    mlp_bias: f.mlpBias,
    tie_word_embeddings: false,
    initializer_range: 0.02,
    use_cache: true,
    ...tokens,
    torch_dtype: dtype,
  };
}
