// GPT-NeoX / Pythia: LayerNorm decoder with biases everywhere, partial rotary (rotate-half on the first
// rotary_pct of each head), an exact-GELU MLP, and either the parallel residual (x + attn(ln1(x)) + mlp(ln2(x)),
// Pythia) or the sequential one (use_parallel_residual: false). The checkpoint's fused query_key_value interleaves
// q, k and v per head ([heads, 3, head_dim] rows); the weight map splits it with reshape + slice. Reads HF
// `GPTNeoXForCausalLM` configs in transformers 4.x (`rotary_pct`, `rotary_emb_base`) and 5.x (`rope_parameters`).

import {
  ACTIVATION_NAMES,
  Attention,
  CausalLM,
  defineModel,
  Embedding,
  HFRopeFields,
  LayerNorm,
  Linear,
  MLP,
  Module,
  perLayer,
  reshape,
  ropeFromHF,
  rotaryDimFromHF,
  slice,
  src,
  type Tensor,
  type WeightExpr,
  z,
} from "kiln";

const NeoXConfig = z
  .looseObject({
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    intermediate_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    layer_norm_eps: z.number().positive().default(1e-5),
    hidden_act: z.enum(ACTIVATION_NAMES).default("gelu"),
    use_parallel_residual: z.boolean().default(true),
    attention_bias: z.boolean().default(true),
    tie_word_embeddings: z.boolean().default(false),
    rotary_emb_base: z.number().positive().optional(),
    ...HFRopeFields,
  })
  .transform((c) => {
    const headDim = c.hidden_size / c.num_attention_heads;
    return {
      vocab: c.vocab_size,
      hidden: c.hidden_size,
      ffn: c.intermediate_size,
      layers: c.num_hidden_layers,
      heads: c.num_attention_heads,
      headDim,
      eps: c.layer_norm_eps,
      act: c.hidden_act,
      parallel: c.use_parallel_residual,
      bias: c.attention_bias,
      tied: c.tie_word_embeddings,
      // GPTNeoXConfig defaults: rotary_pct 0.25, rotary_emb_base 10000 (configuration_gpt_neox.py @ transformers 5.17).
      rotaryDim: rotaryDimFromHF(c, headDim, 0.25),
      rope: ropeFromHF(c, c.rotary_emb_base ?? 10000),
    };
  });

type NeoXConfig = z.output<typeof NeoXConfig>;

class NeoXLayer extends Module {
  readonly inputNorm: LayerNorm;
  readonly attn: Attention;
  readonly postNorm: LayerNorm;
  readonly mlp: MLP;

  constructor(private readonly c: NeoXConfig) {
    super();
    this.inputNorm = new LayerNorm(c.hidden, c.eps);
    this.attn = new Attention({
      hidden: c.hidden,
      heads: c.heads,
      qkvBias: c.bias,
      outBias: c.bias,
      rope: { style: "neox", rotaryDim: c.rotaryDim, theta: c.rope.theta, scaling: c.rope.scaling },
    });
    this.postNorm = new LayerNorm(c.hidden, c.eps);
    this.mlp = new MLP(c.hidden, c.ffn, c.act, { bias: true });
  }

  forward(x: Tensor, positions: Tensor): Tensor {
    const a = this.attn.forward(this.inputNorm.forward(x), positions);
    if (this.c.parallel) return x.add(a).add(this.mlp.forward(this.postNorm.forward(x)));
    const h = x.add(a);
    return h.add(this.mlp.forward(this.postNorm.forward(h)));
  }
}

function createNeoX(c: NeoXConfig): CausalLM<NeoXLayer> {
  return new CausalLM({
    embed: new Embedding(c.vocab, c.hidden),
    layers: Array.from({ length: c.layers }, () => new NeoXLayer(c)),
    norm: new LayerNorm(c.hidden, c.eps),
    ...(!c.tied && { lmHead: new Linear(c.hidden, c.vocab) }),
  });
}

/** q, k or v (part 0, 1, 2) of the per-head interleaved query_key_value rows [heads, 3, head_dim, ...]. */
function qkvPart(e: WeightExpr, c: NeoXConfig, part: number, isBias: boolean): WeightExpr {
  const cols = isBias ? [] : [c.hidden];
  const perHead = reshape(e, [c.heads, 3, c.headDim, ...cols]);
  return reshape(slice(perHead, 1, part, part + 1), [c.heads * c.headDim, ...cols]);
}

/** HF GPTNeoXForCausalLM tensor names -> Kiln parameters. */
function neoxWeights(c: NeoXConfig) {
  const map = {
    "embed.weight": src("gpt_neox.embed_in.weight"),
    ...perLayer(c.layers, (i) => {
      const [k, hf] = [`layers.${i}`, `gpt_neox.layers.${i}`];
      const qkv = (what: "weight" | "bias") =>
        Object.fromEntries(
          (["q", "k", "v"] as const).map((p, part) => [
            `${k}.attn.${p}.${what}`,
            qkvPart(src(`${hf}.attention.query_key_value.${what}`), c, part, what === "bias"),
          ]),
        );
      return {
        [`${k}.inputNorm.weight`]: src(`${hf}.input_layernorm.weight`),
        [`${k}.inputNorm.bias`]: src(`${hf}.input_layernorm.bias`),
        ...qkv("weight"),
        ...(c.bias && qkv("bias")),
        [`${k}.attn.o.weight`]: src(`${hf}.attention.dense.weight`),
        ...(c.bias && { [`${k}.attn.o.bias`]: src(`${hf}.attention.dense.bias`) }),
        [`${k}.postNorm.weight`]: src(`${hf}.post_attention_layernorm.weight`),
        [`${k}.postNorm.bias`]: src(`${hf}.post_attention_layernorm.bias`),
        [`${k}.mlp.fc.weight`]: src(`${hf}.mlp.dense_h_to_4h.weight`),
        [`${k}.mlp.fc.bias`]: src(`${hf}.mlp.dense_h_to_4h.bias`),
        [`${k}.mlp.proj.weight`]: src(`${hf}.mlp.dense_4h_to_h.weight`),
        [`${k}.mlp.proj.bias`]: src(`${hf}.mlp.dense_4h_to_h.bias`),
      };
    }),
    "norm.weight": src("gpt_neox.final_layer_norm.weight"),
    "norm.bias": src("gpt_neox.final_layer_norm.bias"),
    ...(!c.tied && { "lmHead.weight": src("embed_out.weight") }),
  };
  return { map, ignore: ["*.rotary_emb.inv_freq", "*.attention.bias", "*.attention.masked_bias"] };
}

export default defineModel({
  name: "gpt_neox",
  architectures: ["GPTNeoXForCausalLM"],
  config: NeoXConfig,
  create: createNeoX,
  weights: neoxWeights,
});
