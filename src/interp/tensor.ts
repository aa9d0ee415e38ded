// Run-time tensors of the CPU interpreter: a concrete shape and a row-major typed array. Floats are always held in
// float32 (values of f16/bf16 type are float32 numbers that were rounded to that type); integers in Int32Array.
// Helpers here are the index arithmetic every kernel shares.

import type { DType } from "../ir/dtype.ts";

export interface RTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function tensor(dtype: DType, shape: readonly number[], data?: Float32Array | Int32Array): RTensor {
  const n = numel(shape);
  const d = data ?? (dtype === "i32" || dtype === "bool" ? new Int32Array(n) : new Float32Array(n));
  if (d.length !== n) throw new Error(`tensor data has ${d.length} elements, shape [${shape}] needs ${n}`);
  return { dtype, shape: [...shape], data: d };
}

export const f32 = (shape: readonly number[], data?: Float32Array): RTensor => tensor("f32", shape, data);
export const i32 = (shape: readonly number[], data?: Int32Array): RTensor => tensor("i32", shape, data);

/** Splits a shape around an axis into (outer, axis size, inner) element counts. */
export function aroundAxis(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis]!, numel(shape.slice(axis + 1))];
}

/** For each output element of a broadcast, the flat offset into an input of the given shape. */
export function broadcastOffsets(inShape: readonly number[], outShape: readonly number[]): Int32Array {
  const n = numel(outShape);
  const rank = outShape.length;
  const inStr = strides(inShape);
  const bStr = outShape.map((_d, i) => {
    const j = i - (rank - inShape.length);
    return j < 0 || inShape[j] === 1 ? 0 : inStr[j]!;
  });
  const offsets = new Int32Array(n);
  const idx = new Array<number>(rank).fill(0);
  let off = 0;
  for (let k = 0; k < n; k++) {
    offsets[k] = off;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      off += bStr[d]!;
      if (idx[d]! < outShape[d]!) break;
      off -= bStr[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return offsets;
}

/** Relative L2 error ||a - b|| / ||b||, the parity measure used throughout Kiln. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relL2: lengths differ (${a.length} vs ${b.length})`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  return Math.sqrt(num) / Math.sqrt(den || 1);
}
