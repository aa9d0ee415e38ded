// Fusing the gate and up projections of a gated MLP into one GEMM: act(x @ Wg^T) * (x @ Wu^T) becomes
// gated_activation(x @ [Wu; Wg]^T), the layout of TensorRT-LLM's FusedGatedMLP (fused_fc = [gate; fc] in its
// names, i.e. [up; gate_proj]). The fused weight is a new parameter derived by concatenation in the weight map.

import { gatedActivation, linear } from "../../dsl/functional.ts";
import type { Tensor } from "../../dsl/tensor.ts";
import type { CoreAttrs } from "../../ir/ops.ts";
import { pattern } from "../pattern.ts";
import { rule } from "../rule.ts";
import { concat, src } from "../../weights/weight-map.ts";

type GatedAct = CoreAttrs<"gated_activation">["act"];
const ACTS: [GatedAct, (x: Tensor) => Tensor][] = [
  ["silu", (x) => x.silu()],
  ["gelu", (x) => x.gelu("none")],
  ["gelu_tanh", (x) => x.gelu("tanh")],
  ["relu", (x) => x.relu()],
];

const fusedName = (scope: string, what: string) => (scope ? `${scope}.${what}` : what);

export const GATED_MLP_RULES = ACTS.flatMap(([act, apply]) => [
  rule({
    name: `fuse-gate-up(${act})`,
    pattern: pattern("gated mlp", { x: "value", wg: "param", wu: "param" }, ({ x, wg, wu }) => apply(linear(x, wg)).mul(linear(x, wu))),
    rewrite: ({ t, match, graph, paramName, newParam }) => {
      const [g, u] = [graph.values.get(match.values.wg)!, graph.values.get(match.values.wu)!];
      const fused = newParam(
        fusedName(match.root.scope, "fused_gate_up.weight"),
        { dtype: g.dtype, shape: [(u.shape[0] as number) + (g.shape[0] as number), g.shape[1]!] },
        concat(0, src(paramName("wu")), src(paramName("wg"))),
      );
      return gatedActivation(linear(t.x, fused), act);
    },
    hint: "gatedMlp",
    enables: "FusedGatedMLP (fused_fc + swiglu/geglu)",
  }),
  rule({
    name: `fuse-gate-up-with-bias(${act})`,
    pattern: pattern("gated mlp with biases", { x: "value", wg: "param", bg: "param", wu: "param", bu: "param" }, ({ x, wg, bg, wu, bu }) =>
      apply(linear(x, wg, bg)).mul(linear(x, wu, bu)),
    ),
    rewrite: ({ t, match, graph, paramName, newParam }) => {
      const [g, u] = [graph.values.get(match.values.wg)!, graph.values.get(match.values.wu)!];
      const out = (u.shape[0] as number) + (g.shape[0] as number);
      const w = newParam(
        fusedName(match.root.scope, "fused_gate_up.weight"),
        { dtype: g.dtype, shape: [out, g.shape[1]!] },
        concat(0, src(paramName("wu")), src(paramName("wg"))),
      );
      const b = newParam(
        fusedName(match.root.scope, "fused_gate_up.bias"),
        { dtype: g.dtype, shape: [out] },
        concat(0, src(paramName("bu")), src(paramName("bg"))),
      );
      return gatedActivation(linear(t.x, w, b), act);
    },
    hint: "gatedMlp",
    enables: "FusedGatedMLP (fused_fc + swiglu/geglu)",
  }),
]);
