// StarCoder2: a pre-norm decoder with LayerNorms (with bias), rotary grouped-query attention with biases on every
// projection (`use_bias`), a plain tanh-GELU MLP (c_fc / c_proj) and an optional sliding window; embeddings tied by
// default. Reads HF `Starcoder2ForCausalLM` configs in transformers 4.x and 5.x form.

import {
  ACTIVATION_NAMES,
  Attention,
  CausalLM,
  defineModel,
  Embedding,
  HFRopeFields,
  HFSlidingWindowFields,
  LayerNorm,
  Linear,
  MLP,
  Module,
  perLayer,
  ropeFromHF,
  slidingWindowsFromHF,
  src,
  type Tensor,
  z,
} from "kiln";

const Starcoder2Config = z
  .looseObject({
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    num_key_value_heads: z.number().int().positive().nullish(),
    head_dim: z.number().int().positive().nullish(),
    norm_epsilon: z.number().positive().default(1e-5),
    hidden_act: z.enum(ACTIVATION_NAMES).default("gelu_pytorch_tanh"),
    use_bias: z.boolean().default(true),
    tie_word_embeddings: z.boolean().default(true),
    ...HFRopeFields,
    ...HFSlidingWindowFields,
  })
  .transform((c) => ({
    vocab: c.vocab_size,
    hidden: c.hidden_size,
    ffn: c.intermediate_size,
    layers: c.num_hidden_layers,
    heads: c.num_attention_heads,
    kvHeads: c.num_key_value_heads ?? c.num_attention_heads,
    headDim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    eps: c.norm_epsilon,
    act: c.hidden_act,
    bias: c.use_bias,
    tied: c.tie_word_embeddings,
    rope: ropeFromHF(c),
    windows: slidingWindowsFromHF(c, c.num_hidden_layers),
  }));

type Starcoder2Config = z.output<typeof Starcoder2Config>;

class Starcoder2Layer extends Module {
  readonly inputNorm: LayerNorm;
  readonly attn: Attention;
  readonly postNorm: LayerNorm;
  readonly mlp: MLP;

  constructor(c: Starcoder2Config, window: number) {
    super();
    this.inputNorm = new LayerNorm(c.hidden, c.eps);
    this.attn = new Attention({
      hidden: c.hidden,
      heads: c.heads,
      kvHeads: c.kvHeads,
      headDim: c.headDim,
      qkvBias: c.bias,
      outBias: c.bias,
      rope: { style: "neox", rotaryDim: c.headDim, theta: c.rope.theta, scaling: c.rope.scaling },
      window,
    });
    this.postNorm = new LayerNorm(c.hidden, c.eps);
    this.mlp = new MLP(c.hidden, c.ffn, c.act, { bias: c.bias });
  }

  forward(x: Tensor, positions: Tensor): Tensor {
    const h = x.add(this.attn.forward(this.inputNorm.forward(x), positions));
    return h.add(this.mlp.forward(this.postNorm.forward(h)));
  }
}

function createStarcoder2(c: Starcoder2Config): CausalLM<Starcoder2Layer> {
  return new CausalLM({
    embed: new Embedding(c.vocab, c.hidden),
    layers: Array.from({ length: c.layers }, (_, i) => new Starcoder2Layer(c, c.windows[i]!)),
    norm: new LayerNorm(c.hidden, c.eps),
    ...(!c.tied && { lmHead: new Linear(c.hidden, c.vocab) }),
  });
}

/** HF Starcoder2ForCausalLM tensor names -> Kiln parameters. */
function starcoder2Weights(c: Starcoder2Config) {
  const withBias = (target: string, source: string) => ({
    [`${target}.weight`]: src(`${source}.weight`),
    ...(c.bias && { [`${target}.bias`]: src(`${source}.bias`) }),
  });
  const map = {
    "embed.weight": src("model.embed_tokens.weight"),
    ...perLayer(c.layers, (i) => {
      const [k, hf] = [`layers.${i}`, `model.layers.${i}`];
      return {
        [`${k}.inputNorm.weight`]: src(`${hf}.input_layernorm.weight`),
        [`${k}.inputNorm.bias`]: src(`${hf}.input_layernorm.bias`),
        ...Object.assign({}, ...(["q", "k", "v", "o"] as const).map((p) => withBias(`${k}.attn.${p}`, `${hf}.self_attn.${p}_proj`))),
        [`${k}.postNorm.weight`]: src(`${hf}.post_attention_layernorm.weight`),
        [`${k}.postNorm.bias`]: src(`${hf}.post_attention_layernorm.bias`),
        ...withBias(`${k}.mlp.fc`, `${hf}.mlp.c_fc`),
        ...withBias(`${k}.mlp.proj`, `${hf}.mlp.c_proj`),
      };
    }),
    "norm.weight": src("model.norm.weight"),
    "norm.bias": src("model.norm.bias"),
    ...(!c.tied && { "lmHead.weight": src("lm_head.weight") }),
  };
  return { map, ignore: [...(c.tied ? ["lm_head.weight"] : []), "*.rotary_emb.inv_freq"] };
}

export default defineModel({
  name: "starcoder2",
  architectures: ["Starcoder2ForCausalLM"],
  config: Starcoder2Config,
  create: createStarcoder2,
  weights: starcoder2Weights,
});
