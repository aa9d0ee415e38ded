// Phi-3 / Phi-3.5 / Phi-4-mini: a LLaMA-style decoder whose checkpoint fuses the attention projections (`qkv_proj`:
// q rows, then k, then v) and the MLP's gate and up projections (`gate_up_proj`: gate first, the activated half),
// with optional partial rotary (`partial_rotary_factor`) and sliding window. Reads HF `Phi3ForCausalLM` configs in
// transformers 4.x and 5.x form, including long-context LongRoPE scaling (rope type "longrope", or "su" / "yarn",
// which Phi3Config reads as longrope: configuration_phi3.py @ transformers 5.17).

import { defineModel, HFSlidingWindowFields, perLayer, ropeFromHF, rotaryDimFromHF, slice, slidingWindowsFromHF, src, z } from "kiln";
import { createLlama, LLAMA_FIELDS, type LlamaConfig, llamaConfigFrom } from "./llama.ts";

const Phi3Config = z.looseObject({ ...LLAMA_FIELDS, ...HFSlidingWindowFields, tie_word_embeddings: z.boolean().default(false) }).transform((c) => {
  const base = llamaConfigFrom(c, slidingWindowsFromHF(c, c.num_hidden_layers));
  return { ...base, rope: ropeFromHF(c, 10000, { su: "longrope", yarn: "longrope" }), rotaryDim: rotaryDimFromHF(c, base.headDim) };
});

/** HF Phi3ForCausalLM tensor names -> Kiln parameters (the fused projections split by rows). */
function phi3Weights(c: LlamaConfig) {
  const [q, kv] = [c.heads * c.headDim, c.kvHeads * c.headDim];
  const map = {
    "embed.weight": src("model.embed_tokens.weight"),
    ...perLayer(c.layers, (i) => {
      const [k, hf] = [`layers.${i}`, `model.layers.${i}`];
      const qkv = src(`${hf}.self_attn.qkv_proj.weight`);
      const gateUp = src(`${hf}.mlp.gate_up_proj.weight`);
      return {
        [`${k}.inputNorm.weight`]: src(`${hf}.input_layernorm.weight`),
        [`${k}.attn.q.weight`]: slice(qkv, 0, 0, q),
        [`${k}.attn.k.weight`]: slice(qkv, 0, q, q + kv),
        [`${k}.attn.v.weight`]: slice(qkv, 0, q + kv, q + 2 * kv),
        [`${k}.attn.o.weight`]: src(`${hf}.self_attn.o_proj.weight`),
        [`${k}.postNorm.weight`]: src(`${hf}.post_attention_layernorm.weight`),
        // Phi3MLP: gate, up = gate_up_proj(x).chunk(2); up * act(gate) (modeling_phi3.py @ transformers 5.17).
        [`${k}.mlp.gate.weight`]: slice(gateUp, 0, 0, c.ffn),
        [`${k}.mlp.up.weight`]: slice(gateUp, 0, c.ffn, 2 * c.ffn),
        [`${k}.mlp.down.weight`]: src(`${hf}.mlp.down_proj.weight`),
      };
    }),
    "norm.weight": src("model.norm.weight"),
    ...(!c.tied && { "lmHead.weight": src("lm_head.weight") }),
  };
  return { map, ignore: [...(c.tied ? ["lm_head.weight"] : []), "*.rotary_emb.inv_freq"] };
}

export default defineModel({
  name: "phi3",
  architectures: ["Phi3ForCausalLM"],
  config: Phi3Config,
  create: createLlama,
  weights: phi3Weights,
});
