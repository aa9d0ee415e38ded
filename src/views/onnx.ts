// An IR graph as an ONNX ModelProto (IR version 11, opset 23), so it opens in Netron and its standard parts run in
// any ONNX runtime. Core ops with an ONNX equivalent become standard ops (a few as two or three: linear is
// Transpose + MatMul [+ Add], silu is Sigmoid + Mul, rsqrt is Sqrt + Reciprocal); everything else (attention, rope,
// causal_mask, gated_activation, repeat_interleave, TensorRT-LLM layers, user ops) becomes a node of a custom domain —
// "kiln" for core ops, "kiln.<namespace>" for namespaced ones ("trtllm.attention" -> kiln.trtllm/Attention) — with
// the op's attributes typed by its schema. Parameters become initializers when their values are given, graph inputs
// otherwise. Every node's doc_string holds its module path and source line.
// Invariants: value names are unique (graph inputs and parameters by name, graph outputs by output name, other
// values `%k` in definition order, as the IR printer numbers them); every IR value gets a ValueInfoProto with its
// dtype and (symbolic) shape; the standard ops compute exactly what the interpreter's kernels compute.

import { type AttrKind, stableJson } from "../ir/attrs.ts";
import type { DType } from "../ir/dtype.ts";
import { formatLoc, type Graph, type Node, type ValueId } from "../ir/graph.ts";
import { type CoreOp, opDef } from "../ir/ops.ts";
import type { Dim, Shape } from "../ir/shape.ts";
import { f32ToBf16, f32ToF16 } from "../weights/half.ts";
import {
  encodeOnnxModel,
  ONNX_ATTR,
  ONNX_DTYPE,
  type OnnxAttribute,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from "./onnx-proto.ts";

export const ONNX_IR_VERSION = 11;
export const ONNX_OPSET = 23;
export const KILN_DOMAIN = "kiln";

export class OnnxExportError extends Error {}

export interface OnnxExportOptions {
  /** Parameter values (float32, IR parameter names). Parameters with values become initializers. */
  readonly weights?: ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;
  readonly docString?: string;
}

const ELEM_TYPE: Readonly<Record<DType, number>> = {
  f32: ONNX_DTYPE.FLOAT,
  f16: ONNX_DTYPE.FLOAT16,
  bf16: ONNX_DTYPE.BFLOAT16,
  i32: ONNX_DTYPE.INT32,
  bool: ONNX_DTYPE.BOOL,
};

const utf8 = (s: string) => new TextEncoder().encode(s);
const aInt = (name: string, i: number): OnnxAttribute => ({ name, type: ONNX_ATTR.INT, i });
const aFloat = (name: string, f: number): OnnxAttribute => ({ name, type: ONNX_ATTR.FLOAT, f });
const aStr = (name: string, s: string): OnnxAttribute => ({ name, type: ONNX_ATTR.STRING, s: utf8(s) });
const aInts = (name: string, ints: readonly number[]): OnnxAttribute => ({ name, type: ONNX_ATTR.INTS, ints: [...ints] });

/** Little-endian element bytes of float32 values stored as `dtype`. */
function rawData(dtype: DType, values: Float32Array): Uint8Array {
  const bytes: Record<DType, () => ArrayBufferView> = {
    f32: () => values,
    f16: () => f32ToF16(values),
    bf16: () => f32ToBf16(values),
    i32: () => Int32Array.from(values),
    bool: () => Uint8Array.from(values, (v) => (v ? 1 : 0)),
  };
  const view = bytes[dtype]();
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function valueInfo(name: string, dtype: DType, shape: Shape): OnnxValueInfo {
  const dim = shape.map((d: Dim) => (typeof d === "number" ? { dim_value: d } : { dim_param: d }));
  return { name, type: { tensor_type: { elem_type: ELEM_TYPE[dtype], shape: { dim } } } };
}

/** One attribute of a custom-domain node, encoded by its schema kind. */
function customAttr(name: string, kind: AttrKind | undefined, v: unknown): OnnxAttribute {
  if (kind === "int" || (kind === undefined && Number.isInteger(v))) return aInt(name, v as number);
  if (kind === "number" || (kind === undefined && typeof v === "number")) return aFloat(name, v as number);
  if (kind === "bool" || typeof v === "boolean") return aInt(name, v ? 1 : 0);
  if (kind === "ints") return aInts(name, v as number[]);
  if (kind === "dims") return { name, type: ONNX_ATTR.STRINGS, strings: (v as Dim[]).map((d) => utf8(String(d))) };
  return aStr(name, typeof v === "string" ? v : stableJson(v));
}

/** "trtllm.gated_mlp" -> { domain: "kiln.trtllm", opType: "GatedMlp" }. */
export function customOpName(op: string): { domain: string; opType: string } {
  const parts = op.split(".");
  const last = parts.pop()!;
  const opType = last
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
  return { domain: [KILN_DOMAIN, ...parts].join("."), opType };
}

interface Ctx {
  readonly g: Graph;
  readonly n: Node;
  ref(v: ValueId): string;
  tmp(): string;
  int64(values: readonly number[]): string;
  constant(dtype: DType, dims: number[], values: Float32Array): string;
  emit(opType: string, inputs: readonly string[], outputs: readonly string[], attrs?: OnnxAttribute[]): void;
}

type Emit = (c: Ctx) => void;

const ins = (c: Ctx) => c.n.inputs.map((v) => c.ref(v));
const outs = (c: Ctx) => c.n.outputs.map((v) => c.ref(v));
const attr = <T>(c: Ctx, k: string) => c.n.attrs[k] as T;
const same =
  (opType: string, attrs?: (c: Ctx) => OnnxAttribute[]): Emit =>
  (c) =>
    c.emit(opType, ins(c), outs(c), attrs?.(c));
const reduce =
  (opType: string): Emit =>
  (c) =>
    c.emit(opType, [c.ref(c.n.inputs[0]!), c.int64(attr<number[]>(c, "axes"))], outs(c), [aInt("keepdims", attr<boolean>(c, "keepDims") ? 1 : 0)]);
const lastDim = (c: Ctx) => c.g.values.get(c.n.inputs[0]!)!.shape.at(-1);

/** A norm's scale input: its weight, or ones when the module has none. */
function normScale(c: Ctx): string {
  if (c.n.inputs[1] !== undefined) return c.ref(c.n.inputs[1]);
  const d = lastDim(c);
  if (typeof d !== "number") throw new OnnxExportError(`${c.n.op} without weight needs a concrete last dim for ONNX`);
  return c.constant(c.g.values.get(c.n.inputs[0]!)!.dtype, [d], new Float32Array(d).fill(1));
}

/** ONNX Reshape target: numbers stay, a symbol equal to the input's dim at that position is 0 (copy), one other is -1. */
export function reshapeTarget(from: Shape, to: Shape): number[] | undefined {
  const target = to.map((d, i) => (typeof d === "number" ? d : i < from.length && from[i] === d ? 0 : -1));
  return target.filter((d) => d === -1).length <= 1 && !to.includes(0) ? target : undefined;
}

/** Standard-op lowering per core op; ops missing here are exported to the kiln domain. */
const STANDARD_RULES = {
  constant: (c) =>
    c.emit("Constant", [], outs(c), [
      {
        name: "value",
        type: ONNX_ATTR.TENSOR,
        t: { dims: [], data_type: ELEM_TYPE[attr<DType>(c, "dtype")], raw_data: rawData(attr<DType>(c, "dtype"), Float32Array.of(attr<number>(c, "value"))) },
      },
    ]),
  cast: same("Cast", (c) => [aInt("to", ELEM_TYPE[attr<DType>(c, "dtype")])]),
  add: same("Add"),
  sub: same("Sub"),
  mul: same("Mul"),
  div: same("Div"),
  pow: same("Pow"),
  neg: same("Neg"),
  exp: same("Exp"),
  tanh: same("Tanh"),
  erf: same("Erf"),
  sqrt: same("Sqrt"),
  relu: same("Relu"),
  sigmoid: same("Sigmoid"),
  rsqrt: (c) => {
    const s = c.tmp();
    c.emit("Sqrt", ins(c), [s]);
    c.emit("Reciprocal", [s], outs(c));
  },
  silu: (c) => {
    const s = c.tmp();
    c.emit("Sigmoid", ins(c), [s]);
    c.emit("Mul", [ins(c)[0]!, s], outs(c));
  },
  gelu: same("Gelu", (c) => [aStr("approximate", attr<string>(c, "approximate"))]),
  matmul: same("MatMul"),
  linear: (c) => {
    const [x, w, b] = ins(c);
    const wt = c.tmp();
    c.emit("Transpose", [w!], [wt], [aInts("perm", [1, 0])]);
    if (b === undefined) return c.emit("MatMul", [x!, wt], outs(c));
    const y = c.tmp();
    c.emit("MatMul", [x!, wt], [y]);
    c.emit("Add", [y, b], outs(c));
  },
  embedding: (c) => c.emit("Gather", ins(c), outs(c), [aInt("axis", 0)]),
  softmax: same("Softmax", (c) => [aInt("axis", attr<number>(c, "axis"))]),
  reduce_mean: reduce("ReduceMean"),
  reduce_sum: reduce("ReduceSum"),
  reduce_max: reduce("ReduceMax"),
  transpose: same("Transpose", (c) => [aInts("perm", attr<number[]>(c, "perm"))]),
  split: (c) => c.emit("Split", [ins(c)[0]!, c.int64(attr<number[]>(c, "sizes"))], outs(c), [aInt("axis", attr<number>(c, "axis"))]),
  concat: same("Concat", (c) => [aInt("axis", attr<number>(c, "axis"))]),
  slice: (c) =>
    c.emit("Slice", [ins(c)[0]!, c.int64([attr<number>(c, "start")]), c.int64([attr<number>(c, "end")]), c.int64([attr<number>(c, "axis")])], outs(c)),
  layer_norm: (c) =>
    c.emit("LayerNormalization", [ins(c)[0]!, normScale(c), ...ins(c).slice(2)], outs(c), [aInt("axis", -1), aFloat("epsilon", attr<number>(c, "eps"))]),
  rms_norm: (c) => c.emit("RMSNormalization", [ins(c)[0]!, normScale(c)], outs(c), [aInt("axis", -1), aFloat("epsilon", attr<number>(c, "eps"))]),
  // Routing ops (issue 14). ONNX's TopK/ArgMax give int64 indices; a Cast keeps the IR's i32.
  topk: (c) => {
    const [values, indices] = outs(c);
    const wide = c.tmp();
    c.emit(
      "TopK",
      [ins(c)[0]!, c.int64([attr<number>(c, "k")])],
      [values!, wide],
      [aInt("axis", attr<number>(c, "axis")), aInt("largest", 1), aInt("sorted", 1)],
    );
    c.emit("Cast", [wide], [indices!], [aInt("to", ONNX_DTYPE.INT32)]);
  },
  argmax: (c) => {
    const wide = c.tmp();
    c.emit(
      "ArgMax",
      ins(c),
      [wide],
      [aInt("axis", attr<number>(c, "axis")), aInt("keepdims", attr<boolean>(c, "keepDims") ? 1 : 0), aInt("select_last_index", 0)],
    );
    c.emit("Cast", [wide], outs(c), [aInt("to", ONNX_DTYPE.INT32)]);
  },
  greater: same("Greater"),
  less: same("Less"),
  equal: same("Equal"),
  where: same("Where"),
  gather: same("GatherElements", (c) => [aInt("axis", attr<number>(c, "axis"))]),
  index_select: same("Gather", (c) => [aInt("axis", attr<number>(c, "axis"))]),
  one_hot: (c) => {
    const dtype = attr<DType>(c, "dtype");
    // int32 depth: onnxruntime's CPU OneHot has (int32 indices, int32 depth) kernels, not (int32, int64).
    const depth = c.constant("i32", [], Float32Array.of(attr<number>(c, "numClasses")));
    c.emit("OneHot", [ins(c)[0]!, depth, c.constant(dtype, [2], Float32Array.of(0, 1))], outs(c), [aInt("axis", -1)]);
  },
} as const satisfies Partial<Record<CoreOp, Emit>>;

/**
 * Core ops exported to the `kiln` domain, always (no standard ONNX op has their semantics) or when their operands
 * do not fit a standard op (reshape with symbolic dims). Together with the rules above they must cover the op table:
 * `_everyOpDecided` does not compile while an op is in neither.
 */
export const KILN_DOMAIN_OPS = [
  "reshape",
  "repeat_interleave",
  "rope",
  "causal_mask",
  "gated_activation",
  "attention",
  "softcap",
  "moe",
] as const satisfies readonly CoreOp[];
type UndecidedOps = Exclude<CoreOp, keyof typeof STANDARD_RULES | (typeof KILN_DOMAIN_OPS)[number]>;
const _everyOpDecided: [UndecidedOps] extends [never] ? true : UndecidedOps = true;
void _everyOpDecided;

export const STANDARD_OPS: Partial<Record<CoreOp, Emit>> = STANDARD_RULES;

/** Whether a node becomes standard ONNX ops (reshape only when its target is expressible). */
export function isStandardNode(g: Graph, n: Node): boolean {
  if (n.op === "reshape") return reshapeTarget(g.values.get(n.inputs[0]!)!.shape, n.attrs.shape as Dim[]) !== undefined;
  return n.op in STANDARD_OPS;
}

function emitReshapeOrCustom(c: Ctx & { custom(): void }): void {
  const target = reshapeTarget(c.g.values.get(c.n.inputs[0]!)!.shape, attr<Dim[]>(c, "shape"));
  if (target) c.emit("Reshape", [ins(c)[0]!, c.int64(target)], outs(c));
  else c.custom();
}

export function toOnnxModel(g: Graph, opts: OnnxExportOptions = {}): OnnxModel {
  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  const domains = new Set<string>();
  const names = new Map<ValueId, string>();
  for (const i of g.inputs) names.set(i.value, i.name);
  for (const p of g.params) names.set(p.value, p.name);
  const outputAliases: { name: string; value: ValueId }[] = [];
  for (const o of g.outputs) {
    if (names.has(o.value)) outputAliases.push(o);
    else names.set(o.value, o.name);
  }
  // Same numbering as the IR printer: inputs, parameters, then node outputs in order.
  let counter = g.inputs.length + g.params.length;
  for (const n of g.nodes)
    for (const o of n.outputs) {
      if (!names.has(o)) names.set(o, `%${counter}`);
      counter++;
    }
  const taken = new Set(names.values());
  if (taken.size !== names.size) throw new OnnxExportError(`graph '${g.name}': two values share a name (a graph output named like an input or parameter?)`);
  let tmpCount = 0;
  const fresh = (base: string) => {
    let name = `${base}#${tmpCount++}`;
    while (taken.has(name)) name = `${base}#${tmpCount++}`;
    taken.add(name);
    return name;
  };

  g.nodes.forEach((n, idx) => {
    const base = `${n.scope || g.name}/${n.op}_${idx}`;
    const doc = [n.scope && `module ${n.scope}`, n.loc && `at ${formatLoc(n.loc)}`, ...Object.entries(n.meta ?? {}).map(([k, v]) => `${k}: ${v}`)]
      .filter(Boolean)
      .join("\n");
    let part = 0;
    const push = (opType: string, inputs: readonly string[], outputs: readonly string[], attrs: OnnxAttribute[] = [], domain = "") => {
      if (domain) domains.add(domain);
      nodes.push({
        name: part++ ? `${base}.${part - 1}` : base,
        op_type: opType,
        ...(domain && { domain }),
        input: [...inputs],
        output: [...outputs],
        attribute: attrs,
        ...(doc && { doc_string: doc }),
      });
    };
    const c = {
      g,
      n,
      ref: (v: ValueId) =>
        names.get(v) ??
        (() => {
          throw new OnnxExportError(`${base}: input %${v} is not defined before use`);
        })(),
      tmp: () => fresh(`${base}/tmp`),
      int64: (values: readonly number[]) => {
        const name = fresh(`${base}/const`);
        initializers.push({ name, dims: [values.length], data_type: ONNX_DTYPE.INT64, int64_data: [...values] });
        return name;
      },
      constant: (dtype: DType, dims: number[], values: Float32Array) => {
        const name = fresh(`${base}/const`);
        initializers.push({ name, dims, data_type: ELEM_TYPE[dtype], raw_data: rawData(dtype, values) });
        return name;
      },
      emit: (opType: string, inputs: readonly string[], outputs: readonly string[], attrs?: OnnxAttribute[]) => push(opType, inputs, outputs, attrs),
      custom: () => {
        const { domain, opType } = customOpName(n.op);
        const schema = opDef(n.op)?.attrs ?? {};
        const attrs = Object.entries(n.attrs).map(([k, v]) => customAttr(k, schema[k], v));
        push(
          opType,
          n.inputs.map((v) => c.ref(v)),
          n.outputs.map((v) => c.ref(v)),
          attrs,
          domain,
        );
      },
    };
    if (n.op === "reshape") return emitReshapeOrCustom(c);
    const rule = STANDARD_OPS[n.op as CoreOp];
    if (rule) rule(c);
    else c.custom();
  });
  for (const o of outputAliases) nodes.push({ name: `${g.name}/output_${o.name}`, op_type: "Identity", input: [names.get(o.value)!], output: [o.name] });

  const typeOf = (v: ValueId) => g.values.get(v)!;
  const weights: NonNullable<OnnxExportOptions["weights"]> = opts.weights ?? new Map();
  for (const p of g.params) {
    const w = weights.get(p.name);
    if (!w) continue;
    const t = typeOf(p.value);
    const declared = t.shape as number[];
    if (w.shape.length !== declared.length || w.shape.some((d, i) => d !== declared[i]))
      throw new OnnxExportError(`parameter '${p.name}': weights are [${w.shape}], the graph declares [${declared}]`);
    initializers.push({ name: p.name, dims: [...declared], data_type: ELEM_TYPE[t.dtype], raw_data: rawData(t.dtype, w.data) });
  }
  const graphInputs = [...g.inputs, ...g.params.filter((p) => !weights.has(p.name))].map((i) =>
    valueInfo(i.name, typeOf(i.value).dtype, typeOf(i.value).shape),
  );
  const outputValues = new Set(g.outputs.map((o) => o.value));
  const valueInfos = g.nodes.flatMap((n) =>
    n.outputs.filter((o) => !outputValues.has(o)).map((o) => valueInfo(names.get(o)!, typeOf(o).dtype, typeOf(o).shape)),
  );
  return {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: "", version: ONNX_OPSET }, ...[...domains].sort().map((domain) => ({ domain, version: 1 }))],
    producer_name: "kiln",
    producer_version: "0.1.0",
    ...(opts.docString && { doc_string: opts.docString }),
    graph: {
      name: g.name,
      node: nodes,
      initializer: initializers,
      input: graphInputs,
      output: g.outputs.map((o) => valueInfo(o.name, typeOf(o.value).dtype, typeOf(o.value).shape)),
      value_info: valueInfos,
    },
  };
}

export const toOnnxBytes = (g: Graph, opts: OnnxExportOptions = {}): Uint8Array => encodeOnnxModel(toOnnxModel(g, opts));
