// Protobuf (de)serialization of IR graphs, through protobufjs reflection over proto/ir.proto (no generated code to
// keep in sync). Decoding re-verifies the graph, so a corrupted or hand-edited file is rejected with the verifier's
// messages instead of failing later.

import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import type { JsonValue } from "./attrs.ts";
import type { DType } from "./dtype.ts";
import type { Graph, Node, SourceLoc, ValueId } from "./graph.ts";
import type { ValueType } from "./ops.ts";
import type { Dim } from "./shape.ts";
import { verify } from "./verify.ts";

const root = protobuf.parse(readFileSync(new URL("./proto/ir.proto", import.meta.url), "utf8"), { keepCase: true }).root;
const GraphMsg = root.lookupType("kiln.ir.Graph");

type DimMsg = { size?: number; symbol?: string };
type AttrMsg = { number?: number; text?: string; flag?: boolean; dims?: { dims: DimMsg[] }; numbers?: { values: number[] }; json?: string };

const dimToMsg = (d: Dim): DimMsg => (typeof d === "number" ? { size: d } : { symbol: d });
const dimFromMsg = (m: DimMsg): Dim => (m.symbol !== undefined && m.symbol !== "" ? m.symbol : (m.size ?? 0));

function attrToMsg(v: unknown): AttrMsg {
  if (typeof v === "number") return { number: v };
  if (typeof v === "string") return { text: v };
  if (typeof v === "boolean") return { flag: v };
  if (Array.isArray(v) && v.every((x) => typeof x === "number")) return { numbers: { values: v } };
  if (Array.isArray(v) && v.every((x) => typeof x === "number" || typeof x === "string")) return { dims: { dims: v.map(dimToMsg) } };
  return { json: JSON.stringify(v) };
}

function attrFromMsg(m: AttrMsg): unknown {
  if (m.number !== undefined) return m.number;
  if (m.text !== undefined) return m.text;
  if (m.flag !== undefined) return m.flag;
  if (m.numbers) return [...m.numbers.values];
  if (m.dims) return m.dims.dims.map(dimFromMsg);
  if (m.json !== undefined) return JSON.parse(m.json) as JsonValue;
  throw new Error("attribute with no value in serialized graph");
}

export function serializeGraph(g: Graph): Uint8Array {
  const msg = {
    name: g.name,
    values: [...g.values].map(([id, t]) => ({ id, dtype: t.dtype, shape: t.shape.map(dimToMsg) })),
    inputs: g.inputs,
    params: g.params,
    outputs: g.outputs,
    nodes: g.nodes.map((n) => ({
      op: n.op,
      inputs: n.inputs,
      outputs: n.outputs,
      attrs: Object.fromEntries(Object.entries(n.attrs).map(([k, v]) => [k, attrToMsg(v)])),
      scope: n.scope,
      ...(n.loc && { loc: n.loc }),
      ...(n.meta && { meta: n.meta }),
    })),
    hints: Object.fromEntries(Object.entries(g.hints).map(([k, v]) => [k, JSON.stringify(v)])),
  };
  const problem = GraphMsg.verify(msg);
  if (problem) throw new Error(`cannot serialize graph '${g.name}': ${problem}`);
  return GraphMsg.encode(GraphMsg.fromObject(msg)).finish();
}

export function parseGraph(bytes: Uint8Array): Graph {
  let obj: any;
  try {
    obj = GraphMsg.toObject(GraphMsg.decode(bytes), { defaults: true, arrays: true, objects: true, longs: Number, oneofs: false });
  } catch (e) {
    throw new Error(`not a Kiln IR protobuf: ${(e as Error).message}`);
  }
  const values = new Map<ValueId, ValueType>(
    obj.values.map((v: { id: number; dtype: string; shape: DimMsg[] }) => [v.id, { dtype: v.dtype as DType, shape: v.shape.map(dimFromMsg) }]),
  );
  const nodes: Node[] = obj.nodes.map((n: any) => ({
    op: n.op,
    inputs: n.inputs,
    outputs: n.outputs,
    attrs: Object.fromEntries(Object.entries(n.attrs as Record<string, AttrMsg>).map(([k, v]) => [k, attrFromMsg(v)])),
    scope: n.scope,
    ...(n.loc && n.loc.file !== "" && { loc: n.loc as SourceLoc }),
    ...(Object.keys(n.meta).length > 0 && { meta: n.meta }),
  }));
  const hints = Object.fromEntries(Object.entries(obj.hints as Record<string, string>).map(([k, v]) => [k, JSON.parse(v) as JsonValue]));
  return verify({ name: obj.name, values, inputs: obj.inputs, params: obj.params, nodes, outputs: obj.outputs, hints });
}
