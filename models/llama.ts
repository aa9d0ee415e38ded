// LLaMA 2 / LLaMA 3 (and TinyStories-style LLaMAs): pre-norm decoder with RMSNorm, rotary attention with grouped-
// query heads (llama3 and linear RoPE scaling), SwiGLU MLP, tied or untied LM head. Reads HF `LlamaForCausalLM`
// configs in transformers 4.x and 5.x form.

import {
  ACTIVATION_NAMES,
  Attention,
  CausalLM,
  defineModel,
  Embedding,
  GatedMLP,
  HFRopeFields,
  Linear,
  Module,
  perLayer,
  RMSNorm,
  ropeFromHF,
  src,
  type Tensor,
  z,
} from "kiln";

/** The HF fields a LLaMA-style config has (Mistral and others extend them). */
export const LLAMA_FIELDS = {
  vocab_size: z.number().int().positive(),
  hidden_size: z.number().int().positive(),
  intermediate_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive().nullish(),
  head_dim: z.number().int().positive().nullish(),
  rms_norm_eps: z.number().positive().default(1e-6),
  hidden_act: z.enum(ACTIVATION_NAMES).default("silu"),
  attention_bias: z.boolean().default(false),
  mlp_bias: z.boolean().default(false),
  tie_word_embeddings: z.boolean().default(false),
  max_position_embeddings: z.number().int().positive().default(2048),
  ...HFRopeFields,
};

const LlamaFields = z.looseObject(LLAMA_FIELDS);

/** Kiln's LLaMA config from the parsed HF fields; `windows` is the per-layer sliding window (0 = global). */
export function llamaConfigFrom(c: z.output<typeof LlamaFields>, windows: readonly number[] = []) {
  return {
    vocab: c.vocab_size,
    hidden: c.hidden_size,
    ffn: c.intermediate_size,
    layers: c.num_hidden_layers,
    heads: c.num_attention_heads,
    kvHeads: c.num_key_value_heads ?? c.num_attention_heads,
    headDim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    eps: c.rms_norm_eps,
    act: c.hidden_act,
    qkvBias: c.attention_bias,
    outBias: c.attention_bias,
    mlpBias: c.mlp_bias,
    tied: c.tie_word_embeddings,
    maxPositions: c.max_position_embeddings,
    rope: ropeFromHF(c),
    windows: Array.from({ length: c.num_hidden_layers }, (_, i) => windows[i] ?? 0),
    /** Per-head q/k RMSNorm before rotary (Qwen3); HF names q_norm / k_norm. */
    qkNorm: false as boolean,
    /** Rotary channels per head (partial rotary when < headDim; Phi-3.5 / Phi-4-mini). */
    rotaryDim: c.head_dim ?? c.hidden_size / c.num_attention_heads,
    /** Gemma: RMSNorm scales by (offset + w) and embeddings are multiplied by embedScale. */
    normOffset: 0,
    embedScale: undefined as number | undefined,
  };
}

const LlamaConfig = LlamaFields.transform((c) => llamaConfigFrom(c));

export type LlamaConfig = ReturnType<typeof llamaConfigFrom>;

/** A layer's feed-forward block: the GatedMLP, or another block with the same interface (Mixtral's MoE). */
export type FeedForward = Module & { forward(x: Tensor): Tensor };

export class LlamaLayer<M extends FeedForward = GatedMLP> extends Module {
  readonly inputNorm: RMSNorm;
  readonly attn: Attention;
  readonly postNorm: RMSNorm;
  readonly mlp: M;

  constructor(c: LlamaConfig, window = 0, mlp?: M) {
    super();
    this.inputNorm = new RMSNorm(c.hidden, c.eps, { offset: c.normOffset });
    this.attn = new Attention({
      hidden: c.hidden,
      heads: c.heads,
      kvHeads: c.kvHeads,
      headDim: c.headDim,
      qkvBias: c.qkvBias,
      outBias: c.outBias,
      rope: { style: "neox", rotaryDim: c.rotaryDim, theta: c.rope.theta, scaling: c.rope.scaling },
      window,
      ...(c.qkNorm && { qkNorm: { eps: c.eps } }),
    });
    this.postNorm = new RMSNorm(c.hidden, c.eps, { offset: c.normOffset });
    this.mlp = mlp ?? (new GatedMLP(c.hidden, c.ffn, c.act, { bias: c.mlpBias }) as FeedForward as M);
  }

  forward(x: Tensor, positions: Tensor): Tensor {
    const h = x.add(this.attn.forward(this.inputNorm.forward(x), positions));
    return h.add(this.mlp.forward(this.postNorm.forward(h)));
  }
}

/** The decoder; `mlpFor(i)` replaces layer i's GatedMLP (Mixtral / Qwen2-MoE pass their MoE blocks). */
export function createLlama<M extends FeedForward = GatedMLP>(c: LlamaConfig, mlpFor?: (i: number) => M): CausalLM<LlamaLayer<M>> {
  return new CausalLM({
    embed: new Embedding(c.vocab, c.hidden, c.embedScale === undefined ? {} : { scale: c.embedScale }),
    layers: Array.from({ length: c.layers }, (_, i) => new LlamaLayer<M>(c, c.windows[i], mlpFor?.(i))),
    norm: new RMSNorm(c.hidden, c.eps, { offset: c.normOffset }),
    ...(!c.tied && { lmHead: new Linear(c.hidden, c.vocab) }),
  });
}

/** HF LlamaForCausalLM tensor names -> Kiln parameters. */
export function llamaWeights(c: LlamaConfig) {
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
        ...(c.qkNorm && { [`${k}.attn.qNorm.weight`]: src(`${hf}.self_attn.q_norm.weight`), [`${k}.attn.kNorm.weight`]: src(`${hf}.self_attn.k_norm.weight`) }),
        [`${k}.postNorm.weight`]: src(`${hf}.post_attention_layernorm.weight`),
        ...Object.assign(
          {},
          ...(["gate", "up", "down"] as const).map((p) => ({
            [`${k}.mlp.${p}.weight`]: src(`${hf}.mlp.${p}_proj.weight`),
            ...bias(c.mlpBias, `${k}.mlp.${p}.bias`, `${hf}.mlp.${p}_proj.bias`),
          })),
        ),
      };
    }),
    "norm.weight": src("model.norm.weight"),
    ...(!c.tied && { "lmHead.weight": src("lm_head.weight") }),
  };
  // Tied checkpoints sometimes still carry lm_head.weight (a copy of the embedding); rotary caches are derived.
  return { map, ignore: [...(c.tied ? ["lm_head.weight"] : []), "*.rotary_emb.inv_freq"] };
}

export default defineModel({
  name: "llama",
  architectures: ["LlamaForCausalLM"],
  config: LlamaConfig,
  create: createLlama,
  weights: llamaWeights,
});
