// Core IR ops as PyTorch expressions, for the glue of the PyTorch-based targets (everything a lowered graph keeps
// outside its trtllm.* layers: residual adds, embeddings, norms, custom gates, reshapes). Axes are emitted relative
// to the end of the tensor and leading token dims are never touched, so one rule serves Hugging Face's
// [batch, seq, ...] layout and TensorRT-LLM's packed [num_tokens, ...] layout. Ops that only make sense inside an
// attention layer (rope, causal_mask, attention) are rejected with the node named. Small helpers are emitted once,
// only when used.
// Invariants: rules are pure functions of their context; helper sources are PEP 8 and use only `torch` and `F`
// (torch.nn.functional).

import { type DType, isFloat } from "../../src/ir/dtype.ts";
import { describeNode, type Node, type NodeOf } from "../../src/ir/graph.ts";
import type { CoreOp } from "../../src/ir/ops.ts";
import { formatShape, type Shape } from "../../src/ir/shape.ts";
import { pyFloat, pyInt } from "../python/identifiers.ts";
import { dependencyOrder } from "../python/dependency-order.ts";
import { constantLiteral } from "../common/emit-nodes.ts";
import { fail } from "../common/model-py-plan.ts";
import { MOE_HELPER_SOURCE } from "./moe-helper.ts";

export interface TorchArg {
  readonly expr: string;
  /** A Python number (an inlined constant), not a tensor. */
  readonly literal: boolean;
  readonly shape: Shape;
  readonly dtype: DType;
}

export interface TorchGlueCtx<K extends CoreOp = CoreOp> {
  readonly node: NodeOf<K>;
  readonly args: readonly TorchArg[];
  /** Registers a helper (and its dependencies) and returns its name. */
  helper(name: TorchHelper): string;
  /** The expression of this node's per-layer numeric attribute (eps), when it has one. */
  readonly slot?: string;
  /** Python expression of the model's floating-point dtype at run time. */
  readonly modelDtype: string;
  /** The graph's parameter dtype (casts to it follow the model's run-time dtype). */
  readonly paramDtype: DType;
}

export type TorchHelper =
  | "_kiln_reshape_tail"
  | "_kiln_permute_tail"
  | "_kiln_rms_norm"
  | "_kiln_gated"
  | "_kiln_gelu_tanh"
  | "_kiln_softmax"
  | "_kiln_topk"
  | "_kiln_moe";

export const TORCH_HELPERS: Record<TorchHelper, { readonly deps: readonly TorchHelper[]; readonly source: readonly string[] }> = {
  _kiln_reshape_tail: {
    deps: [],
    source: [
      "def _kiln_reshape_tail(x, tail_rank, new_tail):",
      '    """Reshape the last `tail_rank` dims of x to `new_tail`; token dims stay."""',
      "    return x.reshape(*x.shape[:x.dim() - tail_rank], *new_tail)",
    ],
  },
  _kiln_permute_tail: {
    deps: [],
    source: [
      "def _kiln_permute_tail(x, tail_perm):",
      '    """Permute the last len(tail_perm) dims of x; token dims stay first."""',
      "    lead = x.dim() - len(tail_perm)",
      "    return x.permute(*range(lead), *[lead + p for p in tail_perm])",
    ],
  },
  _kiln_rms_norm: {
    deps: [],
    source: [
      "def _kiln_rms_norm(x, weight, eps):",
      '    """x / sqrt(mean(x^2) + eps) * weight, computed in float32."""',
      "    h = x.float()",
      "    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)",
      "    h = h.to(x.dtype)",
      "    return h if weight is None else weight * h",
    ],
  },
  _kiln_gated: {
    deps: [],
    source: [
      "def _kiln_gated(x, act):",
      '    """act(x[..., n:]) * x[..., :n] for x[..., 2n] (fused gated layout)."""',
      "    up, gate = x.chunk(2, dim=-1)",
      "    return act(gate) * up",
    ],
  },
  _kiln_softmax: {
    deps: [],
    source: [
      "def _kiln_softmax(x, dim):",
      '    """Softmax computed in float32, returned in the input dtype."""',
      "    return torch.softmax(x, dim=dim, dtype=torch.float32).to(x.dtype)",
    ],
  },
  _kiln_gelu_tanh: {
    deps: [],
    source: ["def _kiln_gelu_tanh(x):", '    """GELU, tanh approximation (HF gelu_new)."""', '    return F.gelu(x, approximate="tanh")'],
  },
  _kiln_topk: {
    deps: [],
    source: [
      "def _kiln_topk(x, k, dim):",
      '    """The k largest values along dim and their indices as int32."""',
      "    values, indices = torch.topk(x, k, dim=dim)",
      "    return values, indices.to(torch.int32)",
    ],
  },
  _kiln_moe: { deps: [], source: MOE_HELPER_SOURCE },
};

/** Python callables for Kiln activation names. */
export function activationFn(act: string, helper: (h: TorchHelper) => string): string {
  const fns: Record<string, () => string> = { silu: () => "F.silu", relu: () => "F.relu", gelu: () => "F.gelu", gelu_tanh: () => helper("_kiln_gelu_tanh") };
  return (fns[act] ?? (() => fail(`activation '${act}' has no PyTorch translation`)))();
}

const where = (c: TorchGlueCtx) => describeNode(c.node);

/** Number of leading symbolic (token) dims; every later dim must be concrete. */
function tokenDims(shape: Shape, what: string): number {
  let t = 0;
  while (t < shape.length && typeof shape[t] === "string") t++;
  if (shape.slice(t).some((d) => typeof d !== "number"))
    fail(`${what}: shape ${formatShape(shape)} has a symbolic dim after a concrete one; only leading batch/sequence dims may be symbolic`);
  return t;
}

/** `axis` of input `k` as a negative axis, refusing the token dims. */
function tailAxis(c: TorchGlueCtx, k: number, axis: number): number {
  const shape = c.args[k]!.shape;
  const a = axis < 0 ? axis + shape.length : axis;
  if (a < tokenDims(shape, where(c)))
    fail(
      `${where(c)}: works on axis ${axis} of ${formatShape(shape)}, a batch/sequence dim; TensorRT-LLM packs those into one token dim, so generated code uses only trailing dims`,
    );
  return a - shape.length;
}

const tensor = (c: TorchGlueCtx, k: number): string => {
  const a = c.args[k]!;
  if (a.literal) fail(`${where(c)}: input ${k} is a constant where a tensor is needed; constant-fold the graph first`);
  return a.expr;
};

function binary(op: string): (c: TorchGlueCtx) => string {
  return (c) => {
    const [a, b] = c.args as [TorchArg, TorchArg];
    if (a.literal && b.literal) fail(`${where(c)}: both operands are constants; constant-fold the graph first`);
    return `${a.expr} ${op} ${b.expr}`;
  };
}

const unary = (fn: string) => (c: TorchGlueCtx) => `${fn}(${tensor(c, 0)})`;
const lastDim = (c: TorchGlueCtx) => c.args[0]!.shape[c.args[0]!.shape.length - 1] as number;

const TORCH_DTYPES: Record<DType, string> = { f32: "torch.float32", f16: "torch.float16", bf16: "torch.bfloat16", i32: "torch.int32", bool: "torch.bool" };

function reduce(fn: string) {
  return (c: TorchGlueCtx<"reduce_mean" | "reduce_sum" | "reduce_max">) => {
    const axes = c.node.attrs.axes.map((a) => tailAxis(c, 0, a));
    const dim = axes.length === 1 ? String(axes[0]) : `(${axes.join(", ")})`;
    return `${fn}(${tensor(c, 0)}, dim=${dim}, keepdim=${c.node.attrs.keepDims ? "True" : "False"})`;
  };
}

const unsupported =
  (why: string) =>
  (c: TorchGlueCtx): string =>
    fail(`${where(c)}: ${why}`);

/** One rule per core op; multi-output ops (split) return a tuple expression. */
/** How the PyTorch targets compute one core op; the table below must have one for every op of the op table. */
export type TorchGlueRule<K extends CoreOp> = (c: TorchGlueCtx<K>) => string;

export const TORCH_GLUE_OPS: { readonly [K in CoreOp]: TorchGlueRule<K> } = {
  constant: (c) => torchConstant(c.node.attrs.value, c.node.attrs.dtype),
  add: binary("+"),
  sub: binary("-"),
  mul: binary("*"),
  div: binary("/"),
  pow: (c) => `torch.pow(${c.args[0]!.expr}, ${c.args[1]!.expr})`,
  neg: (c) => `-${tensor(c, 0)}`,
  exp: unary("torch.exp"),
  tanh: unary("torch.tanh"),
  softcap: (c) => `torch.tanh(${tensor(c, 0)} / ${pyFloat(c.node.attrs.cap)}) * ${pyFloat(c.node.attrs.cap)}`,
  erf: unary("torch.erf"),
  sqrt: unary("torch.sqrt"),
  rsqrt: unary("torch.rsqrt"),
  relu: unary("F.relu"),
  sigmoid: unary("torch.sigmoid"),
  silu: unary("F.silu"),
  gelu: (c) => `${activationFn(c.node.attrs.approximate === "tanh" ? "gelu_tanh" : "gelu", c.helper)}(${tensor(c, 0)})`,
  cast: (c) => {
    const d = c.node.attrs.dtype;
    // Float32 islands: "enter" is float32 in every build, "exit" returns to the model's run-time dtype.
    if (c.node.attrs.island === "enter") return `${tensor(c, 0)}.to(torch.float32)`;
    if (c.node.attrs.island === "exit") return `${tensor(c, 0)}.to(${c.modelDtype})`;
    return `${tensor(c, 0)}.to(${d === c.paramDtype && isFloat(d) ? c.modelDtype : TORCH_DTYPES[d]})`;
  },
  matmul: (c) => `torch.matmul(${tensor(c, 0)}, ${tensor(c, 1)})`,
  linear: (c) => `F.linear(${c.args.map((_, k) => tensor(c, k)).join(", ")})`,
  embedding: (c) => `F.embedding(${tensor(c, 1)}, ${tensor(c, 0)})`,
  softmax: (c) => `${c.helper("_kiln_softmax")}(${tensor(c, 0)}, ${tailAxis(c, 0, c.node.attrs.axis)})`,
  reduce_mean: reduce("torch.mean"),
  reduce_sum: reduce("torch.sum"),
  reduce_max: reduce("torch.amax"),
  reshape: (c) => {
    const from = c.args[0]!.shape;
    const to = c.node.attrs.shape;
    const [t, u] = [tokenDims(from, where(c)), tokenDims(to, where(c))];
    if (t !== u || from.slice(0, t).some((d, i) => d !== to[i]))
      fail(`${where(c)}: reshape ${formatShape(from)} -> ${formatShape(to)} changes the batch/sequence dims, which TensorRT-LLM packs into one token dim`);
    return `${c.helper("_kiln_reshape_tail")}(${tensor(c, 0)}, ${from.length - t}, [${to.slice(t).join(", ")}])`;
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
  split: (c) => `torch.split(${tensor(c, 0)}, [${c.node.attrs.sizes.join(", ")}], dim=${tailAxis(c, 0, c.node.attrs.axis)})`,
  concat: (c) => `torch.cat([${c.args.map((_, k) => tensor(c, k)).join(", ")}], dim=${tailAxis(c, 0, c.node.attrs.axis)})`,
  slice: (c) => {
    const [s, e] = [c.node.attrs.start, c.node.attrs.end];
    return `${tensor(c, 0)}.narrow(${tailAxis(c, 0, c.node.attrs.axis)}, ${pyInt(s)}, ${pyInt(e - s)})`;
  },
  repeat_interleave: (c) => `${tensor(c, 0)}.repeat_interleave(${pyInt(c.node.attrs.repeats)}, dim=${tailAxis(c, 0, c.node.attrs.axis)})`,
  layer_norm: (c) => {
    const [, w, b] = c.args;
    return `F.layer_norm(${tensor(c, 0)}, (${lastDim(c)},), ${w ? w.expr : "None"}, ${b ? b.expr : "None"}, ${c.slot ?? pyFloat(c.node.attrs.eps)})`;
  },
  rms_norm: (c) => `${c.helper("_kiln_rms_norm")}(${tensor(c, 0)}, ${c.args[1] ? c.args[1].expr : "None"}, ${c.slot ?? pyFloat(c.node.attrs.eps)})`,
  gated_activation: (c) => `${c.helper("_kiln_gated")}(${tensor(c, 0)}, ${activationFn(c.node.attrs.act, c.helper)})`,
  rope: unsupported("rotary embedding outside attention; lowering fuses q/k rope into trtllm.attention, so a rope left over has no generated equivalent"),
  causal_mask: unsupported("a causal mask outside attention; the generated attention masks internally"),
  attention: unsupported("attention that lowering did not turn into trtllm.attention; the KV cache lives in the generated attention module"),
  // Routing ops (issue 14). Torch indexes with int64; the IR's indices are int32, so results are cast and
  // index operands widened.
  topk: (c) => `${c.helper("_kiln_topk")}(${tensor(c, 0)}, ${pyInt(c.node.attrs.k)}, ${tailAxis(c, 0, c.node.attrs.axis)})`,
  argmax: (c) => `torch.argmax(${tensor(c, 0)}, dim=${tailAxis(c, 0, c.node.attrs.axis)}, keepdim=${c.node.attrs.keepDims ? "True" : "False"}).to(torch.int32)`,
  greater: binary(">"),
  less: binary("<"),
  equal: binary("=="),
  where: (c) => `torch.where(${c.args.map((a) => a.expr).join(", ")})`,
  gather: (c) => `torch.gather(${tensor(c, 0)}, ${tailAxis(c, 0, c.node.attrs.axis)}, ${tensor(c, 1)}.long())`,
  index_select: (c) => `torch.index_select(${tensor(c, 0)}, ${tailAxis(c, 0, c.node.attrs.axis)}, ${tensor(c, 1)}.long())`,
  one_hot: (c) => {
    const d = c.node.attrs.dtype;
    return `F.one_hot(${tensor(c, 0)}.long(), ${pyInt(c.node.attrs.numClasses)}).to(${d === c.paramDtype && isFloat(d) ? c.modelDtype : TORCH_DTYPES[d]})`;
  },
  moe: (c) => {
    const a = c.node.attrs;
    const kw = [
      `top_k=${pyInt(a.topK)}`,
      `scoring=${JSON.stringify(a.scoring)}`,
      `normalize_top_k=${a.normalizeTopK ? "True" : "False"}`,
      `act=${activationFn(a.activation, c.helper)}`,
    ];
    return `${c.helper("_kiln_moe")}(${c.args.map((_, k) => tensor(c, k)).join(", ")}, ${kw.join(", ")})`;
  },
};

/** A glue context for a node whose op is only known at run time (the emitters walk untyped graphs). */
export type AnyTorchGlueCtx = Omit<TorchGlueCtx, "node"> & { readonly node: Node };

/** The rule for a node's op, or undefined for ops outside the core table (custom ops). */
export function torchGlueRuleFor(op: string): ((c: AnyTorchGlueCtx) => string) | undefined {
  // The table is complete over CoreOp (checked above); a node carries the attrs of its op, which the verifier ensures.
  return Object.hasOwn(TORCH_GLUE_OPS, op) ? (TORCH_GLUE_OPS[op as CoreOp] as unknown as (c: AnyTorchGlueCtx) => string) : undefined;
}

/** A Python literal for a scalar constant of the given dtype (the same literal every target writes). */
export const torchConstant = constantLiteral;

/** Helpers in dependency order (dependencies first), for the set used. */
export const orderedTorchHelpers = (used: ReadonlySet<TorchHelper>): TorchHelper[] => dependencyOrder(TORCH_HELPERS, used);
