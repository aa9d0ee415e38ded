// Qwen2-MoE (Qwen1.5-MoE): a Qwen2-style decoder (q/k/v biases per `qkv_bias`, no o bias) whose sparse layers are a
// mixture of experts: a softmax router picks each token's top `num_experts_per_tok` of `num_experts` SwiGLU experts
// of width `moe_intermediate_size`, weighted by their scores (renormalized only with `norm_topk_prob`), plus an
// always-on shared expert of width `shared_expert_intermediate_size` scaled by sigmoid(shared_expert_gate(x))
// (Qwen2MoeSparseMoeBlock in transformers/models/qwen2_moe/modeling_qwen2_moe.py @ v5.17.0). Layer i is sparse unless
// it is in `mlp_only_layers` or (i + 1) is not a multiple of `decoder_sparse_step`; dense layers are a GatedMLP of
// width `intermediate_size`. Checkpoints name experts mlp.experts.E.{gate,up,down}_proj, stacked by the weight map.

import { defineModel, GatedMLP, HFSlidingWindowFields, MoE, slidingWindowsFromHF, src, type WeightExpr, z } from "kiln";
import { createLlama, LLAMA_FIELDS, llamaConfigFrom, llamaWeights } from "./llama.ts";
import { moeActivation, stackExperts } from "./mixtral.ts";

export const QWEN_MOE_FIELDS = {
  ...LLAMA_FIELDS,
  ...HFSlidingWindowFields,
  // Qwen2MoeConfig writes sliding_window 0 when use_sliding_window is false.
  sliding_window: z.number().int().nonnegative().nullish(),
  num_experts_per_tok: z.number().int().positive(),
  moe_intermediate_size: z.number().int().positive(),
  norm_topk_prob: z.boolean().default(false),
  decoder_sparse_step: z.number().int().positive().default(1),
  mlp_only_layers: z.array(z.number().int().nonnegative()).default([]),
};

type QwenMoeFields = z.output<z.ZodObject<typeof QWEN_MOE_FIELDS>>;

/** Kiln's config for a Qwen MoE decoder from the parsed HF fields (Qwen2-MoE and Qwen3-MoE share it). */
export function qwenMoeConfigFrom(c: QwenMoeFields, o: { numExperts: number; sharedFfn?: number; qkvBias: boolean }) {
  return {
    ...llamaConfigFrom(c, slidingWindowsFromHF({ ...c, sliding_window: c.sliding_window || null }, c.num_hidden_layers)),
    qkvBias: o.qkvBias,
    outBias: false,
    numExperts: o.numExperts,
    topK: c.num_experts_per_tok,
    expertFfn: c.moe_intermediate_size,
    sharedFfn: o.sharedFfn,
    normalizeTopK: c.norm_topk_prob,
    // Qwen2MoeDecoderLayer's choice of block (modeling_qwen2_moe.py @ v5.17.0; Qwen3-MoE's is the same).
    sparse: Array.from({ length: c.num_hidden_layers }, (_, i) => !c.mlp_only_layers.includes(i) && (i + 1) % c.decoder_sparse_step === 0),
  };
}

const Qwen2MoeConfig = z
  .looseObject({
    ...QWEN_MOE_FIELDS,
    qkv_bias: z.boolean().default(true),
    num_experts: z.number().int().positive(),
    shared_expert_intermediate_size: z.number().int().positive(),
  })
  .transform((c) => qwenMoeConfigFrom(c, { numExperts: c.num_experts, sharedFfn: c.shared_expert_intermediate_size, qkvBias: c.qkv_bias }));

export type Qwen2MoeConfig = ReturnType<typeof qwenMoeConfigFrom>;

/** Qwen2-MoE's decoder; Qwen3-MoE (models/qwen3_moe.ts) reuses it without a shared expert and with QK-norm. */
export function createQwenMoe(c: Qwen2MoeConfig) {
  const moe = () =>
    new MoE({
      hidden: c.hidden,
      expertFfn: c.expertFfn,
      numExperts: c.numExperts,
      topK: c.topK,
      normalizeTopK: c.normalizeTopK,
      activation: moeActivation(c.act),
      ...(c.sharedFfn !== undefined && { sharedFfn: c.sharedFfn, sharedExpertGate: true }),
    });
  return createLlama<MoE | GatedMLP>(c, (i) => (c.sparse[i] ? moe() : new GatedMLP(c.hidden, c.ffn, c.act)));
}

/** HF Qwen2MoeForCausalLM tensor names -> Kiln parameters: LLaMA's, with the MoE block on sparse layers. */
export function qwenMoeWeights(c: Qwen2MoeConfig) {
  const { map, ignore } = llamaWeights(c);
  const sparseLayer = (k: string) => c.sparse[Number(/^layers\.(\d+)\.mlp\./.exec(k)?.[1] ?? -1)] === true;
  const kept = Object.fromEntries(Object.entries(map).filter(([k]) => !sparseLayer(k)));
  const moe: Record<string, WeightExpr> = {};
  c.sparse.forEach((sparse, i) => {
    if (!sparse) return;
    const [k, hf] = [`layers.${i}.mlp`, `model.layers.${i}.mlp`];
    moe[`${k}.router.weight`] = src(`${hf}.gate.weight`);
    moe[`${k}.experts.gate`] = stackExperts(c.numExperts, c.expertFfn, c.hidden, (e) => `${hf}.experts.${e}.gate_proj.weight`);
    moe[`${k}.experts.up`] = stackExperts(c.numExperts, c.expertFfn, c.hidden, (e) => `${hf}.experts.${e}.up_proj.weight`);
    moe[`${k}.experts.down`] = stackExperts(c.numExperts, c.hidden, c.expertFfn, (e) => `${hf}.experts.${e}.down_proj.weight`);
    if (c.sharedFfn === undefined) return;
    for (const p of ["gate", "up", "down"]) moe[`${k}.shared.${p}.weight`] = src(`${hf}.shared_expert.${p}_proj.weight`);
    moe[`${k}.sharedExpertGate.weight`] = src(`${hf}.shared_expert_gate.weight`);
  });
  return { map: { ...kept, ...moe }, ignore };
}

export default defineModel({
  name: "qwen2_moe",
  architectures: ["Qwen2MoeForCausalLM"],
  config: Qwen2MoeConfig,
  create: createQwenMoe,
  weights: qwenMoeWeights,
});
