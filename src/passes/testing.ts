// Helpers for pass tests (used by Kiln's own tests; also handy for users testing their own rules): trace a small
// module, run passes, and check the result is equivalent to the input.

import { Module } from "../dsl/module.ts";
import type { Tensor } from "../dsl/tensor.ts";
import { type TraceInput, traceModule } from "../dsl/trace.ts";
import { opCounts, type Graph } from "../ir/graph.ts";
import { checkEquivalence, type EquivalenceReport } from "../interp/equivalence.ts";
import { runPasses } from "./manager.ts";
import type { Pass } from "./pass.ts";

export function traceFn(build: (m: any) => void, forward: (m: any, ...xs: Tensor[]) => Tensor, inputs: TraceInput[]): Graph {
  class Fn extends Module {
    constructor() {
      super();
      build(this);
    }
    forward(...xs: Tensor[]): Tensor {
      return forward(this, ...xs);
    }
  }
  return traceModule(new Fn(), "fn", inputs);
}

export interface PassOutcome {
  readonly graph: Graph;
  readonly counts: Record<string, number>;
  readonly equivalence: EquivalenceReport;
  readonly nearMisses: string[];
}

export function applyAndCheck(g: Graph, passes: readonly Pass[], tolerance = 1e-5): PassOutcome {
  const r = runPasses(g, passes);
  return {
    graph: r.graph,
    counts: opCounts(r.graph),
    equivalence: checkEquivalence(g, r.graph, r.params, { tolerance }),
    nearMisses: r.log.flatMap((e) => e.nearMisses.map((m) => `${m.rule}: ${m.reason}`)),
  };
}
