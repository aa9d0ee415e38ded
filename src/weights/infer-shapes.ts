// Source tensor shapes implied by a weight map and the parameter shapes it must produce, for compiling without a
// checkpoint (planning, compile-time benchmarks). Handles the expressions models write by hand — plain sources,
// transposes and slices of them (a sliced source is as large as its furthest slice) — and reports anything else.

import type { WeightExpr, WeightMap } from "./weight-map.ts";

export class ShapeInferenceError extends Error {}

export function inferSourceShapes(map: WeightMap, paramShapes: ReadonlyMap<string, readonly number[]>): Map<string, number[]> {
  const found = new Map<string, number[]>();
  const visit = (e: WeightExpr, shape: number[], where: string): void => {
    if ("source" in e) {
      const prev = found.get(e.source);
      found.set(e.source, prev ? prev.map((d, i) => Math.max(d, shape[i]!)) : shape);
      return;
    }
    if (e.op === "offset") {
      visit(e.x, shape, where);
      return;
    }
    if (e.op === "transpose") {
      visit(e.x, [shape[1]!, shape[0]!], where);
      return;
    }
    if (e.op === "slice") {
      visit(
        e.x,
        shape.map((d, i) => (i === e.dim ? e.end : d)),
        where,
      );
      return;
    }
    if (e.op === "zeros") return;
    throw new ShapeInferenceError(`cannot infer source shapes through '${e.op}' in the weight map entry for '${where}'; compile with a checkpoint`);
  };
  for (const [name, e] of Object.entries(map)) {
    const shape = paramShapes.get(name);
    if (shape) visit(e, [...shape], name);
  }
  return found;
}
