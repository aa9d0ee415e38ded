// A complete user-written architecture in one file: LLaMA built only from primitive tensor ops (no library Norm,
// Attention, MLP or Linear modules). RMSNorm is mean/pow/rsqrt/mul, attention is matmul/scale/causal mask/softmax/
// matmul with grouped-query heads repeated by hand, projections are matmuls against transposed weights.
// It reads the same Hugging Face checkpoints as models/llama.ts, and Kiln's passes rewrite it into the same fused
// graph (see test/passes/primitive-llama.test.ts).

import { defineModel, F, HFRopeFields, Module, Parameter, perLayer, ropeFromHF, src, type Tensor, z } from "kiln";

const Config = z
  .looseObject({
    vocab_size: z.number().int(),
    hidden_size: z.number().int(),
    intermediate_size: z.number().int(),
    num_hidden_layers: z.number().int(),
    num_attention_heads: z.number().int(),
    num_key_value_heads: z.number().int().optional(),
    head_dim: z.number().int().optional(),
    rms_norm_eps: z.number(),
    tie_word_embeddings: z.boolean().default(false),
    ...HFRopeFields,
  })
  .transform((c) => ({
    ...c,
    kv: c.num_key_value_heads ?? c.num_attention_heads,
    hd: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    rope: ropeFromHF(c),
  }));
type Config = z.output<typeof Config>;

/** x @ w^T for a weight stored [out, in]. */
const project = (x: Tensor, w: Tensor) => x.matmul(w.swap(0, 1));

/** x / sqrt(mean(x^2) + eps) * w, written out. */
function rmsNorm(x: Tensor, w: Tensor, eps: number): Tensor {
  return x.mul(x.pow(2).mean(-1, true).add(eps).rsqrt()).mul(w);
}

class Layer extends Module {
  readonly attnNorm: Parameter;
  readonly wq: Parameter;
  readonly wk: Parameter;
  readonly wv: Parameter;
  readonly wo: Parameter;
  readonly mlpNorm: Parameter;
  readonly wGate: Parameter;
  readonly wUp: Parameter;
  readonly wDown: Parameter;

  constructor(private readonly c: Config) {
    super();
    const [d, h, kv, hd, ffn] = [c.hidden_size, c.num_attention_heads, c.kv, c.hd, c.intermediate_size];
    this.attnNorm = new Parameter([d]);
    this.wq = new Parameter([h * hd, d]);
    this.wk = new Parameter([kv * hd, d]);
    this.wv = new Parameter([kv * hd, d]);
    this.wo = new Parameter([d, h * hd]);
    this.mlpNorm = new Parameter([d]);
    this.wGate = new Parameter([ffn, d]);
    this.wUp = new Parameter([ffn, d]);
    this.wDown = new Parameter([d, ffn]);
  }

  attention(x: Tensor, pos: Tensor): Tensor {
    const { num_attention_heads: h, kv, hd } = this.c;
    const [b, s] = [x.dim(0), x.dim(1)];
    const rope = { style: "neox" as const, rotaryDim: hd, theta: this.c.rope.theta, scaling: this.c.rope.scaling };
    const q = F.rope(project(x, this.wq).reshape([b, s, h, hd]), pos, rope).swap(1, 2); // [b, h, s, hd]
    const k = F.rope(project(x, this.wk).reshape([b, s, kv, hd]), pos, rope)
      .repeatInterleave(h / kv, 2)
      .swap(1, 2);
    const v = project(x, this.wv)
      .reshape([b, s, kv, hd])
      .repeatInterleave(h / kv, 2)
      .swap(1, 2);
    const scores = q
      .matmul(k.swap(2, 3))
      .mul(1 / Math.sqrt(hd))
      .causalMask(); // [b, h, s, s]
    const out = scores
      .softmax(-1)
      .matmul(v)
      .swap(1, 2)
      .reshape([b, s, h * hd]);
    return project(out, this.wo);
  }

  forward(x: Tensor, pos: Tensor): Tensor {
    const h = x.add(this.attention(rmsNorm(x, this.attnNorm, this.c.rms_norm_eps), pos));
    const n = rmsNorm(h, this.mlpNorm, this.c.rms_norm_eps);
    return h.add(project(project(n, this.wGate).silu().mul(project(n, this.wUp)), this.wDown));
  }
}

class PrimitiveLlama extends Module {
  readonly embed: Parameter;
  readonly layers: Layer[];
  readonly norm: Parameter;
  readonly lmHead?: Parameter;

  constructor(private readonly c: Config) {
    super();
    this.embed = new Parameter([c.vocab_size, c.hidden_size]);
    this.layers = Array.from({ length: c.num_hidden_layers }, () => new Layer(c));
    this.norm = new Parameter([c.hidden_size]);
    if (!c.tie_word_embeddings) this.lmHead = new Parameter([c.vocab_size, c.hidden_size]);
  }

  forward(ids: Tensor, pos: Tensor): Tensor {
    const h = this.layers.reduce((x, layer) => layer.forward(x, pos), F.embedding(this.embed, ids));
    return project(rmsNorm(h, this.norm, this.c.rms_norm_eps), this.lmHead ?? this.embed);
  }
}

export default defineModel({
  name: "llama_from_primitives",
  architectures: ["LlamaForCausalLM"],
  config: Config,
  create: (c) => new PrimitiveLlama(c),
  weights: (c) => ({
    map: {
      embed: src("model.embed_tokens.weight"),
      ...perLayer(c.num_hidden_layers, (i) => {
        const hf = `model.layers.${i}`;
        return {
          [`layers.${i}.attnNorm`]: src(`${hf}.input_layernorm.weight`),
          [`layers.${i}.wq`]: src(`${hf}.self_attn.q_proj.weight`),
          [`layers.${i}.wk`]: src(`${hf}.self_attn.k_proj.weight`),
          [`layers.${i}.wv`]: src(`${hf}.self_attn.v_proj.weight`),
          [`layers.${i}.wo`]: src(`${hf}.self_attn.o_proj.weight`),
          [`layers.${i}.mlpNorm`]: src(`${hf}.post_attention_layernorm.weight`),
          [`layers.${i}.wGate`]: src(`${hf}.mlp.gate_proj.weight`),
          [`layers.${i}.wUp`]: src(`${hf}.mlp.up_proj.weight`),
          [`layers.${i}.wDown`]: src(`${hf}.mlp.down_proj.weight`),
        };
      }),
      norm: src("model.norm.weight"),
      ...(!c.tie_word_embeddings && { lmHead: src("lm_head.weight") }),
    },
    ignore: c.tie_word_embeddings ? ["lm_head.weight"] : [],
  }),
});
