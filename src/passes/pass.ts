// What a pass is. A pass maps a graph to a new graph and says, for every parameter of the new graph, how it is
// computed from the old graph's parameters (a weight expression over old parameter names; identity for parameters
// it kept). That derivation is what lets fusions concatenate weights through the weight map instead of copying
// them by hand, and what lets the equivalence checker feed both graphs consistent random weights.

import type { Graph } from "../ir/graph.ts";
import { exprChildren, type WeightExpr, type WeightMap } from "../weights/weight-map.ts";

export interface NearMiss {
  /** The rule or pattern that almost matched. */
  readonly rule: string;
  /** Where: the op, module scope and source line of the node it was tried at. */
  readonly at: string;
  readonly reason: string;
  /** How many pattern nodes matched before it failed (for ranking). */
  readonly matched: number;
}

export interface PassResult {
  readonly graph: Graph;
  /** new parameter name -> expression over the previous graph's parameter names. */
  readonly params: Readonly<Record<string, WeightExpr>>;
  /** Rewrites applied (0 = unchanged). */
  readonly rewrites: number;
  readonly nearMisses: readonly NearMiss[];
}

export interface Pass {
  readonly name: string;
  readonly description: string;
  run(g: Graph): PassResult;
}

export class PassError extends Error {}

/** Identity derivation for every parameter of a graph. */
export function keepParams(g: Graph): Record<string, WeightExpr> {
  return Object.fromEntries(g.params.map((p) => [p.name, { source: p.name }]));
}

/** Rewrites an expression's sources through a map (source name -> expression). */
export function substitute(e: WeightExpr, by: Readonly<Record<string, WeightExpr>>): WeightExpr {
  if ("source" in e) {
    const r = by[e.source];
    if (!r) throw new PassError(`weight derivation refers to unknown parameter '${e.source}'`);
    return r;
  }
  if (e.op === "zeros") return e;
  if (e.op === "concat") return { ...e, xs: e.xs.map((x) => substitute(x, by)) };
  return { ...e, x: substitute(exprChildren(e)[0]!, by) } as WeightExpr;
}

/** Composes derivations: `later` over `earlier`'s parameters, `earlier` over the base names. */
export function composeParams(later: Readonly<Record<string, WeightExpr>>, earlier: Readonly<Record<string, WeightExpr>>): Record<string, WeightExpr> {
  return Object.fromEntries(Object.entries(later).map(([k, e]) => [k, substitute(e, earlier)]));
}

/** A model's weight map carried through pass derivations (HF tensor names stay the sources). */
export function composeWeightMap(derivation: Readonly<Record<string, WeightExpr>>, map: WeightMap): WeightMap {
  return composeParams(derivation, map);
}
