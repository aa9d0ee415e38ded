// build_config.json: TensorRT-LLM's BuildConfig (as BuildConfig.from_dict reads it) with a PluginConfig derived from
// the model's hints: GPT attention plugin (required for paged KV cache, in-flight batching and removed input
// padding), GEMM plugin, context FMHA, fused MLP. Field names are those of TensorRT-LLM 1.2.1's dataclasses.
// BuildConfig.from_dict pops max_input_len, max_seq_len, max_batch_size, max_beam_width, max_num_tokens and
// opt_num_tokens without defaults, and kv_cache_type whenever plugin_config is present (KVCacheType.from_string of
// the enum name, as BuildConfig.to_dict writes it), so all of them are always written.

import type { Hints } from "../../src/dsl/hints.ts";
import type { JsonValue } from "../../src/ir/attrs.ts";
import type { TrtDtype } from "./pretrained-config.ts";

export interface BuildOptions {
  readonly dtype: TrtDtype;
  readonly maxSeqLen: number;
  readonly maxBatchSize?: number;
  readonly maxInputLen?: number;
  readonly maxNumTokens?: number;
}

const pluginValue = (v: string | false | undefined, dtype: TrtDtype, dflt: string | null): JsonValue =>
  v === false ? null : v === undefined ? dflt : v === "auto" ? dtype : v;

export function buildConfig(hints: Hints, o: BuildOptions): Record<string, JsonValue> {
  const p = hints.plugins ?? {};
  const gptAttention = pluginValue(p.gptAttention, o.dtype, "auto");
  const paged = (p.pagedKvCache ?? true) && gptAttention !== null;
  return {
    max_input_len: Math.min(o.maxInputLen ?? 1024, o.maxSeqLen),
    max_seq_len: o.maxSeqLen,
    max_batch_size: o.maxBatchSize ?? 8,
    max_beam_width: 1,
    max_num_tokens: o.maxNumTokens ?? 8192,
    opt_num_tokens: null,
    opt_batch_size: 8,
    kv_cache_type: paged ? "PAGED" : "CONTINUOUS",
    strongly_typed: true,
    plugin_config: {
      dtype: o.dtype,
      gpt_attention_plugin: gptAttention,
      gemm_plugin: pluginValue(p.gemm, o.dtype, null),
      context_fmha: (p.contextFmha ?? true) && gptAttention !== null,
      remove_input_padding: (p.removeInputPadding ?? true) && gptAttention !== null,
      use_fused_mlp: p.fusedMlp ?? hints.fuse?.gatedMlp ?? true,
    },
  };
}
