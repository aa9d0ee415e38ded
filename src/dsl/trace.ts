// Tracing: runs a module tree's forward once with symbolic inputs and records the IR graph. Parameters get their
// names from attribute paths, every module's forward is wrapped (for the duration of the trace) to push its scope,
// hints are validated and stored per scope, and the finished graph is verified.

import type { JsonValue } from "../ir/attrs.ts";
import type { DType } from "../ir/dtype.ts";
import { type Graph, GraphBuilder } from "../ir/graph.ts";
import type { Dim } from "../ir/shape.ts";
import { verify } from "../ir/verify.ts";
import { parseHints } from "./hints.ts";
import { type Module, walkModule } from "./module.ts";
import { bindParameter, unbindParameter } from "./parameter.ts";
import { Tensor } from "./tensor.ts";
import { Tracer, withTracer } from "./tracer.ts";

export interface TraceInput {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Dim[];
}

type Forward = (...args: Tensor[]) => Tensor | Record<string, Tensor>;

export function traceModule(root: Module, name: string, inputs: readonly TraceInput[]): Graph {
  const tracer = new Tracer(new GraphBuilder(name));
  const children = walkModule(root);
  const restore: (() => void)[] = [];
  try {
    return withTracer(tracer, () => {
      if (root.hints) tracer.setHints("", parseHints("", root.hints) as JsonValue);
      for (const c of children) {
        if (c.kind === "param") {
          bindParameter(c.value, tracer.builder.param(c.path, { dtype: c.value.declaredDtype, shape: [...c.value.declaredShape] }));
          restore.push(() => unbindParameter(c.value));
        } else {
          if (c.value.hints) tracer.setHints(c.path, parseHints(c.path, c.value.hints) as JsonValue);
          const mod = c.value as Module & { forward?: Forward };
          if (typeof mod.forward !== "function") continue;
          const original = mod.forward;
          const own = Object.hasOwn(mod, "forward");
          mod.forward = (...args: Tensor[]) => tracer.withScope(c.path, () => original.apply(mod, args));
          restore.push(() => (own ? (mod.forward = original) : delete (mod as { forward?: Forward }).forward));
        }
      }
      const forward = (root as Module & { forward?: Forward }).forward;
      if (typeof forward !== "function") throw new Error(`model '${name}' has no forward method`);
      const args = inputs.map((i) => new Tensor(tracer.builder.input(i.name, { dtype: i.dtype, shape: i.shape })));
      const result = forward.apply(root, args);
      const outs = result instanceof Tensor ? { logits: result } : result;
      for (const [k, t] of Object.entries(outs)) tracer.builder.output(k, t.id);
      return verify(tracer.builder.build());
    });
  } finally {
    restore.forEach((r) => r());
  }
}

/** The standard causal-LM signature: forward(inputIds [batch, seq] i32, positionIds [batch, seq] i32) -> logits. */
export const CAUSAL_LM_INPUTS: readonly TraceInput[] = [
  { name: "input_ids", dtype: "i32", shape: ["batch", "seq"] },
  { name: "position_ids", dtype: "i32", shape: ["batch", "seq"] },
];
