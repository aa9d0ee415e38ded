// GPT-2: learned absolute positions, pre-norm LayerNorm blocks, attention with biased q/k/v/o, GELU (tanh) MLP,
// LM head tied to the token embedding. HF stores its projections as Conv1D [in, out] with q/k/v fused in c_attn:
// the weight map transposes and slices them into Kiln's separate [out, in] projections.

import {
  ACTIVATION_NAMES,
  Attention,
  CausalLM,
  defineModel,
  Embedding,
  LayerNorm,
  Linear,
  MLP,
  Module,
  perLayer,
  slice,
  src,
  type Tensor,
  transpose,
  z,
} from "kiln";

const Gpt2Config = z
  .looseObject({
    vocab_size: z.number().int().positive(),
    n_embd: z.number().int().positive(),
    n_layer: z.number().int().positive(),
    n_head: z.number().int().positive(),
    n_positions: z.number().int().positive(),
    n_inner: z.number().int().positive().nullish(),
    layer_norm_epsilon: z.number().positive().default(1e-5),
    activation_function: z.enum(ACTIVATION_NAMES).default("gelu_new"),
    scale_attn_weights: z.boolean().default(true),
    scale_attn_by_inverse_layer_idx: z.boolean().default(false),
    tie_word_embeddings: z.boolean().default(true),
  })
  .transform((c) => ({
    vocab: c.vocab_size,
    hidden: c.n_embd,
    layers: c.n_layer,
    heads: c.n_head,
    maxPositions: c.n_positions,
    ffn: c.n_inner ?? 4 * c.n_embd,
    eps: c.layer_norm_epsilon,
    act: c.activation_function,
    scaleAttn: c.scale_attn_weights,
    scaleByLayer: c.scale_attn_by_inverse_layer_idx,
    tied: c.tie_word_embeddings,
  }));

export type Gpt2Config = z.output<typeof Gpt2Config>;

export class Gpt2Block extends Module {
  readonly ln1: LayerNorm;
  readonly attn: Attention;
  readonly ln2: LayerNorm;
  readonly mlp: MLP;

  constructor(c: Gpt2Config, layerIdx: number) {
    super();
    const headDim = c.hidden / c.heads;
    const scale = (c.scaleAttn ? 1 / Math.sqrt(headDim) : 1) / (c.scaleByLayer ? layerIdx + 1 : 1);
    this.ln1 = new LayerNorm(c.hidden, c.eps);
    this.attn = new Attention({ hidden: c.hidden, heads: c.heads, qkvBias: true, outBias: true, scale });
    this.ln2 = new LayerNorm(c.hidden, c.eps);
    this.mlp = new MLP(c.hidden, c.ffn, c.act, { bias: true });
  }

  forward(x: Tensor, positions: Tensor): Tensor {
    const h = x.add(this.attn.forward(this.ln1.forward(x), positions));
    return h.add(this.mlp.forward(this.ln2.forward(h)));
  }
}

export function createGpt2(c: Gpt2Config): CausalLM<Gpt2Block> {
  return new CausalLM({
    embed: new Embedding(c.vocab, c.hidden),
    positionEmbed: new Embedding(c.maxPositions, c.hidden),
    layers: Array.from({ length: c.layers }, (_, i) => new Gpt2Block(c, i)),
    norm: new LayerNorm(c.hidden, c.eps),
    ...(!c.tied && { lmHead: new Linear(c.hidden, c.vocab) }),
  });
}

/** HF GPT2LMHeadModel tensor names -> Kiln parameters (Conv1D weights transposed, c_attn split into q/k/v). */
export function gpt2Weights(c: Gpt2Config) {
  const D = c.hidden;
  const conv = (name: string) => transpose(src(`${name}.weight`));
  const map = {
    "embed.weight": src("transformer.wte.weight"),
    "positionEmbed.weight": src("transformer.wpe.weight"),
    ...perLayer(c.layers, (i) => {
      const [k, hf] = [`layers.${i}`, `transformer.h.${i}`];
      const qkv = Object.fromEntries(
        (["q", "k", "v"] as const).flatMap((p, j) => [
          [`${k}.attn.${p}.weight`, slice(conv(`${hf}.attn.c_attn`), 0, j * D, (j + 1) * D)],
          [`${k}.attn.${p}.bias`, slice(src(`${hf}.attn.c_attn.bias`), 0, j * D, (j + 1) * D)],
        ]),
      );
      return {
        [`${k}.ln1.weight`]: src(`${hf}.ln_1.weight`),
        [`${k}.ln1.bias`]: src(`${hf}.ln_1.bias`),
        ...qkv,
        [`${k}.attn.o.weight`]: conv(`${hf}.attn.c_proj`),
        [`${k}.attn.o.bias`]: src(`${hf}.attn.c_proj.bias`),
        [`${k}.ln2.weight`]: src(`${hf}.ln_2.weight`),
        [`${k}.ln2.bias`]: src(`${hf}.ln_2.bias`),
        [`${k}.mlp.fc.weight`]: conv(`${hf}.mlp.c_fc`),
        [`${k}.mlp.fc.bias`]: src(`${hf}.mlp.c_fc.bias`),
        [`${k}.mlp.proj.weight`]: conv(`${hf}.mlp.c_proj`),
        [`${k}.mlp.proj.bias`]: src(`${hf}.mlp.c_proj.bias`),
      };
    }),
    "norm.weight": src("transformer.ln_f.weight"),
    "norm.bias": src("transformer.ln_f.bias"),
    ...(!c.tied && { "lmHead.weight": src("lm_head.weight") }),
  };
  // Older checkpoints carry the causal-mask buffers (attn.bias, attn.masked_bias); they are not weights.
  return { map, ignore: ["transformer.h.*.attn.bias", "transformer.h.*.attn.masked_bias", ...(c.tied ? ["lm_head.weight"] : [])] };
}

export default defineModel({
  name: "gpt2",
  architectures: ["GPT2LMHeadModel"],
  config: Gpt2Config,
  create: createGpt2,
  weights: gpt2Weights,
});
