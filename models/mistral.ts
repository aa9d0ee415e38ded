// Mistral: a LLaMA-style decoder (RMSNorm, rotary GQA attention, SwiGLU MLP) whose attention sees only the last
// `sliding_window` tokens on every layer (or per `layer_types` where a config lists them). Reads HF
// `MistralForCausalLM` configs in transformers 4.x and 5.x form; the checkpoint names are LLaMA's.
// TensorRT-LLM 1.2.1 builds it with its LLaMA class; the window is given at runtime (max_attention_window_size).

import { defineModel, HFSlidingWindowFields, slidingWindowsFromHF, z } from "kiln";
import { createLlama, LLAMA_FIELDS, llamaConfigFrom, llamaWeights } from "./llama.ts";

const MistralConfig = z
  .looseObject({ ...LLAMA_FIELDS, ...HFSlidingWindowFields })
  .transform((c) => llamaConfigFrom(c, slidingWindowsFromHF(c, c.num_hidden_layers)));

export default defineModel({
  name: "mistral",
  architectures: ["MistralForCausalLM"],
  config: MistralConfig,
  create: createLlama,
  weights: llamaWeights,
});
