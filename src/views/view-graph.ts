// The view model every graph view draws (Graphviz, HTML, text): one node per IR op, graph input and graph output,
// edges labelled with the value's type, and every detail a person clicks for (op, module path, output shapes and
// dtypes, attributes, parameters read, source line). Parameters are not nodes: they are listed in the details of the
// op that reads them, which keeps the drawing about dataflow.
// Invariants: node ids are stable across the collapsed and expanded views of one graph ("n<index>" for op nodes,
// "in:<name>", "out:<name>", "block:<first>" for collapsed runs); nodes are listed in a topological order; with
// `collapse`, every layer of a repeated run but the first is replaced by one block node and edges are rerouted to it.

import { formatAttr } from "../ir/attrs.ts";
import { formatLoc, type Graph, type ValueId } from "../ir/graph.ts";
import { formatShape } from "../ir/shape.ts";
import { findRepeatedLayers, type LayerRun, runBlockLabel } from "./collapse.ts";

export type ViewNodeKind = "op" | "input" | "output" | "block";

export interface TypedName {
  readonly name: string;
  readonly type: string;
}

export interface NodeDetail {
  readonly title: string;
  readonly kind: ViewNodeKind;
  readonly op?: string;
  readonly scope: string;
  readonly inputs: readonly TypedName[];
  readonly outputs: readonly TypedName[];
  readonly attrs: Readonly<Record<string, string>>;
  readonly loc?: string;
  readonly meta?: Readonly<Record<string, string>>;
  readonly note?: string;
}

export interface ViewNode {
  readonly id: string;
  readonly kind: ViewNodeKind;
  /** First line of the drawn box: the op, input or output name, or the block's layer span. */
  readonly label: string;
  /** Second line: the (first) output type, or the block's "× N" note. */
  readonly sub: string;
  /** Module path the node is drawn in ("" = top level). */
  readonly scope: string;
  readonly detail: NodeDetail;
}

export interface ViewEdge {
  readonly from: string;
  readonly to: string;
  readonly label: string;
}

export interface ViewGraph {
  readonly name: string;
  readonly nodes: readonly ViewNode[];
  readonly edges: readonly ViewEdge[];
  /** Repeated-layer runs found in the graph (collapsed or not). */
  readonly runs: readonly LayerRun[];
}

export interface ViewOptions {
  readonly collapse?: boolean;
}

export function typeText(g: Graph, v: ValueId): string {
  const t = g.values.get(v);
  return t ? `${t.dtype}${formatShape(t.shape)}` : "?";
}

/** Printer-style value names (%k in definition order), so details match `kiln graph --format text`. */
function valueNamer(g: Graph): (v: ValueId) => string {
  const num = new Map<ValueId, number>();
  for (const x of [...g.inputs, ...g.params]) num.set(x.value, num.size);
  for (const n of g.nodes) for (const o of n.outputs) num.set(o, num.size);
  const params = new Map(g.params.map((p) => [p.value, p.name]));
  const inputs = new Map(g.inputs.map((p) => [p.value, p.name]));
  return (v) => params.get(v) ?? inputs.get(v) ?? `%${num.get(v) ?? `?${v}`}`;
}

export function buildView(g: Graph, opts: ViewOptions = {}): ViewGraph {
  const runs = findRepeatedLayers(g);
  const name = valueNamer(g);
  const params = new Set(g.params.map((p) => p.value));
  // Node index -> the block id that replaces it (collapsed views only).
  const hiddenIn = new Map<number, string>();
  const blockAt = new Map<number, LayerRun>();
  if (opts.collapse)
    for (const run of runs) {
      const rest = run.nodes.slice(1).flat();
      const id = `block:${run.layers[1]}`;
      rest.forEach((i) => hiddenIn.set(i, id));
      blockAt.set(Math.min(...rest), run);
    }

  const nodes: ViewNode[] = [];
  const producer = new Map<ValueId, string>();
  for (const i of g.inputs) {
    const id = `in:${i.name}`;
    const type = typeText(g, i.value);
    producer.set(i.value, id);
    nodes.push({
      id,
      kind: "input",
      label: i.name,
      sub: type,
      scope: "",
      detail: { title: i.name, kind: "input", scope: "", inputs: [], outputs: [{ name: i.name, type }], attrs: {}, note: "graph input" },
    });
  }
  g.nodes.forEach((n, idx) => {
    const run = blockAt.get(idx);
    if (run) {
      const { title, note } = runBlockLabel(run);
      const id = `block:${run.layers[1]}`;
      const inner = run.nodes.slice(1).flat();
      const paramCount = new Set(inner.flatMap((k) => g.nodes[k]!.inputs.filter((v) => params.has(v)))).size;
      nodes.push({
        id,
        kind: "block",
        label: title,
        sub: note.split(" (")[0]!,
        scope: run.list,
        detail: {
          title,
          kind: "block",
          scope: run.list,
          inputs: [],
          outputs: [],
          attrs: {},
          note: `${note}; ${inner.length} nodes and ${paramCount} parameters in all. Click to expand.`,
        },
      });
    }
    const block = hiddenIn.get(idx);
    const id = block ?? `n${idx}`;
    n.outputs.forEach((o) => producer.set(o, id));
    if (block) return;
    const outputs = n.outputs.map((o) => ({ name: name(o), type: typeText(g, o) }));
    const attrs = Object.fromEntries(Object.entries(n.attrs).map(([k, v]) => [k, formatAttr(v)]));
    nodes.push({
      id,
      kind: "op",
      label: n.op,
      sub: outputs[0]?.type ?? "",
      scope: n.scope,
      detail: {
        title: n.op,
        kind: "op",
        op: n.op,
        scope: n.scope,
        inputs: n.inputs.map((v) => ({ name: name(v), type: typeText(g, v) })),
        outputs,
        attrs,
        ...(n.loc && { loc: formatLoc(n.loc) }),
        ...(n.meta && { meta: { ...n.meta } }),
      },
    });
  });
  const edges: ViewEdge[] = [];
  const seen = new Set<string>();
  const addEdge = (from: string | undefined, to: string, label: string) => {
    const key = `${from}->${to}:${label}`;
    if (from === undefined || from === to || seen.has(key)) return;
    seen.add(key);
    edges.push({ from, to, label });
  };
  g.nodes.forEach((n, idx) => {
    const to = hiddenIn.get(idx) ?? `n${idx}`;
    for (const v of n.inputs) if (!params.has(v)) addEdge(producer.get(v), to, typeText(g, v));
  });
  for (const o of g.outputs) {
    const id = `out:${o.name}`;
    const type = typeText(g, o.value);
    nodes.push({
      id,
      kind: "output",
      label: o.name,
      sub: type,
      scope: "",
      detail: { title: o.name, kind: "output", scope: "", inputs: [{ name: name(o.value), type }], outputs: [], attrs: {}, note: "graph output" },
    });
    addEdge(producer.get(o.value), id, type);
  }
  return { name: g.name, nodes, edges, runs };
}
