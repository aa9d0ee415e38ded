// The ONNX protobuf schema (vendored onnx.proto, proto2, IR version 14 definitions) loaded with protobufjs at run
// time, and the plain-object shapes Kiln builds before encoding. Invariants: field names are the proto's own
// snake_case names (keepCase); int64 fields are written as JS numbers (every value Kiln writes is a safe integer) and
// decode as numbers (longs: Number); enums decode as their numeric values, matching what encoding accepts.

import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import type { Type } from "protobufjs";

const PROTO = fileURLToPath(new URL("./onnx.proto", import.meta.url));

let root: protobuf.Root | undefined;
function schema(): protobuf.Root {
  root ??= new protobuf.Root().loadSync(PROTO, { keepCase: true });
  return root;
}

export const onnxType = (name: "ModelProto" | "GraphProto" | "NodeProto" | "TensorProto"): Type => schema().lookupType(`onnx.${name}`);

/** TensorProto.DataType values Kiln uses. */
export const ONNX_DTYPE = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, BFLOAT16: 16 } as const;

/** AttributeProto.AttributeType values. */
export const ONNX_ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

export interface OnnxTensor {
  name?: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  int64_data?: number[];
  float_data?: number[];
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: OnnxTensor;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}

export interface OnnxNode {
  name: string;
  op_type: string;
  domain?: string;
  input: string[];
  output: string[];
  attribute?: OnnxAttribute[];
  doc_string?: string;
}

export interface OnnxDim {
  dim_value?: number;
  dim_param?: string;
}

export interface OnnxValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: OnnxDim[] } } };
  doc_string?: string;
}

export interface OnnxGraph {
  name: string;
  node: OnnxNode[];
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  value_info: OnnxValueInfo[];
  doc_string?: string;
}

export interface OnnxModel {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  doc_string?: string;
  graph: OnnxGraph;
  metadata_props?: { key: string; value: string }[];
}

export function encodeOnnxModel(m: OnnxModel): Uint8Array {
  const t = onnxType("ModelProto");
  const why = t.verify(m);
  if (why) throw new Error(`ONNX model '${m.graph.name}' does not fit onnx.ModelProto: ${why}`);
  return t.encode(t.fromObject(m)).finish();
}

/** Decodes bytes as an onnx.ModelProto into plain objects (strings as bytes stay Uint8Array). */
export function decodeOnnxModel(bytes: Uint8Array): OnnxModel {
  const t = onnxType("ModelProto");
  return t.toObject(t.decode(bytes), { longs: Number, enums: Number, defaults: false, arrays: true }) as OnnxModel;
}
