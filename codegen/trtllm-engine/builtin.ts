// Built-in detection: a lowered model is emitted for one of TensorRT-LLM's own classes (LLaMAForCausalLM,
// QWenForCausalLM, GPTForCausalLM with its gpt2 and starcoder2 variants, GPTJForCausalLM, GPTNeoXForCausalLM) when every
// decoder layer and the model around it have exactly that class's structure and its fixed settings; then
// `trtllm-build --checkpoint_dir` works without custom code and keeps the fusions TensorRT-LLM applies only to its
// own classes. Otherwise the reason is reported and custom code is emitted.
// Mixture of experts: a layer whose MLP is `trtllm.moe` matches LLaMA (its MOE, plain: Mixtral, architecture
// MixtralForCausalLM) or QWen (SharedMoE with a sigmoid-gated shared expert: qwen2_moe, Qwen2MoeForCausalLM) when every
// layer is MoE, as those classes build MOE for every layer once config.moe has experts (docs/moe.md).

import type { Graph, Node } from "../../src/ir/graph.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { isTrtllmOp } from "../../src/lower/trtllm-ops.ts";
import { type LayerProgram, layerPrograms, renderProgram } from "./layer-program.ts";
import { foldOffsetNorms } from "./offset-norms.ts";

export type BuiltinFamily = "llama" | "qwen" | "gpt" | "gptj" | "gptneox" | "gemma" | "gemma2" | "phi3";

export interface BuiltinMatch {
  readonly family: BuiltinFamily;
  /** TensorRT-LLM `architecture` string (a MODEL_MAP key). */
  readonly architecture: string;
}

/** Classes 1.2.1 has that Kiln never writes; a model of their layer shape is told why (first among the reasons). */
export type UnwrittenFamily = "falcon";

export type Detection =
  | { readonly ok: true; readonly match: BuiltinMatch }
  | { readonly ok: false; readonly reasons: Readonly<Record<BuiltinFamily, string> & Partial<Record<UnwrittenFamily, string>>> };

interface Expected {
  readonly ops: readonly string[];
  /** Wiring: expected args (ignoring params) per step; "x"/"pos" or step index. Adds are compared as sets. */
  readonly args: readonly (readonly (string | number)[])[];
  readonly attention: (a: Readonly<Record<string, unknown>>) => string | undefined;
  readonly mlp: (a: Readonly<Record<string, unknown>>) => string | undefined;
  readonly model: (g: Graph, at: ModelParts, o: DetectOptions) => string | undefined;
  readonly architecture: string;
  /** Said instead of "layer N wires ..." when the ops match but their wiring does not. */
  readonly wiring?: string;
  /** Why a `trtllm.moe` MLP does not fit the class (undefined = fits); absent when the class has no MoE port. */
  readonly moe?: (a: Readonly<Record<string, unknown>>) => string | undefined;
  /** The architecture string when the layers are MoE. */
  readonly moeArchitecture?: string;
}

/** What detection needs beyond the graph: the pipeline stages asked for (some classes have none). */
export interface DetectOptions {
  readonly pp?: number;
  /** Weights are quantized (Phi-3's fused swiglu fc is only written unquantized). */
  readonly quantized?: boolean;
}

interface ModelParts {
  readonly hasPositionEmbedding: boolean;
  /** The constant the token embeddings are multiplied by (Gemma: sqrt(hidden)), if any. */
  readonly embeddingScale?: number;
  readonly finalNorm?: Node;
  readonly head?: Node;
  readonly heads: number;
  readonly headDim: number;
  readonly hidden: number;
}

const within = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.abs(b);
const defaultScale = (a: Readonly<Record<string, unknown>>) =>
  within(a.scale as number, 1 / Math.sqrt(a.headDim as number)) ? undefined : `softmax scale ${a.scale} is not 1/sqrt(head_dim)`;
const check = (...reasons: unknown[]) => reasons.find((r): r is string => typeof r === "string");
/** QK-norm: none of these classes normalizes q/k in 1.2.1 as Kiln verified it (QWen's qwen3 path was not found in
 *  the 1.2.1 sources read), so a model with it gets custom code with Attention(qk_layernorm=True). */
const noQkNorm = (a: Readonly<Record<string, unknown>>) => a.qkNorm === true && "per-head q/k RMSNorm (QK-norm)";

const FAMILIES: Record<BuiltinFamily, Expected> = {
  llama: {
    architecture: "LlamaForCausalLM",
    ops: ["rms_norm", "trtllm.attention", "add", "rms_norm", "trtllm.gated_mlp", "add"],
    args: [["x"], [0, "pos"], ["x", 1], [2], [3], [2, 4]],
    attention: (a) =>
      check(
        a.rope !== "neox" && "rotary style is not rope_gpt_neox",
        a.rotaryDim !== a.headDim && "partial rotary",
        a.qkvBias !== a.denseBias && "q/k/v and output biases differ",
        defaultScale(a),
        noQkNorm(a),
      ),
    mlp: (a) => check(a.act === "gelu" && "exact (erf) GELU, which TensorRT-LLM's activations do not have"),
    // LLaMADecoderLayer: MOE(moe_config=config.moe) in place of GatedMLP (tensorrt_llm/models/llama/model.py @ 89fd9b74).
    moe: (a) => check(a.shared && "a shared expert (LLaMA's MOE has none; QWen's SharedMoE does)"),
    moeArchitecture: "MixtralForCausalLM",
    model: (_g, m) =>
      check(
        m.hasPositionEmbedding && "learned position embedding",
        m.finalNorm?.op !== "rms_norm" && "final norm is not RMSNorm",
        m.head && m.head.inputs.length > 2 && "lm_head has a bias",
      ),
  },
  // QWenForCausalLM, qwen2 variant (tensorrt_llm/models/qwen/model.py @ 04a2cacb): LLaMA's layer structure, but its
  // Attention always has dense_bias=False and bias=attn_bias (True for Qwen2), so q/k/v biases without an output bias.
  qwen: {
    architecture: "Qwen2ForCausalLM",
    ops: ["rms_norm", "trtllm.attention", "add", "rms_norm", "trtllm.gated_mlp", "add"],
    args: [["x"], [0, "pos"], ["x", 1], [2], [3], [2, 4]],
    attention: (a) =>
      check(
        noQkNorm(a),
        a.rope !== "neox" && "rotary style is not rope_gpt_neox",
        a.rotaryDim !== a.headDim && "partial rotary",
        !a.qkvBias && "no q/k/v bias (Qwen2 has one)",
        a.denseBias && "output bias (QWen's dense has none)",
        defaultScale(a),
      ),
    mlp: (a) => check(a.act === "gelu" && "exact (erf) GELU, which TensorRT-LLM's activations do not have", a.bias && "MLP bias"),
    // qwen2_moe: SharedMoE(use_shared_gate=True) always builds the sigmoid-gated shared expert.
    moe: (a) => check(!a.shared && "no shared expert (QWen's qwen2_moe SharedMoE always has one)"),
    moeArchitecture: "Qwen2MoeForCausalLM",
    model: (_g, m) =>
      check(
        m.hasPositionEmbedding && "learned position embedding",
        m.finalNorm?.op !== "rms_norm" && "final norm is not RMSNorm",
        m.head && m.head.inputs.length > 2 && "lm_head has a bias",
      ),
  },
  // GPTForCausalLM (tensorrt_llm/models/gpt/model.py, config.py @ 6b25e1e0): LayerNorm pre-norm block, one `bias` flag
  // for every Linear, learned absolute positions (gpt2) or rope_gpt_neox over rotary_pct of the head with
  // num_key_value_heads (the starcoder2 variant: GPTConfig.from_hugging_face maps Starcoder2's use_bias, norm_epsilon,
  // rope_theta and partial_rotary_factor onto these fields and its gelu_pytorch_tanh onto 'gelu', ACT2FN's tanh GELU).
  gpt: {
    architecture: "GPTForCausalLM",
    ops: ["layer_norm", "trtllm.attention", "add", "layer_norm", "trtllm.mlp", "add"],
    args: [["x"], [0, "pos"], ["x", 1], [2], [3], [2, 4]],
    attention: (a) =>
      check(
        a.rope === "gptj" && "rotary style rope_gptj (GPT's rotary layers are rope_gpt_neox)",
        a.qkvBias !== a.denseBias && "q/k/v and output biases differ (GPT has one bias flag)",
        defaultScale(a),
        noQkNorm(a),
      ),
    mlp: (a) => check(a.act !== "gelu_tanh" && `activation ${a.act} (GPT-2 and StarCoder2 use the tanh GELU)`),
    model: (g, m) => {
      const att = g.nodes.find((n) => isTrtllmOp(n, "trtllm.attention"));
      const mlps = g.nodes.filter((n) => isTrtllmOp(n, "trtllm.mlp"));
      const rope = att?.attrs.rope !== "none";
      return check(
        rope && m.hasPositionEmbedding && "learned position embedding besides rotary positions",
        !rope && !m.hasPositionEmbedding && "no learned position embedding",
        !rope && att?.attrs.kvHeads !== att?.attrs.heads && "grouped-query heads with learned positions (the gpt2 variant)",
        mlps.some((n) => n.attrs.bias !== att?.attrs.qkvBias) && "MLP and attention biases differ (GPT has one bias flag)",
        m.finalNorm?.op !== "layer_norm" && "final norm is not LayerNorm",
        m.head && m.head.inputs.length > 2 && "lm_head has a bias",
      );
    },
  },
  gptj: {
    architecture: "GPTJForCausalLM",
    ops: ["layer_norm", "trtllm.attention", "add", "trtllm.mlp", "add"],
    args: [["x"], [0, "pos"], ["x", 1], [0], [2, 3]],
    attention: (a) =>
      check(
        a.rope !== "gptj" && "rotary style is not rope_gptj",
        a.qkvBias && "attention bias",
        a.denseBias && "output bias",
        defaultScale(a),
        a.kvHeads !== a.heads && "grouped-query heads",
        (a.ropeScaling as unknown) !== null && "rope scaling",
        noQkNorm(a),
      ),
    mlp: (a) => check(!a.bias && "MLP without bias", a.act !== "gelu_tanh" && `activation ${a.act} (GPT-J uses gelu_new)`),
    model: (g, m) => {
      const mlp = g.nodes.find((n) => n.op === "trtllm.mlp");
      const ffn = mlp ? (g.values.get(mlp.inputs[1]!)!.shape[0] as number) : 0;
      // TensorRT-LLM's GPT-J hard-codes these (its config cannot express anything else).
      const eps = g.nodes.filter((n) => n.op === "layer_norm").map((n) => n.attrs.eps as number);
      return check(
        m.hasPositionEmbedding && "learned position embedding",
        m.finalNorm?.op !== "layer_norm" && "final norm is not LayerNorm",
        ffn !== 4 * m.hidden && `MLP width ${ffn} is not 4 x hidden (fixed in TensorRT-LLM's GPT-J)`,
        eps.some((e) => e !== 1e-5) && "LayerNorm epsilon is not 1e-5 (fixed in TensorRT-LLM's GPT-J)",
        !(m.head && m.head.inputs.length > 2) && "lm_head has no bias",
      );
    },
  },
  // GPTNeoXForCausalLM (tensorrt_llm/models/gptneox/model.py, the DecoderModelForCausalLM version; checkpoint names from
  // examples/models/contrib/gptneox/convert_checkpoint.py @ 2a9abd95): parallel residual only (attention and MLP both
  // read the layer input, through input_layernorm and post_attention_layernorm), LayerNorms with the default eps 1e-5,
  // biased MHA with rope_gpt_neox over rotary_pct and no rotary scaling, MLP width fixed at 4 x hidden, ACT2FN's
  // activations (its 'gelu' is the tanh approximation, so HF's exact-GELU Pythia cannot be expressed), no pipeline
  // stages (its model has no send/recv; the converter asserts pp_size == 1).
  gptneox: {
    architecture: "GPTNeoXForCausalLM",
    wiring: "sequential residual (1.2.1's GPTNeoXDecoderLayer is parallel only)",
    ops: ["layer_norm", "trtllm.attention", "add", "layer_norm", "trtllm.mlp", "add"],
    args: [["x"], [0, "pos"], ["x", 1], ["x"], [3], [2, 4]],
    attention: (a) =>
      check(
        a.rope !== "neox" && "rotary style is not rope_gpt_neox",
        !(a.qkvBias && a.denseBias) && "attention without biases (GPT-NeoX's Attention has bias=True)",
        a.kvHeads !== a.heads && "grouped-query heads",
        (a.ropeScaling as unknown) !== null && "rope scaling (GPT-NeoX passes none)",
        defaultScale(a),
        noQkNorm(a),
      ),
    mlp: (a) =>
      check(
        !a.bias && "MLP without bias",
        a.act === "gelu" && "exact (erf) GELU: 1.2.1's 'gelu' is the tanh approximation, so HF GPT-NeoX's GELU has no built-in equivalent",
      ),
    model: (g, m, o) => {
      const mlp = g.nodes.find((n) => n.op === "trtllm.mlp");
      const ffn = mlp ? (g.values.get(mlp.inputs[1]!)!.shape[0] as number) : 0;
      const eps = g.nodes.filter((n) => n.op === "layer_norm").map((n) => n.attrs.eps as number);
      return check(
        (o.pp ?? 1) > 1 && "pipeline parallelism (1.2.1's GPT-NeoX model has no pipeline stages)",
        m.hasPositionEmbedding && "learned position embedding",
        m.headDim * m.heads !== m.hidden && "head_dim x heads is not hidden_size (GPT-NeoX derives head_dim)",
        m.finalNorm?.op !== "layer_norm" && "final norm is not LayerNorm",
        ffn !== 4 * m.hidden && `MLP width ${ffn} is not 4 x hidden (fixed in 1.2.1's GPTNeoXDecoderLayer)`,
        eps.some((e) => Math.abs(e - 1e-5) > 1e-12) && "LayerNorm epsilon is not 1e-5 (GPT-NeoX's LayerNorms use the default)",
        m.head && m.head.inputs.length > 2 && "lm_head has a bias",
      );
    },
  },
  // GemmaForCausalLM, Gemma 1 (tensorrt_llm/models/gemma/model.py @ 5dedf53b, config.py @ 9df6d722): LLaMA's layer with
  // RmsNorm layers whose checkpoint weights are 1 + w (convert.py @ 65b31db1; offset-norms.ts folds Kiln's (1 + w)
  // glue into that form), Attention(bias=attn_bias) with head_size from the config and q_scaling 1, a GatedMLP with
  // the config's hidden_act (ACT2FN: gelu_pytorch_tanh is the tanh GELU), and GemmaModel multiplying the token
  // embeddings by sqrt(hidden_size). GemmaConfig forces use_parallel_embedding = tp_size > 1.
  gemma: {
    architecture: "GemmaForCausalLM",
    ops: ["rms_norm", "trtllm.attention", "add", "rms_norm", "trtllm.gated_mlp", "add"],
    args: [["x"], [0, "pos"], ["x", 1], [2], [3], [2, 4]],
    attention: (a) =>
      check(
        a.rope !== "neox" && "rotary style is not rope_gpt_neox",
        a.rotaryDim !== a.headDim && "partial rotary (Gemma's Attention rotates the whole head)",
        a.qkvBias !== a.denseBias && "q/k/v and output biases differ (Gemma has one attn_bias)",
        defaultScale(a),
        noQkNorm(a),
      ),
    mlp: (a) => check(a.act !== "gelu_tanh" && `activation ${a.act} (Gemma's GatedMLP uses the tanh GELU)`),
    model: (_g, m) =>
      check(
        m.embeddingScale === undefined && "no sqrt(hidden_size) embedding scale (GemmaModel always applies it)",
        m.embeddingScale !== undefined && !within(m.embeddingScale, Math.sqrt(m.hidden)) && `embedding scale ${m.embeddingScale} is not sqrt(hidden_size)`,
        m.finalNorm?.op !== "rms_norm" && "final norm is not RMSNorm",
        m.head && m.head.inputs.length > 2 && "lm_head has a bias",
      ),
  },
  // GemmaForCausalLM, Gemma 2 (the same files; GemmaConfig.is_gemma_2 by the architecture name): inter_layernorms, i.e.
  // post_layernorm on the attention output and pre/post_feedforward_layernorm around the MLP, each residual added
  // after its post-norm; q_scaling = sqrt(query_pre_attn_scalar) / sqrt(head_size) (any softmax scale one value for
  // all layers), max_attn_value = attn_logit_softcapping, and the final logits capped by DecoderModelForCausalLM
  // (Gemma2ConfigGroup's final_logit_softcapping). Sliding layers take their window at run time, like every class.
  gemma2: {
    architecture: "Gemma2ForCausalLM",
    ops: ["rms_norm", "trtllm.attention", "rms_norm", "add", "rms_norm", "trtllm.gated_mlp", "rms_norm", "add"],
    args: [["x"], [0, "pos"], [1], ["x", 2], [3], [4], [5], [3, 6]],
    attention: (a) =>
      check(
        a.rope !== "neox" && "rotary style is not rope_gpt_neox",
        a.rotaryDim !== a.headDim && "partial rotary (Gemma's Attention rotates the whole head)",
        a.qkvBias !== a.denseBias && "q/k/v and output biases differ (Gemma has one attn_bias)",
        noQkNorm(a),
      ),
    mlp: (a) => check(a.act !== "gelu_tanh" && `activation ${a.act} (Gemma's GatedMLP uses the tanh GELU)`),
    model: (g, m) => {
      const atts = g.nodes.filter((n) => isTrtllmOp(n, "trtllm.attention"));
      const same = (k: "scale" | "softcap") => atts.every((n) => n.attrs[k] === atts[0]!.attrs[k]);
      return check(
        !same("scale") && "softmax scales differ between layers (one query_pre_attn_scalar)",
        !same("softcap") && "attention soft-caps differ between layers (one attn_logit_softcapping)",
        m.embeddingScale === undefined && "no sqrt(hidden_size) embedding scale (GemmaModel always applies it)",
        m.embeddingScale !== undefined && !within(m.embeddingScale, Math.sqrt(m.hidden)) && `embedding scale ${m.embeddingScale} is not sqrt(hidden_size)`,
        m.finalNorm?.op !== "rms_norm" && "final norm is not RMSNorm",
        m.head && m.head.inputs.length > 2 && "lm_head has a bias",
      );
    },
  },
  // Phi3ForCausalLM, the Phi-3 mini/medium/3.5/4-mini variant (tensorrt_llm/models/phi3/model.py @ c4dc529f, config.py
  // @ 1e6a4f97, convert.py @ 89fd9b74): RmsNorm pre-norm layers, Attention without biases or head size (hidden /
  // heads) over rotary_pct = partial_rotary_factor of the head, no rotary scaling short of long_rope, and a plain MLP
  // with hidden_act swiglu whose fc holds [up; gate] (the converter swaps gate_up_proj's halves). Phi3Model has no
  // pipeline stages (no send/recv).
  phi3: {
    architecture: "Phi3ForCausalLM",
    ops: ["rms_norm", "trtllm.attention", "add", "rms_norm", "trtllm.gated_mlp", "add"],
    args: [["x"], [0, "pos"], ["x", 1], [2], [3], [2, 4]],
    attention: (a) =>
      check(
        a.rope !== "neox" && "rotary style is not rope_gpt_neox",
        (a.qkvBias || a.denseBias) && "attention biases (Phi-3's Attention has none)",
        (a.ropeScaling as unknown) !== null && "rope scaling (Phi-3 takes long_rope only, not modelled here)",
        defaultScale(a),
        noQkNorm(a),
      ),
    mlp: (a) => check(a.act !== "silu" && `activation ${a.act} (Phi-3's MLP is swiglu)`, a.bias && "MLP bias"),
    model: (_g, m, o) =>
      check(
        (o.pp ?? 1) > 1 && "pipeline parallelism (1.2.1's Phi3Model has no pipeline stages)",
        o.quantized && "quantized weights (Kiln writes Phi-3's fused swiglu fc unquantized only)",
        m.headDim * m.heads !== m.hidden && "head_dim x heads is not hidden_size (Phi-3's Attention derives head_dim)",
        m.hasPositionEmbedding && "learned position embedding",
        m.finalNorm?.op !== "rms_norm" && "final norm is not RMSNorm",
        m.head && m.head.inputs.length > 2 && "lm_head has a bias",
      ),
  },
};

const sameArgs = (got: readonly (string | number)[], want: readonly (string | number)[], commutative: boolean) => {
  const g = got.filter((a) => a !== "param").map(String);
  const w = want.map(String);
  return commutative ? [...g].sort().join() === [...w].sort().join() : g.join() === w.join();
};

function matchLayer(p: LayerProgram, e: Expected): string | undefined {
  const isMoe = p.steps.some((s) => s.node.op === "trtllm.moe");
  if (isMoe && !e.moe) return `layer ${p.index}: mixture of experts (this class's MoE is not ported)`;
  // A MoE block stands where the class's GatedMLP stands.
  const ops = p.steps.map((s) => (s.node.op === "trtllm.moe" ? "trtllm.gated_mlp" : s.node.op));
  if (ops.join() !== e.ops.join()) return `layer ${p.index} is ${renderProgram(p)}`;
  for (const [k, s] of p.steps.entries()) {
    if (!sameArgs(s.args, e.args[k]!, s.node.op === "add")) return e.wiring ? `layer ${p.index}: ${e.wiring}` : `layer ${p.index} wires ${renderProgram(p)}`;
    const why =
      s.node.op === "trtllm.attention"
        ? e.attention(s.node.attrs)
        : s.node.op === "trtllm.moe"
          ? e.moe!(s.node.attrs)
          : s.node.op.startsWith("trtllm.") && s.node.op.includes("mlp")
            ? e.mlp(s.node.attrs)
            : undefined;
    if (why) return `layer ${p.index}: ${why}`;
  }
  const norms = p.steps.filter((s) => s.node.op.endsWith("norm")).map((s) => s.node.attrs.eps);
  if (new Set(norms).size > 1) return `layer ${p.index}: norms with different epsilons`;
  return undefined;
}

/** The scaled-embedding glue: `mul(embedding, constant)` at the model level, right on the token embeddings. */
function embeddingScaleNodes(g: Graph): { mul: Node; constant: Node } | undefined {
  const embed = g.nodes.find((n) => n.scope === "transformer.vocab_embedding");
  const mul = embed && g.nodes.find((n) => n.op === "mul" && n.scope === "transformer" && n.inputs.includes(embed.outputs[0]!));
  const constant = mul && g.nodes.find((n) => n.op === "constant" && n.scope === "transformer" && mul.inputs.includes(n.outputs[0]!));
  return mul && constant ? { mul, constant } : undefined;
}

function modelParts(g: Graph): ModelParts {
  const att = g.nodes.find((n) => isTrtllmOp(n, "trtllm.attention"));
  const scale = embeddingScaleNodes(g)?.constant.attrs.value;
  return {
    hasPositionEmbedding: g.nodes.some((n) => n.scope === "transformer.position_embedding"),
    ...(typeof scale === "number" && { embeddingScale: scale }),
    finalNorm: g.nodes.find((n) => n.scope === "transformer.ln_f"),
    head: g.nodes.find((n) => n.op === "trtllm.lm_head"),
    heads: att?.attrs.heads ?? 0,
    headDim: att?.attrs.headDim ?? 0,
    hidden: att ? (g.values.get(att.inputs[0]!)!.shape.at(-1) as number) : 0,
  };
}

/** The model-level glue every built-in has: embeddings, layers, final norm, lm_head, and nothing else (Gemma: also
 *  its embedding scale). */
function glueProblem(g: Graph, family: BuiltinFamily): string | undefined {
  const scale = family === "gemma" || family === "gemma2" ? embeddingScaleNodes(g) : undefined;
  const known = (n: Node) =>
    n === scale?.mul ||
    n === scale?.constant ||
    /^transformer\.layers\.\d+/.test(n.scope) ||
    ["transformer.vocab_embedding", "transformer.position_embedding", "transformer.ln_f", "lm_head"].includes(n.scope) ||
    (n.op === "add" && n.scope === "transformer");
  const extra = g.nodes.find((n) => !known(n));
  if (extra) return `extra ${extra.op} outside the decoder layers (${extra.scope || "top level"})`;
  const custom = g.params.find(
    (p) =>
      !/\.(q_layernorm|k_layernorm|router|shared_expert_gate)\.weight$|\.(qkv|dense|fc|gate|proj)\.(weight|bias)$|(input_layernorm|post_layernorm|pre_feedforward_layernorm|post_feedforward_layernorm|ln_f|vocab_embedding|position_embedding)\.(weight|bias)$|^lm_head\.(weight|bias)$/.test(
        p.name,
      ),
  );
  return custom ? `custom parameter '${custom.name}'` : undefined;
}

/** Soft-capping: only Gemma 2's class caps attention logits (max_attn_value) and final logits in 1.2.1. */
function softcapProblem(g: Graph): string | undefined {
  const att = g.nodes.find((n) => isTrtllmOp(n, "trtllm.attention") && n.attrs.softcap > 0);
  if (att) return `${att.scope}: attention-logit soft-capping`;
  return g.nodes.some((n) => isTrtllmOp(n, "trtllm.lm_head") && n.attrs.softcap > 0) ? "final-logit soft-capping" : undefined;
}

// FalconForCausalLM (tensorrt_llm/models/falcon): its 7B block is one LayerNorm feeding attention and MLP in parallel,
// but FalconConfig.from_hugging_face always sets hidden_act='gelu' (models/falcon/config.py @
// 201135e58aa525af7e523d091d4c9584229524bc), ACT2FN's tanh approximation, where HF Falcon's MLP uses the exact GELU.
const FALCON_BLOCK = ["layer_norm", "trtllm.mlp", "trtllm.attention", "add", "add"].join();

function unwrittenReasons(g: Graph, programs: readonly LayerProgram[]): Partial<Record<UnwrittenFamily, string>> {
  const falconShaped = programs.length > 0 && programs.every((p) => p.steps.map((s) => s.node.op).join() === FALCON_BLOCK);
  if (!falconShaped) return {};
  const exact = g.nodes.some((n) => isTrtllmOp(n, "trtllm.mlp") && n.attrs.act === "gelu");
  return {
    falcon: exact
      ? "1.2.1's FalconConfig fixes hidden_act 'gelu', the tanh approximation, and HF Falcon's MLP uses the exact (erf) GELU"
      : "Kiln does not write FalconForCausalLM checkpoints (its exact-GELU HF form cannot use the class)",
  };
}

export function detectBuiltin(g: Graph, o: DetectOptions = {}): Detection {
  const programs = layerPrograms(g);
  const parts = modelParts(g);
  const softcap = softcapProblem(g);
  const reasons = { ...unwrittenReasons(g, programs) } as Record<BuiltinFamily, string> & Partial<Record<UnwrittenFamily, string>>;
  const moeLayers = programs.filter((p) => p.steps.some((s) => s.node.op === "trtllm.moe")).length;
  // TensorRT-LLM's classes make every layer MoE once config.moe has experts: a mix needs custom code.
  const mixed = moeLayers > 0 && moeLayers < programs.length ? `${moeLayers} of ${programs.length} layers are mixture-of-experts` : undefined;
  for (const [family, e] of Object.entries(FAMILIES) as [BuiltinFamily, Expected][]) {
    const why =
      glueProblem(g, family) ??
      mixed ??
      (family === "gemma2" ? undefined : softcap) ??
      programs.map((p) => matchLayer(p, e)).find((r) => r !== undefined) ??
      e.model(g, parts, o);
    if (!why) return { ok: true, match: { family, architecture: moeLayers ? e.moeArchitecture! : e.architecture } };
    reasons[family] = why;
  }
  return { ok: false, reasons };
}

/** Detection as the engine target runs it: on the graph with (1 + w) norms folded (offset-norms.ts) when it has
 *  any, since that is the form a built-in class stores; `lowered` is the model a built-in checkpoint is written from. */
export function detectForEngine(low: LoweredModel, o: DetectOptions = {}): { detection: Detection; lowered: LoweredModel } {
  const folded = foldOffsetNorms(low);
  const lowered = folded ?? low;
  return { detection: detectBuiltin(lowered.graph, o), lowered };
}
