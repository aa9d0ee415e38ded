// A custom architecture for the PyTorch targets' glue code: LLaMA weights in blocks TensorRT-LLM does not have. The
// attention and MLP branches both read the layer input (parallel residual); an extra linear and a constant 0.5 on
// the attention branch; a learned gate, a nested learned scale and a per-layer 1/(i+1) on the MLP branch; a
// position-dependent term (cast, reshape); a channel mixer on the layer input (reshape, transpose, softmax, split,
// sigmoid, tanh, sub, div, tanh-GELU, concat, reduce-mean); a learned embedding scale and a scalar before the final
// norm. Its oracle is Kiln's own CPU interpreter (`kiln run`); there is no Hugging Face original.

import { Attention, defineModel, Embedding, F, GatedMLP, Linear, Module, Parameter, perLayer, RMSNorm, src, type Tensor } from "kiln";
import llama, { type LlamaConfig } from "../../../models/llama.ts";

class Scale extends Module {
  readonly w: Parameter;
  constructor(d: number) {
    super();
    this.w = new Parameter([d]);
  }
  forward(x: Tensor): Tensor {
    return x.mul(this.w);
  }
}

class GlueBlock extends Module {
  readonly inputNorm: RMSNorm;
  readonly attn: Attention;
  readonly postNorm: RMSNorm;
  readonly mlp: GatedMLP;
  readonly gate: Parameter;
  readonly extra: Scale;
  readonly mix: Linear;
  readonly posScale: Parameter;
  constructor(
    readonly c: LlamaConfig,
    readonly index: number,
  ) {
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
    this.mlp = new GatedMLP(c.hidden, c.ffn, c.act);
    this.gate = new Parameter([c.hidden]);
    this.extra = new Scale(c.hidden);
    this.mix = new Linear(c.hidden, c.hidden);
    this.posScale = new Parameter([c.hidden]);
  }

  /** Tail-dim mixing: softmax over groups of channels, then a gated half/half combination. */
  mixer(x: Tensor): Tensor {
    const [b, s, h] = [x.dim(0), x.dim(1), this.c.hidden];
    const t = x
      .reshape([b, s, 4, h / 4])
      .transpose([0, 1, 3, 2])
      .softmax(-1)
      .transpose([0, 1, 3, 2])
      .reshape([b, s, h]);
    const [lo, hi] = t.split([h / 2, h / 2]) as [Tensor, Tensor];
    const g = lo.sigmoid().sub(hi.tanh()).div(2).gelu("tanh");
    return F.concat([g, g.neg()], -1).add(t.mean(-1));
  }

  forward(x: Tensor, pos: Tensor): Tensor {
    const a = this.mix.forward(this.attn.forward(this.inputNorm.forward(x), pos)).mul(0.5);
    const m = this.extra.forward(this.mlp.forward(this.postNorm.forward(x)).mul(this.gate)).mul(1 / (this.index + 1));
    const p = pos
      .cast("f32")
      .reshape([x.dim(0), x.dim(1), 1])
      .mul(this.posScale)
      .mul(0.01);
    return x.add(a).add(m).add(p).add(this.mixer(x).mul(0.1));
  }
}

class GlueModel extends Module {
  readonly embed: Embedding;
  readonly embedScale: Parameter;
  readonly layers: GlueBlock[];
  readonly norm: RMSNorm;
  readonly lmHead: Linear;
  constructor(c: LlamaConfig) {
    super();
    this.embed = new Embedding(c.vocab, c.hidden);
    this.embedScale = new Parameter([c.hidden]);
    this.layers = Array.from({ length: c.layers }, (_, i) => new GlueBlock(c, i));
    this.norm = new RMSNorm(c.hidden, c.eps);
    this.lmHead = new Linear(c.hidden, c.vocab);
  }
  forward(ids: Tensor, pos: Tensor): Tensor {
    const h = this.layers.reduce((x, l) => l.forward(x, pos), this.embed.forward(ids).mul(this.embedScale));
    return this.lmHead.forward(this.norm.forward(h.mul(2)));
  }
}

export default defineModel({
  name: "glue-llama",
  architectures: ["LlamaForCausalLM"],
  config: llama.config,
  create: (c) => new GlueModel(c),
  weights: (c) => ({
    map: {
      ...(llama.weights(c).map as Record<string, ReturnType<typeof src>>),
      embedScale: src("model.norm.weight"),
      ...perLayer(c.layers, (i) => ({
        [`layers.${i}.gate`]: src("model.norm.weight"),
        [`layers.${i}.extra.w`]: src(`model.layers.${i}.input_layernorm.weight`),
        [`layers.${i}.mix.weight`]: src(`model.layers.${i}.self_attn.o_proj.weight`),
        [`layers.${i}.posScale`]: src("model.norm.weight"),
      })),
    },
    ignore: ["*.rotary_emb.inv_freq"],
  }),
});
