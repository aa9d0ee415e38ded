// Gemma 2: Gemma's decoder (sqrt(hidden) embedding scale, (1 + w) RMSNorms, tanh-GELU gated MLP, tied embeddings)
// with four norms per layer (input and post-attention norms around the attention, pre- and post-feedforward norms
// around the MLP, each post-norm applied to the block's output before the residual add), attention scaled by
// query_pre_attn_scalar**-0.5, attention-logit and final-logit soft-capping (cap * tanh(x / cap)) and alternating
// sliding (even layers) and global (odd layers) attention. Reads HF `Gemma2ForCausalLM` configs in transformers 4.x
// and 5.x form. Semantics: src/transformers/models/gemma2/modeling_gemma2.py @ transformers 5.17 (Gemma2DecoderLayer,
// eager_attention_forward, Gemma2ForCausalLM.forward); the 4.x default window pattern (no layer_types: layer i slides
// when i is even) from the same file @ 006e86931247d7bacf94ad00ada1fb6baf11e94b (Gemma2Attention.__init__).

import {
  ACTIVATION_NAMES,
  Attention,
  CausalLM,
  defineModel,
  Embedding,
  GatedMLP,
  HFSlidingWindowFields,
  Linear,
  Module,
  perLayer,
  RMSNorm,
  slidingWindowsFromHF,
  src,
  type Tensor,
  z,
} from "kiln";
import { LLAMA_FIELDS, llamaConfigFrom } from "./llama.ts";

const Gemma2Config = z
  .looseObject({
    ...LLAMA_FIELDS,
    ...HFSlidingWindowFields,
    hidden_act: z.enum(ACTIVATION_NAMES).default("gelu_pytorch_tanh"),
    hidden_activation: z.enum(ACTIVATION_NAMES).nullish(),
    tie_word_embeddings: z.boolean().default(true),
    query_pre_attn_scalar: z.number().positive().default(256),
    attn_logit_softcapping: z.number().positive().nullish(),
    final_logit_softcapping: z.number().positive().nullish(),
  })
  .transform((c) => {
    // Gemma2Config.__post_init__ (5.x) writes layer_types "sliding_attention" for even i; 4.x configs have none.
    const layerTypes = c.layer_types ?? Array.from({ length: c.num_hidden_layers }, (_, i) => (i % 2 === 0 ? "sliding_attention" : "full_attention"));
    return {
      ...llamaConfigFrom(c, slidingWindowsFromHF({ ...c, layer_types: layerTypes }, c.num_hidden_layers)),
      act: c.hidden_activation ?? c.hidden_act,
      // Gemma2Attention.scaling = query_pre_attn_scalar**-0.5.
      scale: c.query_pre_attn_scalar ** -0.5,
      attnSoftcap: c.attn_logit_softcapping ?? 0,
      finalSoftcap: c.final_logit_softcapping ?? 0,
    };
  });

type Gemma2Config = z.output<typeof Gemma2Config>;

/** Gemma2RMSNorm: x̂ * (1 + w), computed in float32. */
const norm = (c: Gemma2Config) => new RMSNorm(c.hidden, c.eps, { offset: 1 });

export class Gemma2Layer extends Module {
  readonly inputNorm: RMSNorm;
  readonly attn: Attention;
  readonly postAttnNorm: RMSNorm;
  readonly preMlpNorm: RMSNorm;
  readonly mlp: GatedMLP;
  readonly postMlpNorm: RMSNorm;

  constructor(c: Gemma2Config, window: number) {
    super();
    this.inputNorm = norm(c);
    this.attn = new Attention({
      hidden: c.hidden,
      heads: c.heads,
      kvHeads: c.kvHeads,
      headDim: c.headDim,
      qkvBias: c.qkvBias,
      outBias: c.outBias,
      rope: { style: "neox", rotaryDim: c.rotaryDim, theta: c.rope.theta, scaling: c.rope.scaling },
      scale: c.scale,
      window,
      softcap: c.attnSoftcap,
    });
    this.postAttnNorm = norm(c);
    this.preMlpNorm = norm(c);
    this.mlp = new GatedMLP(c.hidden, c.ffn, c.act);
    this.postMlpNorm = norm(c);
  }

  forward(x: Tensor, positions: Tensor): Tensor {
    const h = x.add(this.postAttnNorm.forward(this.attn.forward(this.inputNorm.forward(x), positions)));
    return h.add(this.postMlpNorm.forward(this.mlp.forward(this.preMlpNorm.forward(h))));
  }
}

function createGemma2(c: Gemma2Config): CausalLM<Gemma2Layer> {
  return new CausalLM({
    // Gemma2TextScaledWordEmbedding: embeddings * hidden_size**0.5.
    embed: new Embedding(c.vocab, c.hidden, { scale: Math.sqrt(c.hidden) }),
    layers: Array.from({ length: c.layers }, (_, i) => new Gemma2Layer(c, c.windows[i]!)),
    norm: norm(c),
    ...(!c.tied && { lmHead: new Linear(c.hidden, c.vocab) }),
    ...(c.finalSoftcap > 0 && { finalSoftcap: c.finalSoftcap }),
  });
}

/** HF Gemma2ForCausalLM tensor names -> Kiln parameters. */
function gemma2Weights(c: Gemma2Config) {
  const bias = (on: boolean, target: string, source: string) => (on ? { [target]: src(source) } : {});
  const map = {
    "embed.weight": src("model.embed_tokens.weight"),
    ...perLayer(c.layers, (i) => {
      const [k, hf] = [`layers.${i}`, `model.layers.${i}`];
      return {
        [`${k}.inputNorm.weight`]: src(`${hf}.input_layernorm.weight`),
        ...Object.assign(
          {},
          ...(["q", "k", "v", "o"] as const).map((p) => ({
            [`${k}.attn.${p}.weight`]: src(`${hf}.self_attn.${p}_proj.weight`),
            ...bias(p === "o" ? c.outBias : c.qkvBias, `${k}.attn.${p}.bias`, `${hf}.self_attn.${p}_proj.bias`),
          })),
        ),
        [`${k}.postAttnNorm.weight`]: src(`${hf}.post_attention_layernorm.weight`),
        [`${k}.preMlpNorm.weight`]: src(`${hf}.pre_feedforward_layernorm.weight`),
        ...Object.assign({}, ...(["gate", "up", "down"] as const).map((p) => ({ [`${k}.mlp.${p}.weight`]: src(`${hf}.mlp.${p}_proj.weight`) }))),
        [`${k}.postMlpNorm.weight`]: src(`${hf}.post_feedforward_layernorm.weight`),
      };
    }),
    "norm.weight": src("model.norm.weight"),
    ...(!c.tied && { "lmHead.weight": src("lm_head.weight") }),
  };
  return { map, ignore: [...(c.tied ? ["lm_head.weight"] : []), "*.rotary_emb.inv_freq"] };
}

export default defineModel({
  name: "gemma2",
  architectures: ["Gemma2ForCausalLM"],
  config: Gemma2Config,
  create: createGemma2,
  weights: gemma2Weights,
});
