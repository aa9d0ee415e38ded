// Scalar activation functions shared by the reference kernels (kernels.ts, kernels-routing.ts), computed in
// float64. erf is written out because JavaScript has none.

import type { CoreAttrs } from "../ir/ops.ts";

/** erf to double precision (JS has none): Maclaurin series for |x| < 2.5, erfc continued fraction beyond. */
export function erf(x: number): number {
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = t;
    let term = t;
    const t2 = t * t;
    for (let n = 1; n < 200; n++) {
      term *= -t2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  let cf = 0;
  for (let n = 60; n >= 1; n--) cf = n / 2 / (t + cf);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + cf);
  return Math.sign(x) * (1 - erfc);
}

export const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));
export const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
export const GATED_ACTS: Record<CoreAttrs<"gated_activation">["act"], (v: number) => number> = {
  silu: (v) => v / (1 + Math.exp(-v)),
  gelu,
  gelu_tanh: geluTanh,
  relu: (v) => Math.max(v, 0),
};
