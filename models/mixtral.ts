// Mixtral: a Mistral-style decoder (RMSNorm, rotary GQA attention, optional sliding window) whose feed-forward block
// is a sparse mixture of experts: a softmax router picks each token's top `num_experts_per_tok` of
// `num_local_experts` SwiGLU experts and sums their outputs weighted by the renormalized top-k scores
// (MixtralSparseMoeBlock in transformers/models/mixtral/modeling_mixtral.py @ v5.17.0). Reads HF
// `MixtralForCausalLM` configs; checkpoints name the experts block_sparse_moe.experts.E.w1 (gate), w3 (up) and
// w2 (down), which the weight map stacks into the MoE module's [E, ...] tensors.

import { concat, defineModel, HFSlidingWindowFields, MoE, type MoeSpec, reshape, slidingWindowsFromHF, src, type WeightExpr, z } from "kiln";
import { createLlama, LLAMA_FIELDS, llamaConfigFrom, llamaWeights } from "./llama.ts";

/** The MoE op's activation for an HF hidden_act (the gated experts support these four). */
export function moeActivation(hiddenAct: string): MoeSpec["activation"] {
  const acts: Record<string, MoeSpec["activation"]> = {
    silu: "silu",
    swish: "silu",
    gelu: "gelu",
    gelu_new: "gelu_tanh",
    gelu_pytorch_tanh: "gelu_tanh",
    gelu_fast: "gelu_tanh",
    relu: "relu",
  };
  const act = acts[hiddenAct];
  if (!act) throw new Error(`hidden_act '${hiddenAct}' is not supported for mixture-of-experts layers (supported: ${Object.keys(acts).join(", ")})`);
  return act;
}

/** Stacks per-expert HF tensors ([rows, cols] each) into one [E, rows, cols] tensor. */
export function stackExperts(numExperts: number, rows: number, cols: number, name: (e: number) => string): WeightExpr {
  return reshape(concat(0, ...Array.from({ length: numExperts }, (_, e) => src(name(e)))), [numExperts, rows, cols]);
}

const MixtralConfig = z
  .looseObject({
    ...LLAMA_FIELDS,
    ...HFSlidingWindowFields,
    num_local_experts: z.number().int().positive(),
    num_experts_per_tok: z.number().int().positive(),
  })
  .transform((c) => ({
    ...llamaConfigFrom(c, slidingWindowsFromHF(c, c.num_hidden_layers)),
    numExperts: c.num_local_experts,
    topK: c.num_experts_per_tok,
  }));

export type MixtralConfig = z.output<typeof MixtralConfig>;

function createMixtral(c: MixtralConfig) {
  const spec = { hidden: c.hidden, expertFfn: c.ffn, numExperts: c.numExperts, topK: c.topK, normalizeTopK: true, activation: moeActivation(c.act) };
  return createLlama(c, () => new MoE(spec));
}

/** HF MixtralForCausalLM tensor names -> Kiln parameters: LLaMA's, with the MoE block instead of the MLP. */
function mixtralWeights(c: MixtralConfig) {
  const { map, ignore } = llamaWeights(c);
  const dense = Object.fromEntries(Object.entries(map).filter(([k]) => !/^layers\.\d+\.mlp\./.test(k)));
  const moe: Record<string, WeightExpr> = {};
  for (let i = 0; i < c.layers; i++) {
    const hf = `model.layers.${i}.block_sparse_moe`;
    moe[`layers.${i}.mlp.router.weight`] = src(`${hf}.gate.weight`);
    moe[`layers.${i}.mlp.experts.gate`] = stackExperts(c.numExperts, c.ffn, c.hidden, (e) => `${hf}.experts.${e}.w1.weight`);
    moe[`layers.${i}.mlp.experts.up`] = stackExperts(c.numExperts, c.ffn, c.hidden, (e) => `${hf}.experts.${e}.w3.weight`);
    moe[`layers.${i}.mlp.experts.down`] = stackExperts(c.numExperts, c.hidden, c.ffn, (e) => `${hf}.experts.${e}.w2.weight`);
  }
  return { map: { ...dense, ...moe }, ignore };
}

export default defineModel({
  name: "mixtral",
  architectures: ["MixtralForCausalLM"],
  config: MixtralConfig,
  create: createMixtral,
  weights: mixtralWeights,
});
