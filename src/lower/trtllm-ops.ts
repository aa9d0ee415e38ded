// Ops of the TensorRT-LLM level IR: one op per TensorRT-LLM layer that fuses several core ops, with that layer's
// semantics and parameter layout (full, unsharded shapes; sharding is applied per rank when checkpoints are
// written). Attention = qkv ColumnLinear + rotary + GPT attention plugin + dense RowLinear; GatedMLP = proj(act(fc(x))
// * gate(x)) with fc the activated side; MLP = proj(act(fc(x))); LMHead = ColumnLinear with gathered output;
// MoE = TensorRT-LLM's MixtureOfExperts / SharedMoE (float32 router, experts stacked as fc [E, 2I, H] = [up ; gate]
// per expert and proj [E, H, I], optional gated shared expert; docs/moe.md "TensorRT-LLM layout").
// Everything else in a lowered graph stays a core op (embedding, norms, residual adds, custom glue).

import type { AttrSchema, AttrsOf } from "../ir/attrs.ts";
import type { Graph, Node } from "../ir/graph.ts";
import { type OpDef, registerOp, ShapeError, type ValueType } from "../ir/ops.ts";
import { formatShape } from "../ir/shape.ts";

const fail = (msg: string): never => {
  throw new ShapeError(msg);
};

const ATTENTION_ATTRS = {
  heads: "int",
  kvHeads: "int",
  headDim: "int",
  /** "none" (learned absolute positions elsewhere), "neox" (rope_gpt_neox) or "gptj" (rope_gptj). */
  rope: { oneOf: ["none", "neox", "gptj"] },
  rotaryDim: "int",
  ropeTheta: "number",
  ropeScaling: "json",
  /** Softmax scale; TensorRT-LLM's q_scaling = 1 / (scale * sqrt(headDim)). */
  scale: "number",
  qkvBias: "bool",
  denseBias: "bool",
  /** Sliding window in tokens (0 = global). TensorRT-LLM 1.2.1 takes it at runtime, per layer, as
   *  max_attention_window_size; the layer itself is unchanged. */
  window: "int",
  /** Attention-logit soft-capping, 0 = none: TensorRT-LLM 1.2.1's Attention(max_attn_value=cap), which the GPT
   *  attention plugin takes as attn_logit_softcapping_scale (models/gemma/model.py passes
   *  config.attn_logit_softcapping there). */
  softcap: "number",
  /** QK-norm (TensorRT-LLM Attention qk_layernorm with RmsNorm): per-head RMSNorm of q and k before rotary, with
   *  two trailing inputs q_layernorm.weight and k_layernorm.weight, each [headDim]. */
  qkNorm: "bool",
  qkNormEps: "number",
  /** "allreduce": RowLinear reduces, then adds its bias once (TensorRT-LLM default). "layer": no reduction inside the
   *  layer; the decoder layer sums partials (GPT-J's parallel block), so biases live on rank 0 only. */
  reduce: { oneOf: ["allreduce", "layer"] },
} as const satisfies AttrSchema;

const MLP_ATTRS = {
  /** "swiglu" (plain MLP only, TensorRT-LLM's ACT2FN swiglu): fc holds 2 x ffn rows, per rank [x_r; gate_r], and
   *  the activation is silu(gate) * x. Only built-in classes that take it (Phi-3) get it, from the engine target. */
  act: { oneOf: ["silu", "gelu", "gelu_tanh", "relu", "swiglu"] },
  bias: "bool",
  reduce: { oneOf: ["allreduce", "layer"] },
} as const satisfies AttrSchema;

const MOE_ATTRS = {
  numExperts: "int",
  topK: "int",
  /** MoeConfig.ExpertScaleNormalizationMode: "none" = top-k of softmax(logits); "renormalize" = softmax over the
   *  top-k logits (HF's softmax, top-k, divide by the sum). Both route on float32 logits. */
  normalization: { oneOf: ["none", "renormalize"] },
  /** The experts' (and shared expert's) activation on the gate half: fc = [up ; gate], out = act(gate) * up. */
  act: { oneOf: ["silu"] },
  /** SharedMoE with use_shared_gate: a shared expert added with a sigmoid gate. */
  shared: "bool",
} as const satisfies AttrSchema;

function tensor3(t: ValueType | undefined, shape: readonly number[], what: string) {
  if (t?.shape.length !== 3 || shape.some((d, i) => t.shape[i] !== d))
    fail(`${what} must be [${shape.join(", ")}], got ${t ? formatShape(t.shape) : "nothing"}`);
}

function matrix(t: ValueType | undefined, rows: number, cols: number, what: string) {
  if (t?.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== cols)
    fail(`${what} must be [${rows}, ${cols}], got ${t ? formatShape(t.shape) : "nothing"}`);
}
function vector(t: ValueType | undefined, n: number, what: string) {
  if (t?.shape.length !== 1 || t.shape[0] !== n) fail(`${what} must be [${n}], got ${t ? formatShape(t.shape) : "nothing"}`);
}
const hiddenOf = (x: ValueType) => x.shape[x.shape.length - 1] as number;

const LM_HEAD_ATTRS = {
  vocab: "int",
  /** Final-logit soft-capping, 0 = none. TensorRT-LLM 1.2.1's DecoderModelForCausalLM.forward applies it to lm_head's
   *  output when the config has Gemma2ConfigGroup's keys (models/modeling_utils.py @ b35ac1b6:
   *  lm_logits * (1 / final_logit_softcapping), tanh, * final_logit_softcapping). */
  softcap: "number",
} as const satisfies AttrSchema;

export const TRTLLM_OPS = {
  "trtllm.attention": {
    attrs: ATTENTION_ATTRS,
    arity: [4, 8],
    infer: (ins, a) => {
      const [x, pos, qkvW, ...rest] = ins as [ValueType, ValueType, ValueType, ...ValueType[]];
      const d = hiddenOf(x);
      const qkvRows = (a.heads + 2 * a.kvHeads) * a.headDim;
      matrix(qkvW, qkvRows, d, "qkv.weight");
      if (pos.dtype !== "i32") fail(`positions must be i32, got ${pos.dtype}`);
      const [qkvB, denseW, denseB] = a.qkvBias ? [rest[0], rest[1], rest[2]] : [undefined, rest[0], rest[1]];
      if (a.qkvBias) vector(qkvB, qkvRows, "qkv.bias");
      matrix(denseW, d, a.heads * a.headDim, "dense.weight");
      if (a.denseBias) vector(denseB, d, "dense.bias");
      const count = 4 + Number(a.qkvBias) + Number(a.denseBias) + 2 * Number(a.qkNorm);
      if (ins.length !== count) fail(`attention takes ${count} inputs with these bias and qkNorm flags, got ${ins.length}`);
      if (a.qkNorm) ["q_layernorm.weight", "k_layernorm.weight"].forEach((what, k) => vector(ins[count - 2 + k], a.headDim, what));
      if (a.heads % a.kvHeads !== 0) fail(`${a.heads} heads are not a multiple of ${a.kvHeads} kv heads`);
      return [{ dtype: x.dtype, shape: [...x.shape] }];
    },
    doc: "TensorRT-LLM Attention: fused qkv, [per-head q/k RMSNorm], rotary, causal GPT attention plugin, dense (inputs: x, positions, qkv.weight, [qkv.bias], dense.weight, [dense.bias], [q_layernorm.weight, k_layernorm.weight])",
  } satisfies OpDef<typeof ATTENTION_ATTRS>,
  "trtllm.gated_mlp": {
    attrs: MLP_ATTRS,
    arity: [4, 7],
    infer: (ins, a) => {
      const [x, fc, gate, proj, ...biases] = ins as [ValueType, ValueType, ValueType, ValueType, ...ValueType[]];
      if (a.act === "swiglu") fail("gated_mlp has its own gate; swiglu is a plain MLP's activation");
      const d = hiddenOf(x);
      const ffn = fc.shape[0] as number;
      matrix(fc, ffn, d, "fc.weight");
      matrix(gate, ffn, d, "gate.weight");
      matrix(proj, d, ffn, "proj.weight");
      if (biases.length !== (a.bias ? 3 : 0)) fail(`gated_mlp with bias=${a.bias} takes ${a.bias ? 7 : 4} inputs, got ${ins.length}`);
      if (a.bias) [ffn, ffn, d].forEach((n, i) => vector(biases[i], n, ["fc.bias", "gate.bias", "proj.bias"][i]!));
      return [{ dtype: x.dtype, shape: [...x.shape] }];
    },
    doc: "TensorRT-LLM GatedMLP: proj(act(fc(x)) * gate(x)); fc is the activated side (HF gate_proj), gate is HF up_proj (inputs: x, fc.weight, gate.weight, proj.weight, [fc.bias, gate.bias, proj.bias])",
  } satisfies OpDef<typeof MLP_ATTRS>,
  "trtllm.mlp": {
    attrs: MLP_ATTRS,
    arity: [3, 5],
    infer: (ins, a) => {
      const [x, fc, proj, ...biases] = ins as [ValueType, ValueType, ValueType, ...ValueType[]];
      const d = hiddenOf(x);
      const rows = fc.shape[0] as number;
      const ffn = a.act === "swiglu" ? rows / 2 : rows;
      matrix(fc, rows, d, "fc.weight");
      matrix(proj, d, ffn, "proj.weight");
      if (biases.length !== (a.bias ? 2 : 0)) fail(`mlp with bias=${a.bias} takes ${a.bias ? 5 : 3} inputs, got ${ins.length}`);
      if (a.bias) [rows, d].forEach((n, i) => vector(biases[i], n, ["fc.bias", "proj.bias"][i]!));
      return [{ dtype: x.dtype, shape: [...x.shape] }];
    },
    doc: "TensorRT-LLM MLP: proj(act(fc(x))); swiglu: fc gives [x; gate] halves, act = silu(gate) * x (inputs: x, fc.weight, proj.weight, [fc.bias, proj.bias])",
  } satisfies OpDef<typeof MLP_ATTRS>,
  "trtllm.moe": {
    attrs: MOE_ATTRS,
    arity: [4, 7],
    infer: (ins, a) => {
      const [x, router, fc, proj, sFc, sProj, sGate] = ins as (ValueType | undefined)[] as [ValueType, ...(ValueType | undefined)[]];
      const d = hiddenOf(x);
      const E = a.numExperts;
      if (!(a.topK >= 1 && a.topK <= E)) fail(`topK ${a.topK} is not in 1..${E}`);
      if (ins.length !== (a.shared ? 7 : 4)) fail(`moe with shared=${a.shared} takes ${a.shared ? 7 : 4} inputs, got ${ins.length}`);
      matrix(router, E, d, "router.weight");
      const inter = ((fc?.shape[1] as number) ?? 0) / 2;
      tensor3(fc, [E, 2 * inter, d], "fc.weight ([E, 2 * intermediate, hidden])");
      tensor3(proj, [E, d, inter], "proj.weight");
      if (a.shared) {
        const s = ((sFc?.shape[0] as number) ?? 0) / 2;
        matrix(sFc, 2 * s, d, "shared_expert.fc.weight");
        matrix(sProj, d, s, "shared_expert.proj.weight");
        matrix(sGate, 1, d, "shared_expert_gate.weight");
      }
      return [{ dtype: x.dtype, shape: [...x.shape] }];
    },
    doc: "TensorRT-LLM MixtureOfExperts / SharedMoE: float32 router, top-k experts (fc = [up ; gate] stacked [E, 2I, H], proj [E, H, I]), optional sigmoid-gated shared expert (inputs: x, router.weight, fc.weight, proj.weight, [shared_expert.fc.weight, shared_expert.proj.weight, shared_expert_gate.weight])",
  } satisfies OpDef<typeof MOE_ATTRS>,
  "trtllm.lm_head": {
    attrs: LM_HEAD_ATTRS,
    arity: [2, 3],
    infer: (ins, a) => {
      const [x, w, b] = ins as [ValueType, ValueType, ValueType | undefined];
      matrix(w, a.vocab, hiddenOf(x), "lm_head.weight");
      if (b) vector(b, a.vocab, "lm_head.bias");
      return [{ dtype: x.dtype, shape: [...x.shape.slice(0, -1), a.vocab] }];
    },
    doc: "TensorRT-LLM lm_head: ColumnLinear(gather_output=True); vocab rows padded to a multiple of tp in checkpoints; softcap > 0 caps the logits to softcap * tanh(logits / softcap)",
  } satisfies OpDef<typeof LM_HEAD_ATTRS>,
} as const;

export type TrtllmOp = keyof typeof TRTLLM_OPS;
export type TrtllmAttrs<K extends TrtllmOp> = AttrsOf<(typeof TRTLLM_OPS)[K]["attrs"]>;
/** A lowered node of a TensorRT-LLM op, with that op's typed attributes. */
export type TrtllmNodeOf<K extends TrtllmOp> = Node & { readonly op: K; readonly attrs: TrtllmAttrs<K> };

/** Narrows a node to one TensorRT-LLM op (attrs typed by the table above; the verifier checks them). */
export function isTrtllmOp<K extends TrtllmOp>(n: Node, ...ops: readonly K[]): n is TrtllmNodeOf<K> {
  return (ops as readonly string[]).includes(n.op);
}

/** Parameters TensorRT-LLM keeps in float32 whatever the model dtype: the MoE routers (input 1 of trtllm.moe). */
export function float32Params(g: Graph): Set<string> {
  const names = new Map(g.params.map((p) => [p.value, p.name]));
  return new Set(g.nodes.filter((n) => n.op === "trtllm.moe").map((n) => names.get(n.inputs[1]!)!));
}

let registered = false;
/** Registers the TensorRT-LLM ops in the op table (idempotent). */
export function registerTrtllmOps(): void {
  if (registered) return;
  for (const [name, def] of Object.entries(TRTLLM_OPS)) registerOp(name, def as unknown as OpDef);
  registered = true;
}
registerTrtllmOps();
