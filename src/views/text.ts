// The text view: the IR printer's output (same value numbers, same lines), with every layer of a repeated run but
// the first replaced by one summary line, and that layer's parameter lines by another. Values defined inside the
// hidden layers keep their numbers, so a line after the summary may read a value whose definition was folded away.

import type { Graph } from "../ir/graph.ts";
import { type PrintOptions, printGraph } from "../ir/print.ts";
import { findRepeatedLayers, runBlockLabel } from "./collapse.ts";

export function toText(g: Graph, opts: PrintOptions & { collapse?: boolean } = {}): string {
  const text = printGraph(g, opts);
  const runs = opts.collapse ? findRepeatedLayers(g) : [];
  if (!runs.length) return text;
  const lines = text.split("\n");
  const paramStart = 1 + g.inputs.length;
  const nodeStart = paramStart + g.params.length + Object.keys(g.hints).length;
  const replace = new Map<number, string | null>(); // line index -> summary line, or null to drop
  for (const run of runs) {
    const { title, note } = runBlockLabel(run);
    const nodeLines = run.nodes
      .slice(1)
      .flat()
      .map((i) => nodeStart + i)
      .sort((a, b) => a - b);
    nodeLines.forEach((l, k) => replace.set(l, k === 0 ? `  ... ${title}: ${note}` : null));
    const roots = run.layers.slice(1).map((r) => `${r}.`);
    const paramLines = g.params.flatMap((p, k) => (roots.some((r) => p.name.startsWith(r)) ? [paramStart + k] : []));
    paramLines.forEach((l, k) => replace.set(l, k === 0 ? `  ... ${paramLines.length} params of ${title} (same names and types as ${run.layers[0]})` : null));
  }
  return lines.flatMap((line, i) => (replace.has(i) ? (replace.get(i) === null ? [] : [replace.get(i)!]) : [line])).join("\n");
}
