// Qwen3 (dense): a LLaMA-style decoder whose attention normalizes each query and key head with an RMSNorm over
// head_dim before the rotary embedding (QK-norm; HF q_norm / k_norm), without attention biases, with head_dim given
// explicitly, and an optional sliding window per `layer_types`. Reads HF `Qwen3ForCausalLM` configs in transformers
// 4.x and 5.x form. TensorRT-LLM 1.2.1: see docs/models.md for the class used.

import { defineModel, HFSlidingWindowFields, slidingWindowsFromHF, z } from "kiln";
import { createLlama, LLAMA_FIELDS, llamaConfigFrom, llamaWeights } from "./llama.ts";

const Qwen3Config = z
  .looseObject({ ...LLAMA_FIELDS, ...HFSlidingWindowFields })
  // Qwen3Attention: q_norm / k_norm = Qwen3RMSNorm(head_dim, eps=rms_norm_eps) (modeling_qwen3.py @ transformers 5.17).
  .transform((c) => ({ ...llamaConfigFrom(c, slidingWindowsFromHF(c, c.num_hidden_layers)), qkNorm: true }));

export default defineModel({
  name: "qwen3",
  architectures: ["Qwen3ForCausalLM"],
  config: Qwen3Config,
  create: createLlama,
  weights: llamaWeights,
});
