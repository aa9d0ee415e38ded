// Gemma (1): a LLaMA-style decoder with three differences — embeddings are multiplied by sqrt(hidden_size), every
// RMSNorm scales by (1 + w) (the checkpoint stores w - 1), and the gated MLP uses the tanh GELU — plus head_dim
// given explicitly and tied embeddings. Reads HF `GemmaForCausalLM` configs in transformers 4.x and 5.x form
// (`hidden_activation` of 4.x wins over `hidden_act`, as transformers 4.x's GemmaMLP did).

import { ACTIVATION_NAMES, defineModel, z } from "kiln";
import { createLlama, LLAMA_FIELDS, llamaConfigFrom, llamaWeights } from "./llama.ts";

const GemmaConfig = z
  .looseObject({
    ...LLAMA_FIELDS,
    hidden_act: z.enum(ACTIVATION_NAMES).default("gelu_pytorch_tanh"),
    hidden_activation: z.enum(ACTIVATION_NAMES).nullish(),
    tie_word_embeddings: z.boolean().default(true),
  })
  // GemmaModel: hidden_states * hidden_size**0.5; GemmaRMSNorm: x_normed * (1.0 + weight) (modeling_gemma.py @
  // transformers 5.17).
  .transform((c) => ({ ...llamaConfigFrom(c), act: c.hidden_activation ?? c.hidden_act, normOffset: 1, embedScale: Math.sqrt(c.hidden_size) }));

export default defineModel({
  name: "gemma",
  architectures: ["GemmaForCausalLM"],
  config: GemmaConfig,
  create: createLlama,
  weights: llamaWeights,
});
