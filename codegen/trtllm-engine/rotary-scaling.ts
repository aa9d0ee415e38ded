// The rotary scaling dict of an engine checkpoint's config.json (`rotary_scaling`), as TensorRT-LLM 1.2.1's Attention
// reads it: the type under "type" (RotaryScalingType.from_string), the factor under "factor", and for yarn the HF key
// names beta_fast / beta_slow / mscale / mscale_all_dim / original_max_position_embeddings, from which
// create_attention_const_params derives the attention factor itself (layers/attention.py @ 89fd9b74). A scaling that
// 1.2.1 cannot take this way is a one-line error naming the type and why.
// Invariant: pure; the result is JSON.

import type { JsonValue } from "../../src/ir/attrs.ts";
import type { KilnRopeScaling } from "../../src/weights/hf-config.ts";
import { TargetError } from "../common/target.ts";

/** YaRN's mscale as TensorRT-LLM computes it (RopeEmbeddingUtils.create_sinusoidal_positions_yarn's get_mscale). */
const mscaleOf = (scale: number, mscale: number) => (scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1);

export function engineRotaryScaling(s: JsonValue): JsonValue {
  if (s === null || typeof s !== "object" || Array.isArray(s)) return null;
  const r = s as unknown as KilnRopeScaling;
  switch (r.type) {
    case "linear":
      return { type: "linear", factor: r.factor };
    case "llama3":
      return {
        type: "llama3",
        rope_type: "llama3",
        factor: r.factor,
        low_freq_factor: r.lowFreqFactor,
        high_freq_factor: r.highFreqFactor,
        original_max_position_embeddings: r.originalMaxPositionEmbeddings,
      };
    case "dynamic":
      // RotaryScalingType.dynamic: the attention plugin grows the base with the sequence length at run time
      // (cpp/tensorrt_llm/kernels/gptKernels.cu @ 097f4cf1, update_rotary_base_n_scale), ignoring the model's table.
      // 1.2.1 still builds that table, from "alpha" (Hunyuan's NTK-alpha base; create_sinusoidal_positions_for_
      // attention_plugin in functional.py @ 0071496d), and fails with a KeyError without it: alpha 1 keeps it the
      // plain base table, which the kernel does not read.
      return { type: "dynamic", factor: r.factor, alpha: 1 };
    case "yarn": {
      // 1.2.1 derives the attention factor as get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim) with
      // defaults mscale 1, mscale_all_dim 0; an explicit HF attention_factor it would not reproduce is refused.
      const mscale = r.mscale || 1;
      const derived = mscaleOf(r.factor, mscale) / mscaleOf(r.factor, r.mscaleAllDim);
      if (Math.abs(derived - r.attentionFactor) > 1e-6 * r.attentionFactor)
        throw new TargetError(
          `rope scaling 'yarn': attention factor ${r.attentionFactor} is not what TensorRT-LLM 1.2.1 derives from mscale/mscale_all_dim (${derived}); the engine target cannot take it`,
        );
      if (!r.truncate) throw new TargetError("rope scaling 'yarn' with truncate: false is not something TensorRT-LLM 1.2.1 takes (it always truncates)");
      return {
        type: "yarn",
        rope_type: "yarn",
        factor: r.factor,
        original_max_position_embeddings: r.originalMaxPositionEmbeddings,
        beta_fast: r.betaFast,
        beta_slow: r.betaSlow,
        mscale,
        mscale_all_dim: r.mscaleAllDim,
      };
    }
    case "longrope":
      throw new TargetError(
        "rope scaling 'longrope' is not supported by the engine target: TensorRT-LLM 1.2.1 takes it only as position_embedding_type long_rope with Phi-3's own config keys (longrope_scaling_short_factors, ...), which Kiln does not write yet",
      );
  }
}
