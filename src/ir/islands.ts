// Float32 islands: the values a half-precision build computes in float32. A graph traces floats as f32, which stands
// for the build's float dtype (float16 or bfloat16 in half builds); `cast` with island "enter" makes its result
// float32 in every build and island "exit" returns to the build's dtype. In between, every float value computed from
// an island value is an island value too (PyTorch's type promotion: float32 op float16 gives float32), until an
// exit. Used by the interpreter's half-precision mode; the emitters need no analysis (they write the casts, and
// PyTorch and TensorRT carry the dtype).
// Invariant: a pure function of the graph; values that are not float are never island values.

import { isFloat } from "./dtype.ts";
import type { Graph, ValueId } from "./graph.ts";

/** Values computed in float32 in a half-precision build. */
export function islandValues(g: Graph): Set<ValueId> {
  const island = new Set<ValueId>();
  for (const n of g.nodes) {
    const mode = n.op === "cast" ? (n.attrs.island as string) : undefined;
    const inside = mode === "enter" || (mode !== "exit" && n.inputs.some((v) => island.has(v)));
    if (inside) for (const o of n.outputs) if (isFloat(g.values.get(o)!.dtype)) island.add(o);
  }
  return island;
}

/** Whether the graph has any float32 island. */
export const hasIslands = (g: Graph): boolean => g.nodes.some((n) => n.op === "cast" && n.attrs.island === "enter");
