// Fast elementwise kernels: the reference's binary ops and activations (../kernels.ts) without its generic
// broadcast-offset table and per-element callbacks, for the shapes a transformer produces (equal shapes, or a
// trailing-suffix operand such as a bias or a norm weight). Invariants: each computes exactly the reference's
// float64 expression rounded once to float32, so results are bit-identical to the reference; any other shape
// or dtype delegates to the reference kernel.

import { type Kernel, KERNELS } from "../kernels.ts";
import { type RTensor, tensor } from "../tensor.ts";

type BinaryOp = "add" | "sub" | "mul" | "div";

/** b broadcasts over a as a trailing suffix of its shape (b's shape equals a's last dims, leading 1s allowed). */
function isSuffix(a: readonly number[], b: readonly number[]): boolean {
  const lead = b.length - a.length;
  for (let i = 0; i < b.length; i++) {
    if (i < lead) {
      if (b[i] !== 1) return false;
    } else if (b[i] !== a[i - lead]) return false;
  }
  return true;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

function binary(op: BinaryOp, loop: (a: Float32Array, b: Float32Array, out: Float32Array) => void): Kernel<BinaryOp> {
  return (ins, attrs, ctx) => {
    const [a, b] = ins as [RTensor, RTensor];
    if (
      a.data instanceof Float32Array &&
      b.data instanceof Float32Array &&
      a.dtype === b.dtype &&
      a.shape.length >= b.shape.length &&
      (sameShape(a.shape, b.shape) || isSuffix(a.shape, b.shape))
    ) {
      const out = new Float32Array(a.data.length);
      loop(a.data, b.data, out);
      return [tensor(a.dtype, a.shape, out)];
    }
    return KERNELS[op](ins, attrs, ctx);
  };
}

// b.length divides a.length (equal, or a suffix repeated); j walks b cyclically.
const add = binary("add", (a, b, out) => {
  for (let i = 0, j = 0; i < out.length; i++, j = j + 1 === b.length ? 0 : j + 1) out[i] = a[i]! + b[j]!;
});
const sub = binary("sub", (a, b, out) => {
  for (let i = 0, j = 0; i < out.length; i++, j = j + 1 === b.length ? 0 : j + 1) out[i] = a[i]! - b[j]!;
});
const mul = binary("mul", (a, b, out) => {
  for (let i = 0, j = 0; i < out.length; i++, j = j + 1 === b.length ? 0 : j + 1) out[i] = a[i]! * b[j]!;
});
const div = binary("div", (a, b, out) => {
  for (let i = 0, j = 0; i < out.length; i++, j = j + 1 === b.length ? 0 : j + 1) out[i] = a[i]! / b[j]!;
});

const silu: Kernel<"silu"> = (ins, attrs, ctx) => {
  const x = ins[0]!;
  if (!(x.data instanceof Float32Array)) return KERNELS.silu(ins, attrs, ctx);
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = x.data[i]!;
    out[i] = v / (1 + Math.exp(-v));
  }
  return [tensor(x.dtype, x.shape, out)];
};

const gatedActivation: Kernel<"gated_activation"> = (ins, attrs, ctx) => {
  const x = ins[0]!;
  if (attrs.act !== "silu" || !(x.data instanceof Float32Array)) return KERNELS.gated_activation(ins, attrs, ctx);
  const n = x.shape[x.shape.length - 1]! / 2;
  const rows = x.data.length / (2 * n);
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < n; i++) {
      const g = x.data[r * 2 * n + n + i]!;
      out[r * n + i] = (g / (1 + Math.exp(-g))) * x.data[r * 2 * n + i]!;
    }
  return [tensor(x.dtype, [...x.shape.slice(0, -1), n], out)];
};

export const FAST_ELEMENTWISE = { add, sub, mul, div, silu, gated_activation: gatedActivation } as const;
