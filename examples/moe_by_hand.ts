// A mixture-of-experts model written by hand (docs/moe.md walks through it): Mixtral's architecture with the routing
// spelled out in tensor ops instead of the library's MoE module. Per layer, the router is a linear layer whose
// softmax scores pick each token's top-k experts; the top-k weights are renormalized to sum 1, spread back over all
// experts with one_hot, and every expert (a plain GatedMLP) adds its output times its own weight. Reads Mixtral
// checkpoints (block_sparse_moe.gate / experts.E.w1, w3, w2). Kiln's recognize-moe pass turns each layer's routing
// and experts into one `moe` op (see test/passes/moe-example.test.ts); the logits are the same either way.

import { Attention, CausalLM, defineModel, Embedding, F, GatedMLP, Linear, Module, Parameter, RMSNorm, ropeFromHF, src, type Tensor, z } from "kiln";
import { LLAMA_FIELDS, llamaConfigFrom } from "../models/llama.ts";

const Config = z
  .looseObject({ ...LLAMA_FIELDS, num_local_experts: z.number().int().positive(), num_experts_per_tok: z.number().int().positive() })
  .transform((c) => ({ ...llamaConfigFrom(c), experts: c.num_local_experts, topK: c.num_experts_per_tok, rope: ropeFromHF(c) }));
type Config = z.output<typeof Config>;

/** Routing by hand: top-k of the router's softmax, renormalized, as a dense [..., experts] weight per token. */
class SparseExperts extends Module {
  readonly router: Parameter;
  readonly experts: GatedMLP[];

  constructor(private readonly c: Config) {
    super();
    this.router = new Parameter([c.experts, c.hidden]);
    this.experts = Array.from({ length: c.experts }, () => new GatedMLP(c.hidden, c.ffn, "silu"));
  }

  forward(x: Tensor): Tensor {
    const scores = F.linear(x, this.router).softmax(-1); // [batch, seq, experts]
    const [top, chosen] = scores.topk(this.c.topK); // [batch, seq, k] weights and i32 expert ids
    const weights = top.div(top.sum(-1)); // renormalize the k weights to sum 1
    const dense = chosen
      .oneHot(this.c.experts)
      .mul(weights.reshape([...weights.shape, 1]))
      .sum(-2, false);
    let out: Tensor | undefined;
    this.experts.forEach((expert, e) => {
      const term = expert.forward(x).mul(dense.slice(-1, e, e + 1)); // 0 where expert e was not chosen
      out = out ? out.add(term) : term;
    });
    return out!;
  }
}

class Layer extends Module {
  readonly inputNorm: RMSNorm;
  readonly attn: Attention;
  readonly postNorm: RMSNorm;
  readonly moe: SparseExperts;

  constructor(c: Config) {
    super();
    this.inputNorm = new RMSNorm(c.hidden, c.eps);
    this.attn = new Attention({
      hidden: c.hidden,
      heads: c.heads,
      kvHeads: c.kvHeads,
      headDim: c.headDim,
      rope: { style: "neox", rotaryDim: c.headDim, theta: c.rope.theta, scaling: c.rope.scaling },
    });
    this.postNorm = new RMSNorm(c.hidden, c.eps);
    this.moe = new SparseExperts(c);
  }

  forward(x: Tensor, positions: Tensor): Tensor {
    const h = x.add(this.attn.forward(this.inputNorm.forward(x), positions));
    return h.add(this.moe.forward(this.postNorm.forward(h)));
  }
}

export default defineModel({
  name: "moe_by_hand",
  architectures: [],
  config: Config,
  create: (c) =>
    new CausalLM({
      embed: new Embedding(c.vocab, c.hidden),
      layers: Array.from({ length: c.layers }, () => new Layer(c)),
      norm: new RMSNorm(c.hidden, c.eps),
      lmHead: new Linear(c.hidden, c.vocab),
    }),
  weights: (c) => {
    const map: Record<string, ReturnType<typeof src>> = {
      "embed.weight": src("model.embed_tokens.weight"),
      "norm.weight": src("model.norm.weight"),
      "lmHead.weight": src("lm_head.weight"),
    };
    for (let i = 0; i < c.layers; i++) {
      const [k, hf] = [`layers.${i}`, `model.layers.${i}`];
      map[`${k}.inputNorm.weight`] = src(`${hf}.input_layernorm.weight`);
      map[`${k}.postNorm.weight`] = src(`${hf}.post_attention_layernorm.weight`);
      for (const p of ["q", "k", "v", "o"]) map[`${k}.attn.${p}.weight`] = src(`${hf}.self_attn.${p}_proj.weight`);
      map[`${k}.moe.router`] = src(`${hf}.block_sparse_moe.gate.weight`);
      for (let e = 0; e < c.experts; e++)
        for (const [p, w] of [
          ["gate", "w1"],
          ["up", "w3"],
          ["down", "w2"],
        ])
          map[`${k}.moe.experts.${e}.${p}.weight`] = src(`${hf}.block_sparse_moe.experts.${e}.${w}.weight`);
    }
    return { map, ignore: ["*.rotary_emb.inv_freq"] };
  },
});
