// Qwen2 / Qwen2.5: a LLaMA-style decoder with biases on the q/k/v projections (none on the output projection),
// usually tied embeddings, and an optional sliding window on the layers from `max_window_layers` on (or per
// `layer_types`). Reads HF `Qwen2ForCausalLM` configs in transformers 4.x and 5.x form; the checkpoint names are
// LLaMA's. TensorRT-LLM 1.2.1 builds it with its QWen class (qwen2 variant).

import { defineModel, HFSlidingWindowFields, slidingWindowsFromHF, z } from "kiln";
import { createLlama, LLAMA_FIELDS, llamaConfigFrom, llamaWeights } from "./llama.ts";

const Qwen2Config = z
  .looseObject({ ...LLAMA_FIELDS, ...HFSlidingWindowFields })
  // Qwen2Attention: q/k/v_proj bias=True, o_proj bias=False (modeling_qwen2.py @ transformers 5.17).
  .transform((c) => ({ ...llamaConfigFrom(c, slidingWindowsFromHF(c, c.num_hidden_layers)), qkvBias: true, outBias: false }));

export default defineModel({
  name: "qwen2",
  architectures: ["Qwen2ForCausalLM"],
  config: Qwen2Config,
  create: createLlama,
  weights: llamaWeights,
});
