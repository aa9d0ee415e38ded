// Falcon (7B style): a parallel decoder block (attention and MLP both read one LayerNorm of the input and are added
// to the residual together), multi-query attention (one key/value head) from a fused query_key_value projection
// whose rows are the query heads, then the key head, then the value head, rotary (GPT-NeoX style) positions, an
// exact-GELU MLP, LayerNorms with bias, tied embeddings. Reads HF `FalconForCausalLM` configs in transformers 4.x and
// 5.x form with new_decoder_architecture false, multi_query true, parallel_attn true and alibi false; other variants
// are refused in one line naming the field. Semantics: src/transformers/models/falcon/modeling_falcon.py @
// transformers 5.17 (FalconAttention._split_heads multi_query branch, FalconDecoderLayer.forward, FalconMLP).

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
  ropeFromHF,
  slice,
  src,
  type Tensor,
  z,
} from "kiln";

/** A boolean field this port supports in one setting only; another value is refused naming the field. */
const only = (value: boolean, field: string) =>
  z
    .boolean()
    .default(value)
    .refine((v) => v === value, { message: `${field} must be ${value} (Kiln's Falcon covers the 7B-style block)` });

const FalconConfig = z
  .looseObject({
    vocab_size: z.number().int().positive(),
    hidden_size: z.number().int().positive(),
    num_hidden_layers: z.number().int().positive(),
    num_attention_heads: z.number().int().positive(),
    ffn_hidden_size: z.number().int().positive().nullish(),
    layer_norm_epsilon: z.number().positive().default(1e-5),
    activation: z.enum(ACTIVATION_NAMES).default("gelu"),
    bias: z.boolean().default(false),
    tie_word_embeddings: z.boolean().default(true),
    max_position_embeddings: z.number().int().positive().default(2048),
    new_decoder_architecture: only(false, "new_decoder_architecture"),
    multi_query: only(true, "multi_query"),
    parallel_attn: only(true, "parallel_attn"),
    alibi: only(false, "alibi"),
    ...HFRopeFields,
  })
  .transform((c) => ({
    vocab: c.vocab_size,
    hidden: c.hidden_size,
    layers: c.num_hidden_layers,
    heads: c.num_attention_heads,
    headDim: c.hidden_size / c.num_attention_heads,
    ffn: c.ffn_hidden_size ?? 4 * c.hidden_size,
    eps: c.layer_norm_epsilon,
    act: c.activation,
    bias: c.bias,
    tied: c.tie_word_embeddings,
    rope: ropeFromHF(c),
  }));

type FalconConfig = z.output<typeof FalconConfig>;

export class FalconLayer extends Module {
  readonly ln: LayerNorm;
  readonly attn: Attention;
  readonly mlp: MLP;

  constructor(c: FalconConfig) {
    super();
    this.ln = new LayerNorm(c.hidden, c.eps);
    this.attn = new Attention({
      hidden: c.hidden,
      heads: c.heads,
      kvHeads: 1,
      qkvBias: c.bias,
      outBias: c.bias,
      rope: { style: "neox", rotaryDim: c.headDim, theta: c.rope.theta, scaling: c.rope.scaling },
    });
    this.mlp = new MLP(c.hidden, c.ffn, c.act, { bias: c.bias });
  }

  forward(x: Tensor, positions: Tensor): Tensor {
    const h = this.ln.forward(x);
    // FalconDecoderLayer: mlp_output += attention_output; output = mlp_output + residual.
    return x.add(this.mlp.forward(h).add(this.attn.forward(h, positions)));
  }
}

function createFalcon(c: FalconConfig): CausalLM<FalconLayer> {
  return new CausalLM({
    embed: new Embedding(c.vocab, c.hidden),
    layers: Array.from({ length: c.layers }, () => new FalconLayer(c)),
    norm: new LayerNorm(c.hidden, c.eps),
    ...(!c.tied && { lmHead: new Linear(c.hidden, c.vocab) }),
  });
}

/** HF FalconForCausalLM tensor names -> Kiln parameters (the fused projection split by rows: q heads, k, v). */
function falconWeights(c: FalconConfig) {
  const q = c.heads * c.headDim;
  const bias = (target: string, source: string) => (c.bias ? { [target]: source } : {});
  const map = {
    "embed.weight": src("transformer.word_embeddings.weight"),
    ...perLayer(c.layers, (i) => {
      const [k, hf] = [`layers.${i}`, `transformer.h.${i}`];
      const qkv = (what: string) => src(`${hf}.self_attention.query_key_value.${what}`);
      const rows = { q: [0, q], k: [q, q + c.headDim], v: [q + c.headDim, q + 2 * c.headDim] } as const;
      return {
        [`${k}.ln.weight`]: src(`${hf}.input_layernorm.weight`),
        [`${k}.ln.bias`]: src(`${hf}.input_layernorm.bias`),
        ...Object.assign(
          {},
          ...(["q", "k", "v"] as const).map((p) => ({
            [`${k}.attn.${p}.weight`]: slice(qkv("weight"), 0, rows[p][0], rows[p][1]),
            ...(c.bias && { [`${k}.attn.${p}.bias`]: slice(qkv("bias"), 0, rows[p][0], rows[p][1]) }),
          })),
        ),
        [`${k}.attn.o.weight`]: src(`${hf}.self_attention.dense.weight`),
        [`${k}.mlp.fc.weight`]: src(`${hf}.mlp.dense_h_to_4h.weight`),
        [`${k}.mlp.proj.weight`]: src(`${hf}.mlp.dense_4h_to_h.weight`),
        ...Object.fromEntries(
          Object.entries({
            ...bias(`${k}.attn.o.bias`, `${hf}.self_attention.dense.bias`),
            ...bias(`${k}.mlp.fc.bias`, `${hf}.mlp.dense_h_to_4h.bias`),
            ...bias(`${k}.mlp.proj.bias`, `${hf}.mlp.dense_4h_to_h.bias`),
          }).map(([t, s]) => [t, src(s)]),
        ),
      };
    }),
    "norm.weight": src("transformer.ln_f.weight"),
    "norm.bias": src("transformer.ln_f.bias"),
    ...(!c.tied && { "lmHead.weight": src("lm_head.weight") }),
  };
  return { map, ignore: c.tied ? ["lm_head.weight"] : [] };
}

export default defineModel({
  name: "falcon",
  architectures: ["FalconForCausalLM"],
  config: FalconConfig,
  create: createFalcon,
  weights: falconWeights,
});
