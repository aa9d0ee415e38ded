// Finding repeated decoder layers, so views of large models stay readable: the nodes of each module-list item
// ("layers.3", "transformer.layers.3") are grouped, each group gets a structural signature, and maximal runs of
// consecutive items with equal signatures are reported. Views then show the first layer of a run expanded and the
// rest as one "× N identical layers" block.
// Invariant: two layers get the same signature exactly when they run the same ops with the same attributes, module
// sub-paths, output types, internal wiring and parameter names/types relative to the layer; a parameter shared by
// several layers (tied weights) keeps its absolute name. Values from outside the layer are numbered by first use.

import { stableJson } from "../ir/attrs.ts";
import type { Graph, ValueId } from "../ir/graph.ts";
import { formatShape } from "../ir/shape.ts";

export interface LayerRun {
  /** The module list the layers belong to ("layers", "transformer.layers"). */
  readonly list: string;
  /** Layer roots in order ("layers.0", "layers.1", ...); at least two. */
  readonly layers: readonly string[];
  /** Indices into g.nodes of each layer's nodes, in graph order. */
  readonly nodes: readonly (readonly number[])[];
}

const LAYER_ROOT = /^((.*?)\.(\d+))(?:\.|$)/;

/** "layers.3.attn.q" -> { root: "layers.3", list: "layers", index: 3 }; undefined outside module lists. */
export function layerOfScope(scope: string): { root: string; list: string; index: number } | undefined {
  const m = LAYER_ROOT.exec(scope);
  return m ? { root: m[1]!, list: m[2]!, index: Number(m[3]) } : undefined;
}

function layerSignature(
  g: Graph,
  root: string,
  nodeIdx: readonly number[],
  paramName: ReadonlyMap<ValueId, string>,
  inputName: ReadonlyMap<ValueId, string>,
): string {
  const produced = new Map<ValueId, string>();
  const outside = new Map<ValueId, string>();
  const typeOf = (v: ValueId) => {
    const t = g.values.get(v);
    return t ? `${t.dtype}${formatShape(t.shape)}` : "?";
  };
  const ref = (v: ValueId): string => {
    const local = produced.get(v);
    if (local) return local;
    const input = inputName.get(v);
    if (input !== undefined) return `in:${input}`;
    const param = paramName.get(v);
    if (param !== undefined) return `${param.startsWith(`${root}.`) ? `p:${param.slice(root.length + 1)}` : `P:${param}`}:${typeOf(v)}`;
    if (!outside.has(v)) outside.set(v, `x${outside.size}`);
    return outside.get(v)!;
  };
  return nodeIdx
    .map((i, k) => {
      const n = g.nodes[i]!;
      const rel = n.scope === root ? "" : n.scope.slice(root.length + 1);
      const line = `${n.op}@${rel}(${n.inputs.map(ref).join(",")})${stableJson(n.attrs)}->${n.outputs.map(typeOf).join(",")}`;
      n.outputs.forEach((o, j) => produced.set(o, `${k}.${j}`));
      return line;
    })
    .join("\n");
}

/** Maximal runs (length >= 2) of consecutive, structurally identical module-list items. */
export function findRepeatedLayers(g: Graph): LayerRun[] {
  const paramName = new Map(g.params.map((p) => [p.value, p.name]));
  const inputName = new Map(g.inputs.map((i) => [i.value, i.name]));
  const byRoot = new Map<string, { list: string; index: number; nodes: number[] }>();
  g.nodes.forEach((n, i) => {
    const l = layerOfScope(n.scope);
    if (!l) return;
    const entry = byRoot.get(l.root) ?? { list: l.list, index: l.index, nodes: [] };
    entry.nodes.push(i);
    byRoot.set(l.root, entry);
  });
  const lists = new Map<string, { root: string; index: number; sig: string; nodes: number[] }[]>();
  for (const [root, e] of byRoot) {
    const items = lists.get(e.list) ?? [];
    items.push({ root, index: e.index, sig: layerSignature(g, root, e.nodes, paramName, inputName), nodes: e.nodes });
    lists.set(e.list, items);
  }
  const runs: LayerRun[] = [];
  for (const [list, items] of lists) {
    items.sort((a, b) => a.index - b.index);
    let start = 0;
    for (let k = 1; k <= items.length; k++) {
      const continues = k < items.length && items[k]!.sig === items[start]!.sig && items[k]!.index === items[k - 1]!.index + 1;
      if (continues) continue;
      if (k - start >= 2) {
        const run = items.slice(start, k);
        runs.push({ list, layers: run.map((r) => r.root), nodes: run.map((r) => r.nodes) });
      }
      start = k;
    }
  }
  return runs.sort((a, b) => a.nodes[0]![0]! - b.nodes[0]![0]!);
}

/** The label of the block standing for every layer of a run but the first. */
export function runBlockLabel(run: LayerRun): { title: string; note: string } {
  const rest = run.layers.length - 1;
  const span = rest === 1 ? run.layers[1]! : `${run.layers[1]} … ${run.layers.at(-1)}`;
  return { title: span, note: `× ${rest} identical layer${rest > 1 ? "s" : ""} (same as ${run.layers[0]}, ${run.nodes[0]!.length} nodes each)` };
}
