// A graph's structure without its names: nodes in a canonical order (depth-first from the outputs, inputs in
// order), parameters renamed by order of first use, scopes, source lines and pass notes dropped. Two graphs with
// equal signatures are the same dataflow graph of the same ops on the same shapes, however their nodes happened to
// be ordered; this is how "the primitive LLaMA is rewritten into the same fused graph as models/llama.ts" is tested.

import type { Graph, Node, ValueId } from "../ir/graph.ts";
import { printGraph } from "../ir/print.ts";

function canonicalOrder(g: Graph): Node[] {
  const def = new Map<ValueId, Node>(g.nodes.flatMap((n) => n.outputs.map((o): [ValueId, Node] => [o, n])));
  const done = new Set<Node>();
  const out: Node[] = [];
  const visit = (v: ValueId) => {
    const n = def.get(v);
    if (!n || done.has(n)) return;
    done.add(n);
    n.inputs.forEach(visit);
    out.push(n);
  };
  g.outputs.forEach((o) => visit(o.value));
  return out;
}

export function structuralSignature(graph: Graph): string {
  const g = { ...graph, nodes: canonicalOrder(graph) };
  const order = new Map<number, number>();
  const isParam = new Set(g.params.map((p) => p.value));
  for (const n of g.nodes) for (const i of n.inputs) if (isParam.has(i) && !order.has(i)) order.set(i, order.size);
  const params = [...g.params]
    .sort((a, b) => (order.get(a.value) ?? 1e9) - (order.get(b.value) ?? 1e9))
    .map((p) => ({ name: `p${order.get(p.value)}`, value: p.value }));
  const stripped: Graph = { ...g, name: "g", params, hints: {}, nodes: g.nodes.map(({ loc: _l, meta: _m, scope: _s, ...n }) => ({ ...n, scope: "" })) };
  return printGraph(stripped, { locations: false });
}
