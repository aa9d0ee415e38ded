// Built-in detection: a lowered model is emitted for one of TensorRT-LLM's own classes (LLaMAForCausalLM,
// QWenForCausalLM, GPTForCausalLM, GPTJForCausalLM) when every decoder layer and the model around it have exactly that class's
// structure and its fixed settings; then `trtllm-build --checkpoint_dir` works without custom code and keeps the
// fusions TensorRT-LLM applies only to its own classes. Otherwise the reason is reported and custom code is emitted.
// Mixture of experts: a layer whose MLP is `trtllm.moe` matches LLaMA (its MOE, plain: Mixtral, architecture
// MixtralForCausalLM) or QWen (SharedMoE with a sigmoid-gated shared expert: qwen2_moe, Qwen2MoeForCausalLM) when every
// layer is MoE, as those classes build MOE for every layer once config.moe has experts (docs/moe.md).

import type { Graph, Node } from "../../src/ir/graph.ts";
import { isTrtllmOp } from "../../src/lower/trtllm-ops.ts";
import { type LayerProgram, layerPrograms, renderProgram } from "./layer-program.ts";

export type BuiltinFamily = "llama" | "qwen" | "gpt" | "gptj";

export interface BuiltinMatch {
  readonly family: BuiltinFamily;
  /** TensorRT-LLM `architecture` string (a MODEL_MAP key). */
  readonly architecture: string;
}

export type Detection = { readonly ok: true; readonly match: BuiltinMatch } | { readonly ok: false; readonly reasons: Readonly<Record<BuiltinFamily, string>> };

interface Expected {
  readonly ops: readonly string[];
  /** Wiring: expected args (ignoring params) per step; "x"/"pos" or step index. Adds are compared as sets. */
  readonly args: readonly (readonly (string | number)[])[];
  readonly attention: (a: Readonly<Record<string, unknown>>) => string | undefined;
  readonly mlp: (a: Readonly<Record<string, unknown>>) => string | undefined;
  readonly model: (g: Graph, at: ModelParts) => string | undefined;
  readonly architecture: string;
  /** Why a `trtllm.moe` MLP does not fit the class (undefined = fits); absent when the class has no MoE port. */
  readonly moe?: (a: Readonly<Record<string, unknown>>) => string | undefined;
  /** The architecture string when the layers are MoE. */
  readonly moeArchitecture?: string;
}

interface ModelParts {
  readonly hasPositionEmbedding: boolean;
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
  gpt: {
    architecture: "GPTForCausalLM",
    ops: ["layer_norm", "trtllm.attention", "add", "layer_norm", "trtllm.mlp", "add"],
    args: [["x"], [0, "pos"], ["x", 1], [2], [3], [2, 4]],
    attention: (a) =>
      check(
        a.rope !== "none" && "rotary embedding (this port covers learned absolute positions)",
        !a.qkvBias && "no attention bias",
        !a.denseBias && "no output bias",
        defaultScale(a),
        a.kvHeads !== a.heads && "grouped-query heads",
        noQkNorm(a),
      ),
    mlp: (a) => check(!a.bias && "MLP without bias", a.act !== "gelu_tanh" && `activation ${a.act} (GPT-2 uses gelu_new)`),
    model: (_g, m) =>
      check(
        !m.hasPositionEmbedding && "no learned position embedding",
        m.finalNorm?.op !== "layer_norm" && "final norm is not LayerNorm",
        m.head && m.head.inputs.length > 2 && "lm_head has a bias",
      ),
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
    if (!sameArgs(s.args, e.args[k]!, s.node.op === "add")) return `layer ${p.index} wires ${renderProgram(p)}`;
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

function modelParts(g: Graph): ModelParts {
  const att = g.nodes.find((n) => isTrtllmOp(n, "trtllm.attention"));
  return {
    hasPositionEmbedding: g.nodes.some((n) => n.scope === "transformer.position_embedding"),
    finalNorm: g.nodes.find((n) => n.scope === "transformer.ln_f"),
    head: g.nodes.find((n) => n.op === "trtllm.lm_head"),
    heads: att?.attrs.heads ?? 0,
    headDim: att?.attrs.headDim ?? 0,
    hidden: att ? (g.values.get(att.inputs[0]!)!.shape.at(-1) as number) : 0,
  };
}

/** The model-level glue every built-in has: embeddings, layers, final norm, lm_head, and nothing else. */
function glueProblem(g: Graph): string | undefined {
  const known = (n: Node) =>
    /^transformer\.layers\.\d+/.test(n.scope) ||
    ["transformer.vocab_embedding", "transformer.position_embedding", "transformer.ln_f", "lm_head"].includes(n.scope) ||
    (n.op === "add" && n.scope === "transformer");
  const extra = g.nodes.find((n) => !known(n));
  if (extra) return `extra ${extra.op} outside the decoder layers (${extra.scope || "top level"})`;
  const custom = g.params.find(
    (p) =>
      !/\.(q_layernorm|k_layernorm|router|shared_expert_gate)\.weight$|\.(qkv|dense|fc|gate|proj)\.(weight|bias)$|(input_layernorm|post_layernorm|ln_f|vocab_embedding|position_embedding)\.(weight|bias)$|^lm_head\.(weight|bias)$/.test(
        p.name,
      ),
  );
  return custom ? `custom parameter '${custom.name}'` : undefined;
}

export function detectBuiltin(g: Graph): Detection {
  const programs = layerPrograms(g);
  const parts = modelParts(g);
  const glue = glueProblem(g);
  const reasons = {} as Record<BuiltinFamily, string>;
  const moeLayers = programs.filter((p) => p.steps.some((s) => s.node.op === "trtllm.moe")).length;
  // TensorRT-LLM's classes make every layer MoE once config.moe has experts: a mix needs custom code.
  const mixed = moeLayers > 0 && moeLayers < programs.length ? `${moeLayers} of ${programs.length} layers are mixture-of-experts` : undefined;
  for (const [family, e] of Object.entries(FAMILIES) as [BuiltinFamily, Expected][]) {
    const why = glue ?? mixed ?? programs.map((p) => matchLayer(p, e)).find((r) => r !== undefined) ?? e.model(g, parts);
    if (!why) return { ok: true, match: { family, architecture: moeLayers ? e.moeArchitecture! : e.architecture } };
    reasons[family] = why;
  }
  return { ok: false, reasons };
}
