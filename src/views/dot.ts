// Graphviz (DOT) text of a view graph: one cluster per module path, nested as the modules are ("layers" ⊃
// "layers.0" ⊃ "layers.0.attn" ⊃ "layers.0.attn.q"), nodes coloured by op kind, edges labelled with value types.
// Invariants: every identifier and label is a quoted DOT string with `"` and `\` escaped, so any module or tensor
// name is safe; output is deterministic (clusters and nodes in first-appearance order).

import { nodeStyle } from "./op-style.ts";
import type { ViewGraph, ViewNode } from "./view-graph.ts";

const q = (s: string): string => `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;

interface Cluster {
  readonly path: string;
  readonly nodes: ViewNode[];
  readonly children: Map<string, Cluster>;
}

const SHAPES: Readonly<Record<ViewNode["kind"], string>> = { op: "box", input: "ellipse", output: "ellipse", block: "box3d" };

function clusterTree(nodes: readonly ViewNode[]): Cluster {
  const root: Cluster = { path: "", nodes: [], children: new Map() };
  for (const n of nodes) {
    let c = root;
    const parts = n.scope ? n.scope.split(".") : [];
    for (let i = 1; i <= parts.length; i++) {
      const path = parts.slice(0, i).join(".");
      if (!c.children.has(path)) c.children.set(path, { path, nodes: [], children: new Map() });
      c = c.children.get(path)!;
    }
    c.nodes.push(n);
  }
  return root;
}

function nodeLine(n: ViewNode): string {
  const s = nodeStyle(n.kind, n.label);
  const style = n.kind === "op" ? "rounded,filled" : "filled";
  return `${q(n.id)} [label=${q(`${n.label}\n${n.sub}`)}, shape=${SHAPES[n.kind]}, style=${q(style)}, fillcolor=${q(s.fill)}, color=${q(s.stroke)}, tooltip=${q(n.detail.loc ?? n.detail.note ?? n.label)}];`;
}

function emitCluster(c: Cluster, indent: string, out: string[]): void {
  for (const n of c.nodes) out.push(`${indent}${nodeLine(n)}`);
  for (const child of c.children.values()) {
    out.push(`${indent}subgraph ${q(`cluster_${child.path}`)} {`);
    out.push(`${indent}  label=${q(child.path)};`);
    emitCluster(child, `${indent}  `, out);
    out.push(`${indent}}`);
  }
}

export function toDot(v: ViewGraph, title = v.name): string {
  const out = [
    `digraph ${q(v.name)} {`,
    `  graph [rankdir=TB, fontname="Helvetica", fontsize=11, label=${q(title)}, labelloc=t, style="rounded", color="#b0b0b0"];`,
    `  node [fontname="Helvetica", fontsize=10];`,
    `  edge [fontname="Helvetica", fontsize=8, color="#777777"];`,
  ];
  emitCluster(clusterTree(v.nodes), "  ", out);
  for (const e of v.edges) out.push(`  ${q(e.from)} -> ${q(e.to)} [label=${q(e.label)}];`);
  out.push("}");
  return `${out.join("\n")}\n`;
}
