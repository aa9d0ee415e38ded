// LLaMA with the residual add and the post-attention RMSNorm of every decoder layer fused into one custom op
// (examples/fused_add_rms_norm): the model code is models/llama.ts unchanged; the model's own pass rewrites the traced
// graph, so it reads the same Hugging Face checkpoints and computes the same logits.

import { defineModel } from "kiln";
import llama from "../../models/llama.ts";
import { FUSE_ADD_RMS_NORM } from "../fused_add_rms_norm/op.ts";

export default defineModel({
  name: "llama_fused_norm",
  architectures: llama.architectures,
  config: llama.config,
  create: llama.create,
  weights: llama.weights,
  passes: [FUSE_ADD_RMS_NORM],
});
