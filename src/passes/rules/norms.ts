// Recognizing normalizations written from primitives. RMSNorm: x * rsqrt(mean(x^2) + eps) * w (also with x*x and
// x / sqrt(...)); LayerNorm: (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * w + b (also with rsqrt and without
// bias). The epsilon must sit inside the root, exactly where the norm op puts it; anything else does not match.

import { layerNorm, rmsNorm } from "../../dsl/functional.ts";
import type { Tensor } from "../../dsl/tensor.ts";
import { pattern } from "../pattern.ts";
import { type Rule, rule } from "../rule.ts";

type Square = (x: Tensor) => Tensor;
type Normalize = (x: Tensor, variance: Tensor, eps: Tensor) => Tensor;
const SQUARES: [string, Square][] = [
  ["pow", (x) => x.pow(2)],
  ["mul", (x) => x.mul(x)],
];
const NORMALIZES: [string, Normalize][] = [
  ["rsqrt", (x, v, eps) => x.mul(v.add(eps).rsqrt())],
  ["div-sqrt", (x, v, eps) => x.div(v.add(eps).sqrt())],
];

const lastDimIs = (g: Parameters<NonNullable<Rule["check"]>>[1], x: number, w: number) => {
  const xs = g.values.get(x)!.shape;
  const ws = g.values.get(w)!.shape;
  return ws.length === 1 && ws[0] === xs[xs.length - 1] ? undefined : `weight [${ws}] does not match the normalized dim of [${xs}]`;
};

export const RMS_NORM_RULES = SQUARES.flatMap(([sq, square]) =>
  NORMALIZES.map(([nm, normalize]) =>
    rule({
      name: `rms-norm(${sq},${nm})`,
      pattern: pattern("rms norm", { x: "value", w: "value", eps: "constant" }, ({ x, w, eps }) => normalize(x, square(x).mean(-1, true), eps).mul(w)),
      check: (m, g) => lastDimIs(g, m.values.x, m.values.w),
      rewrite: ({ t, constants }) => rmsNorm(t.x, t.w, constants.eps!),
      hint: "norms",
      enables: "RmsNorm",
    }),
  ),
);

export const LAYER_NORM_RULES = SQUARES.flatMap(([sq, square]) =>
  NORMALIZES.flatMap(([nm, normalize]) => [
    rule({
      name: `layer-norm(${sq},${nm})`,
      pattern: pattern("layer norm", { x: "value", w: "value", b: "value", eps: "constant" }, ({ x, w, b, eps }) => {
        const centered = x.sub(x.mean(-1, true));
        return normalize(centered, square(centered).mean(-1, true), eps).mul(w).add(b);
      }),
      check: (m, g) => lastDimIs(g, m.values.x, m.values.w) ?? lastDimIs(g, m.values.x, m.values.b),
      rewrite: ({ t, constants }) => layerNorm(t.x, t.w, t.b, constants.eps!),
      hint: "norms" as const,
      enables: "LayerNorm",
    }),
    rule({
      name: `layer-norm-no-bias(${sq},${nm})`,
      pattern: pattern("layer norm (no bias)", { x: "value", w: "value", eps: "constant" }, ({ x, w, eps }) => {
        const centered = x.sub(x.mean(-1, true));
        return normalize(centered, square(centered).mean(-1, true), eps).mul(w);
      }),
      check: (m, g) => lastDimIs(g, m.values.x, m.values.w),
      rewrite: ({ t, constants }) => layerNorm(t.x, t.w, undefined, constants.eps!),
      hint: "norms" as const,
      enables: "LayerNorm",
    }),
  ]),
);
