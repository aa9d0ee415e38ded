// The op table: every IR op is declared here once, with its attribute schema, its input arity and the rule that
// gives its outputs' dtype and shape. Tracing, the verifier, the printer, serialization and the interpreter all
// read this table; the interpreter's kernel table is typed against `CoreOp`, so an op without a kernel does not
// compile. Shape rules throw ShapeError with a message that names both shapes; callers add the op and source line.
// Custom ops (user-declared) are added at run time through `registerOp` and follow the same contract.

import type { AttrSchema, AttrsOf } from "./attrs.ts";
import { type DType, isFloat } from "./dtype.ts";
import { ROUTING_OPS } from "./ops-routing.ts";
import { broadcastShapes, type Dim, formatShape, normAxis, sameElementCount, type Shape } from "./shape.ts";

export interface ValueType {
  readonly dtype: DType;
  readonly shape: Shape;
}

import { ShapeError } from "./shape-error.ts";

export { ShapeError };

export interface OpDef<S extends AttrSchema = AttrSchema> {
  readonly attrs: S;
  /** Inclusive bounds on the number of inputs (optional trailing inputs such as a bias). */
  readonly arity: readonly [number, number];
  /** Binary ops whose operands may be swapped (the pattern matcher tries both orders). */
  readonly commutative?: boolean;
  readonly infer: (ins: readonly ValueType[], attrs: AttrsOf<S>) => ValueType[];
  readonly doc: string;
}

const fail = (msg: string): never => {
  throw new ShapeError(msg);
};
const t = (dtype: DType, shape: Shape): ValueType => ({ dtype, shape: [...shape] });
const sameType = (ins: readonly ValueType[]) => [t(ins[0]!.dtype, ins[0]!.shape)];

function axisOf(axis: number, shape: Shape, what = "axis"): number {
  return normAxis(axis, shape.length) ?? fail(`${what} ${axis} out of range for ${formatShape(shape)}`);
}

function requireFloat(v: ValueType, role: string) {
  if (!isFloat(v.dtype)) fail(`${role} must be a float tensor, got ${v.dtype}${formatShape(v.shape)}`);
}

function elementwise(ins: readonly ValueType[]): ValueType[] {
  const [a, b] = ins as [ValueType, ValueType];
  if (a.dtype !== b.dtype) fail(`dtype mismatch: ${a.dtype}${formatShape(a.shape)} vs ${b.dtype}${formatShape(b.shape)}`);
  const shape = broadcastShapes(a.shape, b.shape) ?? fail(`shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} do not broadcast`);
  return [t(a.dtype, shape)];
}

function unaryFloat(ins: readonly ValueType[]): ValueType[] {
  requireFloat(ins[0]!, "input");
  return sameType(ins);
}

const unary = (doc: string): OpDef<{}> => ({ attrs: {}, arity: [1, 1], infer: unaryFloat, doc });
const binary = (doc: string, commutative = false): OpDef<{}> => ({ attrs: {}, arity: [2, 2], commutative, infer: elementwise, doc });

function reduce(ins: readonly ValueType[], a: { axes: number[]; keepDims: boolean }): ValueType[] {
  const x = ins[0]!;
  const axes = new Set(a.axes.map((ax) => axisOf(ax, x.shape)));
  const shape = x.shape.flatMap((d, i) => (axes.has(i) ? (a.keepDims ? [1] : []) : [d]));
  return [t(x.dtype, shape)];
}

function norm(ins: readonly ValueType[], what: string): ValueType[] {
  const [x, ...params] = ins as [ValueType, ...ValueType[]];
  requireFloat(x, "input");
  const last = x.shape[x.shape.length - 1];
  for (const p of params)
    if (p.shape.length !== 1 || p.shape[0] !== last) fail(`${what} parameter ${formatShape(p.shape)} does not match the last dim of ${formatShape(x.shape)}`);
  return sameType(ins);
}

const ROPE_SCHEMA = {
  style: { oneOf: ["neox", "gptj"] },
  rotaryDim: "int",
  theta: "number",
  scaling: "json",
} as const satisfies AttrSchema;

const CAST_SCHEMA = {
  dtype: "dtype",
  /** Float32 islands (src/ir/islands.ts). Graphs trace floats as f32, which stands for the build's float dtype
   *  (float16/bfloat16 in half builds): "enter" makes the result float32 in every build, "exit" returns to the
   *  build's dtype, "none" is an ordinary cast. Island casts are never folded away. */
  island: { oneOf: ["none", "enter", "exit"] },
} as const satisfies AttrSchema;

const ATTENTION_SCHEMA = {
  causal: "bool",
  scale: "number",
  /** Sliding window in tokens (query i sees keys i-window+1 .. i); 0 = every earlier key. */
  window: "int",
  /** Attention-logit soft-capping (Gemma 2): scores become softcap * tanh(scores / softcap) after scaling and before
   *  the mask; 0 = none. */
  softcap: "number",
} as const satisfies AttrSchema;

export const CORE_OPS = {
  constant: {
    attrs: { value: "number", dtype: "dtype" },
    arity: [0, 0],
    infer: (_ins, a) => [t(a.dtype, [])],
    doc: "a scalar constant (broadcasts against any shape)",
  } satisfies OpDef<{ value: "number"; dtype: "dtype" }>,
  cast: {
    attrs: CAST_SCHEMA,
    arity: [1, 1],
    infer: (ins, a) => {
      if (a.island !== "none" && (a.dtype !== "f32" || !isFloat(ins[0]!.dtype)))
        fail(`a float32 island ${a.island} casts a float tensor to f32, got ${ins[0]!.dtype} -> ${a.dtype}`);
      return [t(a.dtype, ins[0]!.shape)];
    },
    doc: "convert element type; island enter/exit: into float32 in every build / back to the build's float dtype",
  } satisfies OpDef<typeof CAST_SCHEMA>,
  add: binary("a + b", true),
  sub: binary("a - b"),
  mul: binary("a * b", true),
  div: binary("a / b"),
  pow: binary("a ** b"),
  neg: unary("-x"),
  exp: unary("e ** x"),
  tanh: unary("tanh(x)"),
  erf: unary("erf(x)"),
  softcap: {
    attrs: { cap: "number" },
    arity: [1, 1],
    infer: (ins, a) => {
      if (!(a.cap > 0)) fail(`softcap needs a positive cap, got ${a.cap}`);
      return unaryFloat(ins);
    },
    doc: "soft-capping cap * tanh(x / cap) (Gemma 2 final logits)",
  } satisfies OpDef<{ cap: "number" }>,
  sqrt: unary("sqrt(x)"),
  rsqrt: unary("1 / sqrt(x)"),
  relu: unary("max(x, 0)"),
  sigmoid: unary("1 / (1 + e ** -x)"),
  silu: unary("x * sigmoid(x)"),
  gelu: {
    attrs: { approximate: { oneOf: ["none", "tanh"] } },
    arity: [1, 1],
    infer: unaryFloat,
    doc: "GELU: exact (erf) or the tanh approximation (HF gelu_new)",
  } satisfies OpDef<{ approximate: { oneOf: ["none", "tanh"] } }>,
  matmul: {
    attrs: {},
    arity: [2, 2],
    infer: (ins) => {
      const [a, b] = ins as [ValueType, ValueType];
      if (a.shape.length < 2 || b.shape.length < 2) fail(`matmul needs rank >= 2, got ${formatShape(a.shape)} @ ${formatShape(b.shape)}`);
      if (a.dtype !== b.dtype) fail(`dtype mismatch: ${a.dtype} @ ${b.dtype}`);
      const [m, k] = a.shape.slice(-2) as [Dim, Dim];
      const [k2, n] = b.shape.slice(-2) as [Dim, Dim];
      if (k !== k2) fail(`inner dims differ: ${formatShape(a.shape)} @ ${formatShape(b.shape)}`);
      const batch =
        broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2)) ??
        fail(`batch dims of ${formatShape(a.shape)} and ${formatShape(b.shape)} do not broadcast`);
      return [t(a.dtype, [...batch, m, n])];
    },
    doc: "batched matrix product a[..., m, k] @ b[..., k, n]",
  } satisfies OpDef<{}>,
  linear: {
    attrs: {},
    arity: [2, 3],
    infer: (ins) => {
      const [x, w, b] = ins as [ValueType, ValueType, ValueType | undefined];
      if (w.shape.length !== 2) fail(`weight must be [out, in], got ${formatShape(w.shape)}`);
      const [out, inF] = w.shape as [Dim, Dim];
      if (x.shape[x.shape.length - 1] !== inF) fail(`input ${formatShape(x.shape)} does not end in the weight's in-features ${formatShape(w.shape)}`);
      if (b && (b.shape.length !== 1 || b.shape[0] !== out)) fail(`bias ${formatShape(b.shape)} does not match weight ${formatShape(w.shape)}`);
      if (x.dtype !== w.dtype) fail(`dtype mismatch: input ${x.dtype}, weight ${w.dtype}`);
      return [t(x.dtype, [...x.shape.slice(0, -1), out])];
    },
    doc: "x[..., in] @ w[out, in]^T (+ bias[out])",
  } satisfies OpDef<{}>,
  embedding: {
    attrs: {},
    arity: [2, 2],
    infer: (ins) => {
      const [table, ids] = ins as [ValueType, ValueType];
      if (table.shape.length !== 2) fail(`embedding table must be [vocab, dim], got ${formatShape(table.shape)}`);
      if (ids.dtype !== "i32") fail(`embedding ids must be i32, got ${ids.dtype}`);
      return [t(table.dtype, [...ids.shape, table.shape[1]!])];
    },
    doc: "rows of table[vocab, dim] gathered by integer ids",
  } satisfies OpDef<{}>,
  softmax: {
    attrs: { axis: "int" },
    arity: [1, 1],
    infer: (ins, a) => (axisOf(a.axis, ins[0]!.shape), unaryFloat(ins)),
    doc: "softmax along an axis (computed in float32)",
  } satisfies OpDef<{ axis: "int" }>,
  reduce_mean: { attrs: { axes: "ints", keepDims: "bool" }, arity: [1, 1], infer: reduce, doc: "mean over axes" } satisfies OpDef<{
    axes: "ints";
    keepDims: "bool";
  }>,
  reduce_sum: { attrs: { axes: "ints", keepDims: "bool" }, arity: [1, 1], infer: reduce, doc: "sum over axes" } satisfies OpDef<{
    axes: "ints";
    keepDims: "bool";
  }>,
  reduce_max: { attrs: { axes: "ints", keepDims: "bool" }, arity: [1, 1], infer: reduce, doc: "max over axes" } satisfies OpDef<{
    axes: "ints";
    keepDims: "bool";
  }>,
  reshape: {
    attrs: { shape: "dims" },
    arity: [1, 1],
    infer: (ins, a) => {
      const x = ins[0]!;
      if (!sameElementCount(x.shape, a.shape)) fail(`cannot reshape ${formatShape(x.shape)} to ${formatShape(a.shape)}`);
      return [t(x.dtype, a.shape)];
    },
    doc: "same elements, new shape (symbolic element counts must agree)",
  } satisfies OpDef<{ shape: "dims" }>,
  transpose: {
    attrs: { perm: "ints" },
    arity: [1, 1],
    infer: (ins, a) => {
      const x = ins[0]!;
      const sorted = [...a.perm].sort((p, q) => p - q);
      if (a.perm.length !== x.shape.length || sorted.some((p, i) => p !== i))
        fail(`perm [${a.perm}] is not a permutation of the axes of ${formatShape(x.shape)}`);
      return [
        t(
          x.dtype,
          a.perm.map((p) => x.shape[p]!),
        ),
      ];
    },
    doc: "permute axes",
  } satisfies OpDef<{ perm: "ints" }>,
  split: {
    attrs: { axis: "int", sizes: "ints" },
    arity: [1, 1],
    infer: (ins, a) => {
      const x = ins[0]!;
      const ax = axisOf(a.axis, x.shape);
      const total = a.sizes.reduce((s, n) => s + n, 0);
      if (x.shape[ax] !== total) fail(`split sizes [${a.sizes}] sum to ${total}, but axis ${ax} of ${formatShape(x.shape)} is ${x.shape[ax]}`);
      return a.sizes.map((n) =>
        t(
          x.dtype,
          x.shape.map((d, i) => (i === ax ? n : d)),
        ),
      );
    },
    doc: "split into consecutive pieces along an axis (one output per piece)",
  } satisfies OpDef<{ axis: "int"; sizes: "ints" }>,
  concat: {
    attrs: { axis: "int" },
    arity: [1, Number.POSITIVE_INFINITY],
    infer: (ins, a) => {
      const x = ins[0]!;
      const ax = axisOf(a.axis, x.shape);
      let total = 0;
      for (const y of ins) {
        const ok = y.dtype === x.dtype && y.shape.length === x.shape.length && y.shape.every((d, i) => i === ax || d === x.shape[i]);
        if (!ok) fail(`cannot concat ${formatShape(x.shape)} and ${formatShape(y.shape)} on axis ${ax}`);
        const d = y.shape[ax]!;
        if (typeof d !== "number") fail(`concat axis ${ax} must be concrete, got '${d}'`);
        total += d as number;
      }
      return [
        t(
          x.dtype,
          x.shape.map((d, i) => (i === ax ? total : d)),
        ),
      ];
    },
    doc: "join along an axis",
  } satisfies OpDef<{ axis: "int" }>,
  slice: {
    attrs: { axis: "int", start: "int", end: "int" },
    arity: [1, 1],
    infer: (ins, a) => {
      const x = ins[0]!;
      const ax = axisOf(a.axis, x.shape);
      const d = x.shape[ax]!;
      if (typeof d !== "number") fail(`slice axis ${ax} of ${formatShape(x.shape)} must be concrete`);
      if (!(a.start >= 0 && a.start < a.end && a.end <= (d as number)))
        fail(`slice [${a.start}, ${a.end}) out of range for axis ${ax} of ${formatShape(x.shape)}`);
      return [
        t(
          x.dtype,
          x.shape.map((e, i) => (i === ax ? a.end - a.start : e)),
        ),
      ];
    },
    doc: "x[start:end] along an axis",
  } satisfies OpDef<{ axis: "int"; start: "int"; end: "int" }>,
  repeat_interleave: {
    attrs: { axis: "int", repeats: "int" },
    arity: [1, 1],
    infer: (ins, a) => {
      const x = ins[0]!;
      const ax = axisOf(a.axis, x.shape);
      const d = x.shape[ax]!;
      if (typeof d !== "number" || a.repeats < 1) fail(`repeat_interleave needs a concrete axis and repeats >= 1 (${formatShape(x.shape)}, ${a.repeats})`);
      return [
        t(
          x.dtype,
          x.shape.map((e, i) => (i === ax ? (d as number) * a.repeats : e)),
        ),
      ];
    },
    doc: "repeat each element along an axis (GQA key/value head expansion)",
  } satisfies OpDef<{ axis: "int"; repeats: "int" }>,
  layer_norm: {
    attrs: { eps: "number" },
    arity: [1, 3],
    infer: (ins) => norm(ins, "layer_norm"),
    doc: "(x - mean) / sqrt(var + eps) * w + b over the last axis",
  } satisfies OpDef<{ eps: "number" }>,
  rms_norm: {
    attrs: { eps: "number" },
    arity: [1, 2],
    infer: (ins) => norm(ins, "rms_norm"),
    doc: "x / sqrt(mean(x^2) + eps) * w over the last axis",
  } satisfies OpDef<{ eps: "number" }>,
  rope: {
    attrs: ROPE_SCHEMA,
    arity: [2, 2],
    infer: (ins, a) => {
      const [x, pos] = ins as [ValueType, ValueType];
      if (x.shape.length !== 4) fail(`rope input must be [batch, seq, heads, head_dim], got ${formatShape(x.shape)}`);
      if (pos.dtype !== "i32" || pos.shape.length !== 2) fail(`rope positions must be i32 [batch, seq], got ${pos.dtype}${formatShape(pos.shape)}`);
      const hd = x.shape[3]!;
      if (typeof hd !== "number" || a.rotaryDim <= 0 || a.rotaryDim > hd || a.rotaryDim % 2 !== 0)
        fail(`rotaryDim ${a.rotaryDim} must be even and within head_dim ${hd}`);
      return sameType(ins);
    },
    doc: "rotary position embedding on the first rotaryDim channels of each head (neox: rotate-half, gptj: interleaved pairs)",
  } satisfies OpDef<typeof ROPE_SCHEMA>,
  causal_mask: {
    attrs: {},
    arity: [1, 1],
    infer: (ins) => {
      if (ins[0]!.shape.length < 2) fail(`causal_mask needs [..., q, k], got ${formatShape(ins[0]!.shape)}`);
      return unaryFloat(ins);
    },
    doc: "set scores[..., i, j] to -inf where key j is after query i",
  } satisfies OpDef<{}>,
  gated_activation: {
    attrs: { act: { oneOf: ["silu", "gelu", "gelu_tanh", "relu"] } },
    arity: [1, 1],
    infer: (ins) => {
      const x = ins[0]!;
      requireFloat(x, "input");
      const last = x.shape[x.shape.length - 1]!;
      if (typeof last !== "number" || last % 2 !== 0) fail(`gated_activation needs an even last dim, got ${formatShape(x.shape)}`);
      return [t(x.dtype, [...x.shape.slice(0, -1), (last as number) / 2])];
    },
    doc: "act(x[..., n:]) * x[..., :n] for x[..., 2n]: TensorRT-LLM's fused gated MLP (swiglu/geglu) layout",
  } satisfies OpDef<{ act: { oneOf: ["silu", "gelu", "gelu_tanh", "relu"] } }>,
  attention: {
    attrs: ATTENTION_SCHEMA,
    arity: [3, 3],
    infer: (ins) => {
      const [q, k, v] = ins as [ValueType, ValueType, ValueType];
      for (const [n, x] of [
        ["q", q],
        ["k", k],
        ["v", v],
      ] as const)
        if (x.shape.length !== 4) fail(`attention ${n} must be [batch, seq, heads, head_dim], got ${formatShape(x.shape)}`);
      const [h, kvh] = [q.shape[2]!, k.shape[2]!];
      if (typeof h !== "number" || typeof kvh !== "number" || h % kvh !== 0 || k.shape[2] !== v.shape[2])
        fail(`query heads ${h} must be a multiple of key/value heads ${kvh} (k ${formatShape(k.shape)}, v ${formatShape(v.shape)})`);
      if (q.shape[3] !== k.shape[3] || k.shape[1] !== v.shape[1])
        fail(`q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)} disagree`);
      return [t(q.dtype, [q.shape[0]!, q.shape[1]!, h, v.shape[3]!])];
    },
    doc: "scaled dot-product attention with grouped-query heads, optionally causal; window > 0 lets query i see only keys j with i - j < window (sliding window); softcap > 0 caps the scaled scores to softcap * tanh(scores / softcap) before the mask",
  } satisfies OpDef<typeof ATTENTION_SCHEMA>,
  // topk, argmax, greater, less, equal, where, gather, index_select, one_hot, moe (issue 14).
  ...ROUTING_OPS,
} as const;

export type CoreOp = keyof typeof CORE_OPS;
export type CoreAttrs<K extends CoreOp> = AttrsOf<(typeof CORE_OPS)[K]["attrs"]>;

const registry = new Map<string, OpDef>(Object.entries(CORE_OPS) as [string, OpDef][]);

export function opDef(op: string): OpDef | undefined {
  return registry.get(op);
}

/** Adds an op (custom ops, target-level ops). Names are unique; a clash is an error. */
export function registerOp(name: string, def: OpDef): void {
  if (!/^[a-z_][a-z0-9_.]*$/.test(name)) throw new Error(`op name '${name}' must be lower_snake_case (dots allowed for namespaces)`);
  if (registry.has(name)) throw new Error(`op '${name}' is already defined`);
  registry.set(name, def);
}

export function allOps(): string[] {
  return [...registry.keys()];
}
