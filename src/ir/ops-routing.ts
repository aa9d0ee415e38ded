// Rows of the op table for routing and mixture of experts: top-k, argmax, comparisons, where, gathers, one-hot
// (the pieces a user needs to write token routing by hand) and `moe`, the whole sparse MoE block as one op.
// ops.ts spreads these rows into CORE_OPS, so every table keyed by the op table (kernels, emitters, ONNX) must
// cover them. Integer outputs (indices) are i32; comparison outputs are bool.
// Invariants: shape rules are pure and throw ShapeError naming the shapes at fault, like the rest of the table.

import type { AttrSchema, AttrsOf } from "./attrs.ts";
import { type DType, isFloat } from "./dtype.ts";
import type { OpDef, ValueType } from "./ops.ts";
import { ShapeError } from "./shape-error.ts";
import { broadcastShapes, type Dim, formatShape, normAxis, type Shape } from "./shape.ts";

const fail = (msg: string): never => {
  throw new ShapeError(msg);
};
const t = (dtype: DType, shape: Shape): ValueType => ({ dtype, shape: [...shape] });
const typeText = (v: ValueType) => `${v.dtype}${formatShape(v.shape)}`;
const axisOf = (axis: number, shape: Shape): number => normAxis(axis, shape.length) ?? fail(`axis ${axis} out of range for ${formatShape(shape)}`);

function requireIndices(v: ValueType, role: string): void {
  if (v.dtype !== "i32") fail(`${role} must be i32, got ${typeText(v)}`);
}

function compare(ins: readonly ValueType[]): ValueType[] {
  const [a, b] = ins as [ValueType, ValueType];
  if (a.dtype !== b.dtype) fail(`dtype mismatch: ${typeText(a)} vs ${typeText(b)}`);
  const shape = broadcastShapes(a.shape, b.shape) ?? fail(`shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} do not broadcast`);
  return [t("bool", shape)];
}

const comparison = (doc: string, commutative = false): OpDef<{}> => ({ attrs: {}, arity: [2, 2], commutative, infer: compare, doc });

export const MOE_SCHEMA = {
  numExperts: "int",
  topK: "int",
  scoring: { oneOf: ["softmax", "sigmoid"] },
  normalizeTopK: "bool",
  activation: { oneOf: ["silu", "gelu", "gelu_tanh", "relu"] },
} as const satisfies AttrSchema;

export type MoeAttrs = AttrsOf<typeof MOE_SCHEMA>;

/** The inputs of `moe` in order; the shared-expert ones are optional (4 more, or 3 when the shared expert is ungated). */
export const MOE_INPUTS = ["x", "routerWeight", "expertGate", "expertUp", "expertDown", "sharedGate", "sharedUp", "sharedDown", "sharedExpertGate"] as const;

/** Which optional parts a `moe` node has, from its arity (5: routed experts only, 8: + shared expert, 9: + its sigmoid gate). */
export function moeParts(arity: number): { shared: boolean; sharedGated: boolean } {
  return { shared: arity >= 8, sharedGated: arity === 9 };
}

function inferMoe(ins: readonly ValueType[], a: MoeAttrs): ValueType[] {
  if (![5, 8, 9].includes(ins.length)) fail(`moe takes 5 inputs (routed experts), 8 (+ shared expert) or 9 (+ shared-expert gate), got ${ins.length}`);
  const [x, router, gate, up, down, sGate, sUp, sDown, sExpertGate] = ins as ValueType[];
  if (!isFloat(x!.dtype)) fail(`moe input must be a float tensor, got ${typeText(x!)}`);
  const h = x!.shape[x!.shape.length - 1] as Dim;
  if (!(Number.isInteger(a.numExperts) && a.numExperts >= 1)) fail(`numExperts must be >= 1, got ${a.numExperts}`);
  if (!(Number.isInteger(a.topK) && a.topK >= 1 && a.topK <= a.numExperts)) fail(`topK ${a.topK} must be in 1..numExperts (${a.numExperts})`);
  const e = a.numExperts;
  const expect = (v: ValueType, role: string, shape: Dim[]) => {
    const ok = v.shape.length === shape.length && v.shape.every((d, i) => d === shape[i]);
    if (!ok) fail(`moe ${role} must be ${formatShape(shape)} for input ${typeText(x!)} and ${e} experts, got ${typeText(v)}`);
    if (v.dtype !== x!.dtype && role !== "routerWeight") fail(`moe ${role} dtype ${v.dtype} differs from the input's ${x!.dtype}`);
    if (!isFloat(v.dtype)) fail(`moe ${role} must be a float tensor, got ${typeText(v)}`);
  };
  expect(router!, "routerWeight", [e, h]);
  const inter = gate!.shape[1] as Dim;
  expect(gate!, "expertGate", [e, inter, h]);
  expect(up!, "expertUp", [e, inter, h]);
  expect(down!, "expertDown", [e, h, inter]);
  if (sGate) {
    const s = sGate.shape[0] as Dim;
    expect(sGate, "sharedGate", [s, h]);
    expect(sUp!, "sharedUp", [s, h]);
    expect(sDown!, "sharedDown", [h, s]);
    if (sExpertGate) expect(sExpertGate, "sharedExpertGate", [1, h]);
  }
  return [t(x!.dtype, x!.shape)];
}

export const ROUTING_OPS = {
  topk: {
    attrs: { k: "int", axis: "int" },
    arity: [1, 1],
    infer: (ins, a) => {
      const x = ins[0]!;
      const ax = axisOf(a.axis, x.shape);
      const d = x.shape[ax]!;
      if (typeof d !== "number") fail(`topk axis ${ax} of ${formatShape(x.shape)} must be concrete`);
      if (!(Number.isInteger(a.k) && a.k >= 1 && a.k <= (d as number))) fail(`topk k=${a.k} must be in 1..${d} (axis ${ax} of ${formatShape(x.shape)})`);
      const shape = x.shape.map((e, i) => (i === ax ? a.k : e));
      return [t(x.dtype, shape), t("i32", shape)];
    },
    doc: "the k largest values along an axis, in descending order, and their i32 indices (two outputs); equal values: lower index first",
  } satisfies OpDef<{ k: "int"; axis: "int" }>,
  argmax: {
    attrs: { axis: "int", keepDims: "bool" },
    arity: [1, 1],
    infer: (ins, a) => {
      const x = ins[0]!;
      const ax = axisOf(a.axis, x.shape);
      return [t("i32", a.keepDims ? x.shape.map((d, i) => (i === ax ? 1 : d)) : x.shape.filter((_, i) => i !== ax))];
    },
    doc: "i32 index of the largest value along an axis; equal values: the lowest index",
  } satisfies OpDef<{ axis: "int"; keepDims: "bool" }>,
  greater: comparison("a > b (bool, broadcasting)"),
  less: comparison("a < b (bool, broadcasting)"),
  equal: comparison("a == b (bool, broadcasting)", true),
  where: {
    attrs: {},
    arity: [3, 3],
    infer: (ins) => {
      const [c, a, b] = ins as [ValueType, ValueType, ValueType];
      if (c.dtype !== "bool") fail(`where condition must be bool, got ${typeText(c)}`);
      if (a.dtype !== b.dtype) fail(`where branches differ in dtype: ${typeText(a)} vs ${typeText(b)}`);
      const ab = broadcastShapes(a.shape, b.shape) ?? fail(`where branches ${formatShape(a.shape)} and ${formatShape(b.shape)} do not broadcast`);
      const shape = broadcastShapes(c.shape, ab) ?? fail(`where condition ${formatShape(c.shape)} does not broadcast with ${formatShape(ab)}`);
      return [t(a.dtype, shape)];
    },
    doc: "cond ? a : b elementwise (cond is bool; all three broadcast)",
  } satisfies OpDef<{}>,
  gather: {
    attrs: { axis: "int" },
    arity: [2, 2],
    infer: (ins, a) => {
      const [x, idx] = ins as [ValueType, ValueType];
      requireIndices(idx, "gather indices");
      const ax = axisOf(a.axis, x.shape);
      if (idx.shape.length !== x.shape.length || idx.shape.some((d, i) => i !== ax && d !== x.shape[i]))
        fail(`gather indices ${formatShape(idx.shape)} must match input ${formatShape(x.shape)} on every axis but ${ax}`);
      return [t(x.dtype, idx.shape)];
    },
    doc: "out[..., i, ...] = x[..., idx[..., i, ...], ...] along an axis (torch.gather / take_along_axis); indices i32, same rank",
  } satisfies OpDef<{ axis: "int" }>,
  index_select: {
    attrs: { axis: "int" },
    arity: [2, 2],
    infer: (ins, a) => {
      const [x, idx] = ins as [ValueType, ValueType];
      requireIndices(idx, "index_select index");
      if (idx.shape.length !== 1) fail(`index_select index must be 1-D, got ${typeText(idx)}`);
      const ax = axisOf(a.axis, x.shape);
      return [
        t(
          x.dtype,
          x.shape.map((d, i) => (i === ax ? idx.shape[0]! : d)),
        ),
      ];
    },
    doc: "the slices of x at the given i32 positions along an axis (torch.index_select)",
  } satisfies OpDef<{ axis: "int" }>,
  one_hot: {
    attrs: { numClasses: "int", dtype: "dtype" },
    arity: [1, 1],
    infer: (ins, a) => {
      const idx = ins[0]!;
      requireIndices(idx, "one_hot input");
      if (!(Number.isInteger(a.numClasses) && a.numClasses >= 1)) fail(`one_hot numClasses must be >= 1, got ${a.numClasses}`);
      return [t(a.dtype, [...idx.shape, a.numClasses])];
    },
    doc: "i32 class ids [...] to [..., numClasses] with 1 at the id and 0 elsewhere, in the given dtype",
  } satisfies OpDef<{ numClasses: "int"; dtype: "dtype" }>,
  moe: {
    attrs: MOE_SCHEMA,
    arity: [5, 9],
    infer: inferMoe,
    doc:
      "sparse mixture-of-experts block. Inputs: x[..., H], routerWeight[E, H], expertGate[E, I, H], expertUp[E, I, H], " +
      "expertDown[E, H, I], then optionally sharedGate[S, H], sharedUp[S, H], sharedDown[H, S] and sharedExpertGate[1, H]. " +
      "Per token: logits = x . routerWeight^T in float32; scores = softmax or sigmoid (scoring); the topK largest scores " +
      "(ties: lower expert index first), renormalized to sum 1 when normalizeTopK; " +
      "out = sum_k w_k * expertDown[e_k] (act(expertGate[e_k] x) * expertUp[e_k] x) " +
      "+ [sigmoid(x . sharedExpertGate)] * sharedDown (act(sharedGate x) * sharedUp x). " +
      "Weights and the sum stay float32 until the output, which has x's dtype and shape",
  } satisfies OpDef<typeof MOE_SCHEMA>,
} as const;
