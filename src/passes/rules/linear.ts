// Recognizing linear layers written as primitives: x @ W^T with W a [out, in] parameter becomes `linear`, and a
// bias parameter added after a linear folds into it (TensorRT-LLM's Linear carries its bias).

import { linear } from "../../dsl/functional.ts";
import { pattern } from "../pattern.ts";
import { rule } from "../rule.ts";

export const MATMUL_TO_LINEAR = rule({
  name: "matmul-transposed-weight-to-linear",
  pattern: pattern("x @ W^T", { x: "value", w: "param" }, ({ x, w }) => x.matmul(w.transpose([1, 0]))),
  rewrite: ({ t }) => linear(t.x, t.w),
  enables: "ColumnLinear/RowLinear",
});

export const FOLD_BIAS = rule({
  name: "fold-bias-add-into-linear",
  pattern: pattern("linear + b", { x: "value", w: "value", b: "param" }, ({ x, w, b }) => linear(x, w).add(b)),
  check: (m, g) => {
    const b = g.values.get(m.values.b)!;
    const w = g.values.get(m.values.w)!;
    return b.shape.length === 1 && b.shape[0] === w.shape[0] ? undefined : `bias shape [${b.shape}] is not [out] of weight [${w.shape}]`;
  },
  rewrite: ({ t }) => linear(t.x, t.w, t.b),
  hint: "biasAdd",
});
