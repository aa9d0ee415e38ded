// Free-function forms of the DSL ops (like torch.nn.functional), for ops that take several tensors or read better
// as calls. Each is one IR op; composite helpers are built from them.

import type { JsonValue } from "../ir/attrs.ts";
import { emit1, scalar, type Tensor } from "./tensor.ts";

export interface RopeSpec {
  /** "neox" = rotate-half (GPT-NeoX, LLaMA), "gptj" = interleaved pairs (GPT-J). */
  readonly style: "neox" | "gptj";
  /** Channels of each head that rotate (partial rotary when < head_dim). */
  readonly rotaryDim: number;
  readonly theta: number;
  /** null, {type:"linear", factor} or {type:"llama3", factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings}. */
  readonly scaling: JsonValue;
}

export const linear = (x: Tensor, weight: Tensor, bias?: Tensor): Tensor => emit1("linear", [x, weight, bias]);
export const embedding = (table: Tensor, ids: Tensor): Tensor => emit1("embedding", [table, ids]);
export const layerNorm = (x: Tensor, weight: Tensor | undefined, bias: Tensor | undefined, eps: number): Tensor =>
  emit1("layer_norm", [x, weight, bias], { eps });
export const rmsNorm = (x: Tensor, weight: Tensor | undefined, eps: number): Tensor => emit1("rms_norm", [x, weight], { eps });
export const concat = (xs: Tensor[], axis: number): Tensor => emit1("concat", xs, { axis });

/** x: [batch, seq, heads, head_dim], positions: [batch, seq]. */
export const rope = (x: Tensor, positions: Tensor, spec: RopeSpec): Tensor =>
  emit1("rope", [x, positions], { style: spec.style, rotaryDim: spec.rotaryDim, theta: spec.theta, scaling: spec.scaling });

/** act(x[..., n:]) * x[..., :n] for x[..., 2n] (TensorRT-LLM's fused gated-MLP layout). */
export const gatedActivation = (x: Tensor, act: "silu" | "gelu" | "gelu_tanh" | "relu"): Tensor => emit1("gated_activation", [x], { act });

/** q: [batch, seq, heads, d], k/v: [batch, seq, kv_heads, d] -> [batch, seq, heads, d]. `window` (tokens, default 0 =
 *  unlimited) is a sliding window: query i attends to keys i-window+1 .. i. `softcap` (default 0 = none) caps the
 *  scaled scores to softcap * tanh(scores / softcap) before the mask (Gemma 2's attn_logit_softcapping). */
export const attention = (q: Tensor, k: Tensor, v: Tensor, opts: { causal: boolean; scale: number; window?: number; softcap?: number }): Tensor => {
  const window = opts.window ?? 0;
  if (!Number.isInteger(window) || window < 0) throw new Error(`attention window must be a whole number of tokens >= 0 (0 = unlimited), got ${window}`);
  const softcap = opts.softcap ?? 0;
  if (!(softcap >= 0) || !Number.isFinite(softcap)) throw new Error(`attention softcap must be a finite number >= 0 (0 = none), got ${softcap}`);
  return emit1("attention", [q, k, v], { causal: opts.causal, scale: opts.scale, window, softcap });
};

/** Soft-capping cap * tanh(x / cap), the same as `x.softcap(cap)`. */
export const softcap = (x: Tensor, cap: number): Tensor => {
  if (!(cap > 0) || !Number.isFinite(cap)) throw new Error(`softcap needs a finite cap > 0, got ${cap}`);
  return emit1("softcap", [x], { cap });
};

/** cond ? a : b elementwise; cond is bool, numbers become scalars of the other branch's dtype. */
export const where = (cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor => {
  const dtype = typeof a === "number" ? (typeof b === "number" ? "f32" : b.dtype) : a.dtype;
  const operand = (v: Tensor | number) => (typeof v === "number" ? scalar(v, dtype) : v);
  return emit1("where", [cond, operand(a), operand(b)]);
};

/** The `moe` op's attributes (see docs/dsl-reference.md): routing and the experts' gated activation. */
export interface MoeSpec {
  readonly numExperts: number;
  readonly topK: number;
  readonly scoring: "softmax" | "sigmoid";
  readonly normalizeTopK: boolean;
  readonly activation: "silu" | "gelu" | "gelu_tanh" | "relu";
}

/** Weights of a `moe` op: routed experts stacked on a leading [E] axis, and an optional shared expert. */
export interface MoeWeights {
  /** [E, H] */ readonly router: Tensor;
  /** [E, I, H] */ readonly gate: Tensor;
  /** [E, I, H] */ readonly up: Tensor;
  /** [E, H, I] */ readonly down: Tensor;
  readonly shared?: {
    /** [S, H] */ readonly gate: Tensor;
    /** [S, H] */ readonly up: Tensor;
    /** [H, S] */ readonly down: Tensor;
    /** [1, H]: scales the shared expert by sigmoid(x . expertGate) (Qwen2-MoE). */ readonly expertGate?: Tensor;
  };
}

export const moe = (x: Tensor, w: MoeWeights, spec: MoeSpec): Tensor => {
  const shared = w.shared ? [w.shared.gate, w.shared.up, w.shared.down, w.shared.expertGate] : [];
  const { numExperts, topK, scoring, normalizeTopK, activation } = spec;
  return emit1("moe", [x, w.router, w.gate, w.up, w.down, ...shared], { numExperts, topK, scoring, normalizeTopK, activation });
};

/** Activations by their Hugging Face names; unknown names are rejected where a config is parsed. */
export const ACTIVATIONS = {
  gelu: (x: Tensor) => x.gelu("none"),
  gelu_new: (x: Tensor) => x.gelu("tanh"),
  gelu_pytorch_tanh: (x: Tensor) => x.gelu("tanh"),
  gelu_fast: (x: Tensor) => x.gelu("tanh"),
  silu: (x: Tensor) => x.silu(),
  swish: (x: Tensor) => x.silu(),
  relu: (x: Tensor) => x.relu(),
  tanh: (x: Tensor) => x.tanh(),
  sigmoid: (x: Tensor) => x.sigmoid(),
} as const;

export type Activation = keyof typeof ACTIVATIONS;
/** The Hugging Face activation names Kiln knows (for a config schema's `hidden_act`). */
export const ACTIVATION_NAMES = Object.keys(ACTIVATIONS) as [Activation, ...Activation[]];
