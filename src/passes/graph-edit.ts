// Rebuilding graphs. `rebuild` walks a graph in order and lets a callback replace any node by new nodes (emitted
// into the new graph's builder); every later use of a replaced value is redirected. `eliminateDeadCode` drops
// nodes whose outputs nothing uses and parameters no node reads. Both keep value ids of untouched nodes, so
// printed IR stays comparable.

import { GraphBuilder, type Graph, type Node, type ValueId } from "../ir/graph.ts";

export interface Rebuilder {
  readonly builder: GraphBuilder;
  /** The new id of an old value (after substitutions). */
  map(v: ValueId): ValueId;
}

/**
 * For each node, `replace` returns the new values for the node's outputs (having emitted whatever it needs into
 * the builder) or undefined to keep the node as it is (with remapped inputs).
 */
export function rebuild(g: Graph, replace: (n: Node, r: Rebuilder) => ValueId[] | undefined, opts: { params?: Graph["params"] } = {}): Graph {
  const b = GraphBuilder.from(g, { keepParams: !opts.params });
  for (const p of opts.params ?? []) if (!b.has(p.value)) b.param(p.name, g.values.get(p.value)!);
  const subst = new Map<ValueId, ValueId>();
  const r: Rebuilder = { builder: b, map: (v) => subst.get(v) ?? v };
  for (const n of g.nodes) {
    const out = replace(n, r);
    if (out) {
      n.outputs.forEach((o, k) => subst.set(o, out[k]!));
      continue;
    }
    const inputs = remapped(n.inputs, subst);
    b.adoptNode(inputs ? { ...n, inputs } : n, g);
  }
  for (const o of g.outputs) b.output(o.name, r.map(o.value));
  return b.build();
}

/** A node's inputs after substitution, or undefined when none of them changed (the node is then kept as is). */
function remapped(inputs: readonly ValueId[], subst: ReadonlyMap<ValueId, ValueId>): ValueId[] | undefined {
  if (!subst.size) return undefined;
  let out: ValueId[] | undefined;
  for (let k = 0; k < inputs.length; k++) {
    const v = subst.get(inputs[k]!) ?? inputs[k]!;
    if (v !== inputs[k] && !out) out = inputs.slice(0, k);
    out?.push(v);
  }
  return out;
}

export function eliminateDeadCode(g: Graph): { graph: Graph; removed: number } {
  const live = new Set<ValueId>(g.outputs.map((o) => o.value));
  const keep: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((o) => live.has(o))) continue;
    keep.push(n);
    n.inputs.forEach((v) => live.add(v));
  }
  keep.reverse();
  const params = g.params.filter((p) => live.has(p.value));
  const removed = g.nodes.length - keep.length + g.params.length - params.length;
  if (!removed) return { graph: g, removed: 0 };
  const used = new Set<ValueId>([...g.inputs.map((i) => i.value), ...params.map((p) => p.value), ...keep.flatMap((n) => n.outputs)]);
  const values = new Map([...g.values].filter(([id]) => used.has(id)));
  return { graph: { ...g, nodes: keep, params, values }, removed };
}
