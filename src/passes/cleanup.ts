// Cleanup passes: dead-code elimination, common-subexpression elimination, and folding of shape-only computations
// (reshape of reshape, reshape/cast/transpose that change nothing, transpose of transpose). They keep graphs small
// and canonical, so recognition patterns see one form of each computation.

import { stableJson } from "../ir/attrs.ts";
import type { Graph, Node, ValueId } from "../ir/graph.ts";
import { shapeEq } from "../ir/shape.ts";
import { eliminateDeadCode, rebuild } from "./graph-edit.ts";
import { keepParams, type Pass, type PassResult } from "./pass.ts";

const result = (graph: Graph, rewrites: number): PassResult => ({ graph, params: keepParams(graph), rewrites, nearMisses: [] });

export const DCE: Pass = {
  name: "dce",
  description: "remove nodes and parameters nothing uses",
  run: (g) => {
    const r = eliminateDeadCode(g);
    return result(r.graph, r.removed);
  },
};

export const CSE: Pass = {
  name: "cse",
  description: "merge nodes that compute the same op on the same inputs",
  run: (g) => {
    const seen = new Map<string, readonly ValueId[]>();
    let merged = 0;
    const graph = rebuild(g, (n, r) => {
      const key = `${n.op}(${n.inputs.map(r.map).join(",")})${stableJson(n.attrs)}`;
      const prev = seen.get(key);
      if (prev) {
        merged++;
        return [...prev];
      }
      seen.set(key, n.outputs);
      return undefined;
    });
    return result(eliminateDeadCode(graph).graph, merged);
  },
};

const composePerm = (first: readonly number[], second: readonly number[]) => second.map((i) => first[i]!);
const isIdentity = (perm: readonly number[]) => perm.every((p, i) => p === i);

/** Folds one node given the (already rebuilt) producer of its input; returns the replacement value or nothing. */
function foldShape(n: Node, g: Graph, producer: (v: ValueId) => Node | undefined, r: Parameters<Parameters<typeof rebuild>[1]>[1]): ValueId[] | undefined {
  const input = r.map(n.inputs[0]!);
  const inType = r.builder.type(input);
  const outType = g.values.get(n.outputs[0]!)!;
  const same = inType.dtype === outType.dtype && shapeEq(inType.shape, outType.shape);
  // Float32 island casts stay: f32 -> f32 in the graph is float16 -> float32 (or back) in a half build.
  if ((n.op === "reshape" || (n.op === "cast" && n.attrs.island === "none")) && same) return [input];
  const src = producer(input);
  if (n.op === "reshape" && src?.op === "reshape") {
    const origin = r.map(src.inputs[0]!);
    if (shapeEq(r.builder.type(origin).shape, outType.shape)) return [origin];
    return r.builder.node("reshape", [origin], n.attrs, { scope: n.scope, ...(n.loc && { loc: n.loc }) });
  }
  if (n.op === "transpose") {
    const perm = n.attrs.perm as number[];
    if (isIdentity(perm)) return [input];
    if (src?.op === "transpose") {
      const composed = composePerm(src.attrs.perm as number[], perm);
      return isIdentity(composed)
        ? [r.map(src.inputs[0]!)]
        : r.builder.node("transpose", [r.map(src.inputs[0]!)], { perm: composed }, { scope: n.scope, ...(n.loc && { loc: n.loc }) });
    }
  }
  return undefined;
}

export const FOLD_SHAPES: Pass = {
  name: "fold-shapes",
  description: "fold reshape/transpose chains and shape-only no-ops",
  run: (g) => {
    let folded = 0;
    const defs = new Map<ValueId, Node>(g.nodes.flatMap((n) => n.outputs.map((o): [ValueId, Node] => [o, n])));
    const graph = rebuild(g, (n, r) => {
      if (n.op === "reshape" || n.op === "cast" || n.op === "transpose") {
        const out = foldShape(n, g, (v) => defs.get(v), r);
        if (out) {
          folded++;
          const last = r.builder.lastNode();
          if (last && out.length === 1 && last.outputs[0] === out[0]) defs.set(out[0]!, last);
          return out;
        }
      }
      return undefined;
    });
    return result(eliminateDeadCode(graph).graph, folded);
  },
};
