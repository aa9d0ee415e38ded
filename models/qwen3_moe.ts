// Qwen3-MoE: Qwen3's attention (per-head QK-norm before rotary, no attention biases, explicit head_dim) with
// Qwen2-MoE's sparse feed-forward minus the shared expert: a softmax router picks each token's top
// `num_experts_per_tok` experts of width `moe_intermediate_size`, weights renormalized with `norm_topk_prob`
// (Qwen3MoeSparseMoeBlock in transformers/models/qwen3_moe/modeling_qwen3_moe.py @ v5.17.0). transformers 5.17 writes
// the expert count as `num_local_experts`, older configs as `num_experts`; both are read. Checkpoint names are
// Qwen2-MoE's (mlp.gate, mlp.experts.E.{gate,up,down}_proj) plus q_norm / k_norm.

import { defineModel, z } from "kiln";
import { createQwenMoe, QWEN_MOE_FIELDS, qwenMoeConfigFrom, qwenMoeWeights } from "./qwen2_moe.ts";

const Qwen3MoeConfig = z
  .looseObject({
    ...QWEN_MOE_FIELDS,
    attention_bias: z.boolean().default(false),
    num_experts: z.number().int().positive().optional(),
    num_local_experts: z.number().int().positive().optional(),
  })
  .refine((c) => (c.num_experts ?? c.num_local_experts) !== undefined, "config.json has neither num_experts nor num_local_experts")
  .transform((c) => ({
    ...qwenMoeConfigFrom(c, { numExperts: (c.num_experts ?? c.num_local_experts)!, qkvBias: c.attention_bias }),
    // Qwen3MoeAttention: o_proj bias = attention_bias too; q_norm / k_norm over head_dim.
    outBias: c.attention_bias,
    qkNorm: true,
  }));

export default defineModel({
  name: "qwen3_moe",
  architectures: ["Qwen3MoeForCausalLM"],
  config: Qwen3MoeConfig,
  create: createQwenMoe,
  weights: qwenMoeWeights,
});
