// Core IR ops as tensorrt_llm.functional expressions, for the glue that is not a TensorRT-LLM layer (residual
// scales, custom gates, reshapes, ...). One rule per op; ops that only make sense inside a fused TensorRT-LLM layer
// (rope, causal_mask, attention) are rejected with the node named. Axes are emitted relative to the end of the
// tensor and the leading token dims are never touched, because TensorRT-LLM runs with removed input padding: the
// [batch, seq] of the IR becomes [num_tokens] at build time. Small Python helpers (erf, tail reshape, ...) are
// emitted once, only when used.
// Invariants: rules are pure functions of their context; every helper's source is PEP 8 and uses only `F`.

import { type DType, isFloat } from "../../src/ir/dtype.ts";
import { describeNode, type Node, type NodeOf } from "../../src/ir/graph.ts";
import type { CoreOp } from "../../src/ir/ops.ts";
import { formatShape, type Shape } from "../../src/ir/shape.ts";
import { pyFloat, pyInt } from "../python/identifiers.ts";
import { dependencyOrder } from "../python/dependency-order.ts";
import { constantLiteral } from "../common/emit-nodes.ts";
import { fail } from "../common/model-py-plan.ts";
import { trtllmMoeProblem } from "../../src/lower/moe-lowering.ts";

export interface OpArg {
  readonly expr: string;
  /** A Python number (an inlined constant), not a Tensor. */
  readonly literal: boolean;
  readonly shape: Shape;
  readonly dtype: DType;
}

export interface GlueCtx<K extends CoreOp = CoreOp> {
  readonly node: NodeOf<K>;
  readonly args: readonly OpArg[];
  readonly outShapes: readonly Shape[];
  /** `F.<name>`; registers the functional import. */
  F(name: string): string;
  /** Registers a helper function and returns its name. */
  helper(name: HelperName): string;
  /** The expression of this node's per-layer numeric attribute (eps), when it has one. */
  readonly slot?: string;
  /** Python expression for a dtype (the model's own dtype reads config.dtype). */
  dtype(d: DType): string;
}

export type HelperName = "_kiln_erf" | "_kiln_gelu_erf" | "_kiln_view" | "_kiln_permute_tail" | "_kiln_gated" | "_kiln_one_hot";

export const HELPERS: Record<HelperName, { readonly deps: readonly HelperName[]; readonly source: readonly string[] }> = {
  _kiln_erf: {
    deps: [],
    source: [
      "def _kiln_erf(x):",
      '    """erf(x), which tensorrt_llm.functional does not provide.',
      "",
      "    Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, far under the",
      "    rounding of float16/bfloat16 activations.",
      '    """',
      "    t = F.div(1.0, 1.0 + 0.3275911 * F.abs(x))",
      "    poly = 1.061405429 * t - 1.453152027",
      "    poly = poly * t + 1.421413741",
      "    poly = poly * t - 0.284496736",
      "    poly = poly * t + 0.254829592",
      "    y = 1.0 - poly * t * F.exp(0.0 - x * x)",
      "    return F.where(x < 0.0, 0.0 - y, y)",
    ],
  },
  _kiln_gelu_erf: {
    deps: ["_kiln_erf"],
    source: [
      "def _kiln_gelu_erf(x):",
      '    """Exact GELU, x * (1 + erf(x / sqrt(2))) / 2.',
      "",
      "    TensorRT-LLM's 'gelu' activation is the tanh approximation, so the",
      "    exact form is built from functional ops.",
      '    """',
      "    return 0.5 * x * (1.0 + _kiln_erf(x * 0.7071067811865476))",
    ],
  },
  _kiln_view: {
    deps: [],
    source: [
      "def _kiln_view(x, tail_rank, new_tail):",
      '    """Reshape the last `tail_rank` dims of x to `new_tail`.',
      "",
      "    The leading dims are the tokens: [batch, seq], or [num_tokens] when",
      "    TensorRT-LLM removes input padding, so they are read at run time.",
      '    """',
      "    lead = [F.shape(x, i) for i in range(x.ndim() - tail_rank)]",
      "    return x.view(F.concat(lead + list(new_tail)))",
    ],
  },
  _kiln_permute_tail: {
    deps: [],
    source: [
      "def _kiln_permute_tail(x, tail_perm):",
      '    """Permute the last len(tail_perm) dims of x; token dims stay first."""',
      "    lead = x.ndim() - len(tail_perm)",
      "    dims = list(range(lead)) + [lead + p for p in tail_perm]",
      "    return F.permute(x, dims)",
    ],
  },
  _kiln_gated: {
    deps: [],
    source: [
      "def _kiln_gated(x, n, act):",
      '    """act(x[..., n:]) * x[..., :n] for x[..., 2n] (fused gated layout)."""',
      "    up, gate = F.split(x, [n, n], dim=-1)",
      "    return act(gate) * up",
    ],
  },
  _kiln_one_hot: {
    deps: [],
    source: [
      "def _kiln_one_hot(ids, num_classes, dtype):",
      '    """[..., num_classes] with 1 at each id and 0 elsewhere (F has no one_hot)."""',
      '    classes = F.arange(0, num_classes, "int32")',
      "    return F.cast(F.eq(F.unsqueeze(ids, ids.ndim()), classes), dtype)",
    ],
  },
};

const where = (c: GlueCtx) => describeNode(c.node);

/** Number of leading symbolic (token) dims; every later dim must be concrete. */
export function tokenDims(shape: Shape, what: string): number {
  let t = 0;
  while (t < shape.length && typeof shape[t] === "string") t++;
  if (shape.slice(t).some((d) => typeof d !== "number"))
    fail(`${what}: shape ${formatShape(shape)} has a symbolic dim after a concrete one, which TensorRT-LLM's token layout cannot express`);
  return t;
}

/** `axis` of input `k` as a negative axis, refusing the token dims. */
function tailAxis(c: GlueCtx, k: number, axis: number): number {
  const shape = c.args[k]!.shape;
  const a = axis < 0 ? axis + shape.length : axis;
  if (a < tokenDims(shape, where(c)))
    fail(
      `${where(c)}: works on axis ${axis} of ${formatShape(shape)}, a batch/sequence dim; TensorRT-LLM packs those into one token dim, so only trailing dims can be used`,
    );
  return a - shape.length;
}

const tensor = (c: GlueCtx, k: number): string => {
  const a = c.args[k]!;
  if (a.literal) fail(`${where(c)}: input ${k} is a constant where a tensor is needed; constant-fold the graph first`);
  return a.expr;
};

function binary(op: string, literalLeft?: string): (c: GlueCtx) => string {
  return (c) => {
    const [a, b] = c.args as [OpArg, OpArg];
    if (a.literal && b.literal) fail(`${where(c)}: both operands are constants; constant-fold the graph first`);
    // Tensor lacks reflected ops for / and **, so a scalar on the left goes through the functional form.
    if (literalLeft && a.literal) return `${c.F(literalLeft)}(${a.expr}, ${b.expr})`;
    return `${a.expr} ${op} ${b.expr}`;
  };
}

const unary = (fn: string) => (c: GlueCtx) => `${c.F(fn)}(${tensor(c, 0)})`;

/** A trailing axis of input 0 as `x.ndim() - n` (functional ops that want a non-negative dim). */
const ndimAxis = (c: GlueCtx, axis: number) => `${tensor(c, 0)}.ndim() - ${-tailAxis(c, 0, axis)}`;

function compare(fn: string): (c: GlueCtx) => string {
  return (c) => {
    const [a, b] = c.args as [OpArg, OpArg];
    if (a.literal && b.literal) fail(`${where(c)}: both operands are constants; constant-fold the graph first`);
    return `${c.F(fn)}(${a.expr}, ${b.expr})`;
  };
}

const lastDim = (c: GlueCtx) => c.args[0]!.shape[c.args[0]!.shape.length - 1] as number;

const ACT_FN: Record<string, (c: GlueCtx) => string> = {
  silu: (c) => c.F("silu"),
  relu: (c) => c.F("relu"),
  gelu_tanh: (c) => c.F("gelu"),
  gelu: (c) => c.helper("_kiln_gelu_erf"),
};

function reduce(fn: string) {
  return (c: GlueCtx<"reduce_mean" | "reduce_sum" | "reduce_max">) => {
    const axes = c.node.attrs.axes.map((a) => tailAxis(c, 0, a));
    const dim = axes.length === 1 ? String(axes[0]) : `(${axes.join(", ")})`;
    return `${c.F(fn)}(${tensor(c, 0)}, dim=${dim}, keepdim=${c.node.attrs.keepDims ? "True" : "False"})`;
  };
}

function unsupported(why: string) {
  return (c: GlueCtx): string => fail(`${where(c)}: ${why}`);
}

/** How model.py computes one core op; the table below must have one for every op of the op table. */
export type GlueRule<K extends CoreOp> = (c: GlueCtx<K>) => string;

export const GLUE_OPS: { readonly [K in CoreOp]: GlueRule<K> } = {
  constant: (c) => constantLiteral(c.node.attrs.value, c.node.attrs.dtype),
  add: binary("+"),
  sub: binary("-"),
  mul: binary("*"),
  div: binary("/", "div"),
  pow: (c) => `${c.F("pow")}(${c.args[0]!.expr}, ${c.args[1]!.expr})`,
  neg: (c) => `${isFloat(c.args[0]!.dtype) ? "0.0" : "0"} - ${tensor(c, 0)}`,
  exp: unary("exp"),
  tanh: unary("tanh"),
  // cap * tanh(x / cap), written as DecoderModelForCausalLM writes Gemma 2's final soft-capping (x * (1 / cap)).
  softcap: (c) => `${c.F("tanh")}(${tensor(c, 0)} * ${pyFloat(1 / c.node.attrs.cap)}) * ${pyFloat(c.node.attrs.cap)}`,
  sqrt: unary("sqrt"),
  relu: unary("relu"),
  sigmoid: unary("sigmoid"),
  silu: unary("silu"),
  rsqrt: (c) => `${c.F("div")}(1.0, ${c.F("sqrt")}(${tensor(c, 0)}))`,
  erf: (c) => `${c.helper("_kiln_erf")}(${tensor(c, 0)})`,
  gelu: (c) => `${ACT_FN[c.node.attrs.approximate === "tanh" ? "gelu_tanh" : "gelu"]!(c)}(${tensor(c, 0)})`,
  // Float32 islands: "enter" casts to float32 in every build (the model's own f32 means config.dtype), "exit" back.
  cast: (c) =>
    `${c.F("cast")}(${tensor(c, 0)}, ${c.node.attrs.island === "enter" ? '"float32"' : c.node.attrs.island === "exit" ? c.dtype("f32") : c.dtype(c.node.attrs.dtype)})`,
  matmul: (c) => `${c.F("matmul")}(${tensor(c, 0)}, ${tensor(c, 1)})`,
  linear: (c) => `${c.F("matmul")}(${tensor(c, 0)}, ${tensor(c, 1)}, transb=True)${c.args[2] ? ` + ${tensor(c, 2)}` : ""}`,
  embedding: (c) => `${c.F("embedding")}(${tensor(c, 1)}, ${tensor(c, 0)})`,
  softmax: (c) => `${c.F("softmax")}(${tensor(c, 0)}, dim=${tailAxis(c, 0, c.node.attrs.axis)})`,
  reduce_mean: reduce("mean"),
  reduce_sum: reduce("sum"),
  reduce_max: reduce("max"),
  reshape: (c) => {
    const from = c.args[0]!.shape;
    const to = c.node.attrs.shape;
    const [t, u] = [tokenDims(from, where(c)), tokenDims(to, where(c))];
    if (t !== u || from.slice(0, t).some((d, i) => d !== to[i]))
      fail(`${where(c)}: reshape ${formatShape(from)} -> ${formatShape(to)} changes the batch/sequence dims, which TensorRT-LLM packs into one token dim`);
    return `${c.helper("_kiln_view")}(${tensor(c, 0)}, ${from.length - t}, [${to.slice(t).join(", ")}])`;
  },
  transpose: (c) => {
    const perm = c.node.attrs.perm;
    const t = tokenDims(c.args[0]!.shape, where(c));
    if (perm.slice(0, t).some((p, i) => p !== i))
      fail(`${where(c)}: transpose [${perm}] moves a batch/sequence dim, which TensorRT-LLM packs into one token dim`);
    return `${c.helper("_kiln_permute_tail")}(${tensor(c, 0)}, [${perm
      .slice(t)
      .map((p) => p - t)
      .join(", ")}])`;
  },
  split: (c) => `${c.F("split")}(${tensor(c, 0)}, [${c.node.attrs.sizes.join(", ")}], dim=${tailAxis(c, 0, c.node.attrs.axis)})`,
  concat: (c) => `${c.F("concat")}([${c.args.map((_, k) => tensor(c, k)).join(", ")}], dim=${tailAxis(c, 0, c.node.attrs.axis)})`,
  slice: (c) => {
    const ax = tailAxis(c, 0, c.node.attrs.axis);
    const size = c.args[0]!.shape[c.args[0]!.shape.length + ax] as number;
    const [s, e] = [c.node.attrs.start, c.node.attrs.end];
    if (s === 0 && e === size) return tensor(c, 0);
    // Slicing through split keeps the token dims symbolic (F.slice needs explicit start/size tensors).
    const pieces = [s, e - s, size - e].filter((n) => n > 0);
    return `${c.F("split")}(${tensor(c, 0)}, [${pieces.join(", ")}], dim=${ax})[${s > 0 ? 1 : 0}]`;
  },
  repeat_interleave: (c) => {
    const ax = tailAxis(c, 0, c.node.attrs.axis);
    const x = tensor(c, 0);
    return `${c.F("repeat_interleave")}(${x}, ${pyInt(c.node.attrs.repeats)}, ${x}.ndim() - ${-ax})`;
  },
  layer_norm: (c) => {
    const [, w, b] = c.args;
    const kw = [w && `weight=${w.expr}`, b && `bias=${b.expr}`, `eps=${c.slot ?? pyFloat(c.node.attrs.eps)}`].filter(Boolean);
    return `${c.F("layer_norm")}(${tensor(c, 0)}, ${lastDim(c)}, ${kw.join(", ")})`;
  },
  rms_norm: (c) => {
    const w = c.args[1];
    const kw = [w && `weight=${w.expr}`, `eps=${c.slot ?? pyFloat(c.node.attrs.eps)}`].filter(Boolean);
    return `${c.F("rms_norm")}(${tensor(c, 0)}, ${lastDim(c)}, ${kw.join(", ")})`;
  },
  gated_activation: (c) => `${c.helper("_kiln_gated")}(${tensor(c, 0)}, ${lastDim(c) / 2}, ${ACT_FN[c.node.attrs.act]!(c)})`,
  rope: unsupported(
    "rotary embedding outside attention; TensorRT-LLM applies RoPE only inside its Attention layer (lowering fuses q/k rope into trtllm.attention)",
  ),
  causal_mask: unsupported("a causal mask outside attention; TensorRT-LLM's attention plugin masks internally"),
  attention: unsupported("attention that lowering did not turn into trtllm.attention; TensorRT-LLM engines need the GPT attention plugin for the KV cache"),
  // Routing ops (issue 14): TensorRT-LLM's functional forms; their indices are int32 like the IR's.
  topk: (c) => `${c.F("topk")}(${tensor(c, 0)}, ${pyInt(c.node.attrs.k)}, ${ndimAxis(c, c.node.attrs.axis)})`,
  argmax: (c) => `${c.F("argmax")}(${tensor(c, 0)}, ${ndimAxis(c, c.node.attrs.axis)}, keepdim=${c.node.attrs.keepDims ? "True" : "False"})`,
  greater: compare("gt"),
  less: compare("lt"),
  equal: compare("eq"),
  where: (c) => `${c.F("where")}(${c.args.map((a) => a.expr).join(", ")})`,
  gather: (c) => `${c.F("gather")}(${tensor(c, 0)}, ${ndimAxis(c, c.node.attrs.axis)}, ${tensor(c, 1)})`,
  index_select: (c) => `${c.F("index_select")}(${tensor(c, 0)}, ${ndimAxis(c, c.node.attrs.axis)}, ${tensor(c, 1)})`,
  one_hot: (c) => `${c.helper("_kiln_one_hot")}(${tensor(c, 0)}, ${pyInt(c.node.attrs.numClasses)}, ${c.dtype(c.node.attrs.dtype)})`,
  // Blocks TensorRT-LLM's MOE / SharedMoE can run were lowered to trtllm.moe (src/lower/moe-lowering.ts); what reaches
  // glue is a form they cannot run, and functional glue would lose the MoE plugin, so say which and where to go.
  moe: (c) =>
    fail(
      `${describeNode(c.node)}: this mixture-of-experts block cannot be TensorRT-LLM's MOE (${trtllmMoeProblem(c.node) ?? "it is outside the decoder layers"}); compile it with --target hf or trtllm-torch`,
    ),
};

/** A glue context for a node whose op is only known at run time (the emitters walk untyped graphs). */
export type AnyGlueCtx = Omit<GlueCtx, "node"> & { readonly node: Node };

/** The rule for a node's op, or undefined for ops outside the core table (custom ops). */
export function glueRuleFor(op: string): ((c: AnyGlueCtx) => string) | undefined {
  // The table is complete over CoreOp (checked above); a node carries the attrs of its op, which the verifier ensures.
  return Object.hasOwn(GLUE_OPS, op) ? (GLUE_OPS[op as CoreOp] as unknown as (c: AnyGlueCtx) => string) : undefined;
}

export { constantLiteral };

/** Helpers in dependency order (dependencies first), for the set used. */
export const orderedHelpers = (used: ReadonlySet<HelperName>): HelperName[] => dependencyOrder(HELPERS, used);
