// GPT-J: one LayerNorm feeding attention and MLP in parallel (out = x + attn(ln(x)) + mlp(ln(x))), interleaved
// (GPT-J style) partial rotary embedding on the first rotary_dim channels of each head, bias-free attention
// projections, GELU (tanh) MLP with biases, untied LM head with bias.

import { ACTIVATION_NAMES, Attention, CausalLM, defineModel, Embedding, LayerNorm, Linear, MLP, Module, perLayer, src, type Tensor, z } from "kiln";

const GptjConfig = z
  .looseObject({
    vocab_size: z.number().int().positive(),
    n_embd: z.number().int().positive(),
    n_layer: z.number().int().positive(),
    n_head: z.number().int().positive(),
    n_positions: z.number().int().positive(),
    n_inner: z.number().int().positive().nullish(),
    rotary_dim: z.number().int().positive().nullish(),
    layer_norm_epsilon: z.number().positive().default(1e-5),
    activation_function: z.enum(ACTIVATION_NAMES).default("gelu_new"),
    tie_word_embeddings: z.boolean().default(false),
  })
  .transform((c) => ({
    vocab: c.vocab_size,
    hidden: c.n_embd,
    layers: c.n_layer,
    heads: c.n_head,
    maxPositions: c.n_positions,
    ffn: c.n_inner ?? 4 * c.n_embd,
    rotaryDim: c.rotary_dim ?? c.n_embd / c.n_head,
    eps: c.layer_norm_epsilon,
    act: c.activation_function,
    tied: c.tie_word_embeddings,
  }));

export type GptjConfig = z.output<typeof GptjConfig>;

export class GptjBlock extends Module {
  readonly ln: LayerNorm;
  readonly attn: Attention;
  readonly mlp: MLP;

  constructor(c: GptjConfig) {
    super();
    this.ln = new LayerNorm(c.hidden, c.eps);
    this.attn = new Attention({ hidden: c.hidden, heads: c.heads, rope: { style: "gptj", rotaryDim: c.rotaryDim, theta: 10000, scaling: null } });
    this.mlp = new MLP(c.hidden, c.ffn, c.act, { bias: true });
  }

  forward(x: Tensor, positions: Tensor): Tensor {
    const h = this.ln.forward(x);
    return x.add(this.attn.forward(h, positions)).add(this.mlp.forward(h));
  }
}

export function createGptj(c: GptjConfig): CausalLM<GptjBlock> {
  return new CausalLM({
    embed: new Embedding(c.vocab, c.hidden),
    layers: Array.from({ length: c.layers }, () => new GptjBlock(c)),
    norm: new LayerNorm(c.hidden, c.eps),
    ...(!c.tied && { lmHead: new Linear(c.hidden, c.vocab, { bias: true }) }),
  });
}

export function gptjWeights(c: GptjConfig) {
  const map = {
    "embed.weight": src("transformer.wte.weight"),
    ...perLayer(c.layers, (i) => {
      const [k, hf] = [`layers.${i}`, `transformer.h.${i}`];
      return {
        [`${k}.ln.weight`]: src(`${hf}.ln_1.weight`),
        [`${k}.ln.bias`]: src(`${hf}.ln_1.bias`),
        [`${k}.attn.q.weight`]: src(`${hf}.attn.q_proj.weight`),
        [`${k}.attn.k.weight`]: src(`${hf}.attn.k_proj.weight`),
        [`${k}.attn.v.weight`]: src(`${hf}.attn.v_proj.weight`),
        [`${k}.attn.o.weight`]: src(`${hf}.attn.out_proj.weight`),
        [`${k}.mlp.fc.weight`]: src(`${hf}.mlp.fc_in.weight`),
        [`${k}.mlp.fc.bias`]: src(`${hf}.mlp.fc_in.bias`),
        [`${k}.mlp.proj.weight`]: src(`${hf}.mlp.fc_out.weight`),
        [`${k}.mlp.proj.bias`]: src(`${hf}.mlp.fc_out.bias`),
      };
    }),
    "norm.weight": src("transformer.ln_f.weight"),
    "norm.bias": src("transformer.ln_f.bias"),
    ...(!c.tied && { "lmHead.weight": src("lm_head.weight"), "lmHead.bias": src("lm_head.bias") }),
  };
  return { map, ignore: ["transformer.h.*.attn.bias", "transformer.h.*.attn.masked_bias"] };
}

export default defineModel({
  name: "gptj",
  architectures: ["GPTJForCausalLM"],
  config: GptjConfig,
  create: createGptj,
  weights: gptjWeights,
});
