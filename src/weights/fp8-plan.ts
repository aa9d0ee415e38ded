// Quantized tensors in a conversion plan, and the pure pieces of the converter's two-pass FP8 write:
//   pass 1 streams every F8_E4M3 tensor of a file once and keeps max |x| per scale group (fc and gate of a GatedMLP
//   share a group; every other quantized Linear is a group of one); pass 2 streams them again and writes
//   E4M3(x / scale) with scale = amax / 448, and each group's scale as an F32 [1] tensor (`scaleOf`). Calibrated
//   scales (activation, KV cache) are literal F32 values. Groups are local to a file: each tp rank quantizes its own
//   shard with its own scale, which TensorRT-LLM reads per rank.
// Scale and literal tensors carry `expr: zeros(shape)` only to state their shape like every other plan tensor; the
// converter writes their values, never that expression.
// Invariants: a group's F8 members and its scale tensors live in the same file, every group has at least one
// member and one scale tensor (fc and gate each carry a copy of their shared scale); literal values are finite; a NaN or ±Inf weight is an error naming the tensor
// (the E4M3 encoder would otherwise saturate it silently).

import { f32ToE4M3 } from "../numerics/fp8-e4m3.ts";
import { absMax, fp8WeightScale } from "../numerics/per-tensor.ts";
import { type WeightExpr, zeros } from "./weight-map.ts";

/** Written as E4M3FN codes of x / scale, the scale being its group's (amax over the group in this file) / 448. */
export interface Fp8PlanTensor {
  readonly name: string;
  readonly dtype: "F8_E4M3";
  readonly expr: WeightExpr;
  readonly scaleGroup: string;
  /** A scale known up front (a pre-quantized checkpoint's): no amax pass, and no scale tensor of the group needed. */
  readonly scale?: number;
}

/** The F32 [1] scale of a group, known after pass 1. */
export interface ScalePlanTensor {
  readonly name: string;
  readonly dtype: "F32";
  readonly scaleOf: string;
  readonly expr: WeightExpr;
}

/** Literal F32 values, shape [values.length] (calibrated scales). */
export interface ConstPlanTensor {
  readonly name: string;
  readonly dtype: "F32";
  readonly values: readonly number[];
  readonly expr: WeightExpr;
  /** Where the values come from, for weights.map.json (default: calibration). */
  readonly origin?: string;
}

/**
 * Bytes computed in memory when the converter reaches the tensor (one tensor at a time): group-wise INT4 codes,
 * scales and zeros of a pre-quantized checkpoint (codegen/common/int4-tensors.ts).
 */
export interface BytesPlanTensor {
  readonly name: string;
  readonly dtype: "I8" | "F16" | "BF16" | "F32";
  readonly shape: readonly number[];
  readonly bytes: () => Promise<Uint8Array>;
  readonly expr: WeightExpr;
  /** How the bytes are made, for weights.map.json. */
  readonly origin: string;
}

export type QuantPlanTensor = Fp8PlanTensor | ScalePlanTensor | ConstPlanTensor | BytesPlanTensor;

export const bytesTensor = (
  name: string,
  dtype: BytesPlanTensor["dtype"],
  shape: readonly number[],
  origin: string,
  bytes: () => Promise<Uint8Array>,
): BytesPlanTensor => ({
  name,
  dtype,
  shape,
  bytes,
  expr: zeros(shape),
  origin,
});

export const scaleTensor = (name: string, group: string): ScalePlanTensor => ({ name, dtype: "F32", scaleOf: group, expr: zeros([1]) });
export const constTensor = (name: string, values: readonly number[], origin?: string): ConstPlanTensor => ({
  name,
  dtype: "F32",
  values,
  expr: zeros([values.length]),
  ...(origin !== undefined && { origin }),
});

export const isFp8Tensor = (t: object): t is Fp8PlanTensor => "scaleGroup" in t;
export const isScaleTensor = (t: object): t is ScalePlanTensor => "scaleOf" in t;
export const isConstTensor = (t: object): t is ConstPlanTensor => "values" in t;
export const isBytesTensor = (t: object): t is BytesPlanTensor => "bytes" in t;

/** Problems with one file's quantized tensors (empty when consistent). */
export function quantTensorProblems(tensors: readonly object[]): string[] {
  const members = new Set<string>();
  const scales = new Set<string>();
  const problems: string[] = [];
  for (const t of tensors) {
    if (isFp8Tensor(t) && t.scale === undefined) members.add(t.scaleGroup);
    if (isFp8Tensor(t) && t.scale !== undefined && !(t.scale > 0 && Number.isFinite(t.scale)))
      problems.push(`tensor "${t.name}": fixed FP8 scale ${t.scale} is not a positive finite number`);
    if (isScaleTensor(t)) scales.add(t.scaleOf);
    if (isConstTensor(t) && (t.values.length === 0 || !t.values.every(Number.isFinite)))
      problems.push(`tensor "${t.name}": literal values must be finite and non-empty`);
  }
  for (const g of scales) if (!members.has(g)) problems.push(`scale group "${g}" has a scale tensor but no F8_E4M3 tensor`);
  for (const g of members) if (!scales.has(g)) problems.push(`scale group "${g}" has no scale tensor`);
  return problems;
}

/** Pass 1 state: max |x| per group, fed block by block. */
export class GroupAmax {
  readonly #amax = new Map<string, number>();

  add(group: string, block: Float32Array, tensor: string): void {
    this.#amax.set(group, Math.max(this.#amax.get(group) ?? 0, absMax(block, tensor)));
  }

  /** Each group's FP8 scale: amax / 448 (an all-zero group gets 1 / 448; see per-tensor.ts). */
  scales(): Map<string, number> {
    return new Map([...this.#amax].map(([g, a]) => [g, fp8WeightScale(a)]));
  }
}

/** Pass 2: one block's E4M3 codes. */
export const encodeFp8Block = (block: Float32Array, scale: number, out: Uint8Array = new Uint8Array(block.length)): Uint8Array => f32ToE4M3(block, scale, out);

/** The bytes of a float32 vector (little-endian, as safetensors stores F32). */
export const f32Bytes = (values: readonly number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);
