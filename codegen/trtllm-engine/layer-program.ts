// The program of one decoder layer of a lowered graph, in a form that is easy to compare: its nodes in order, each
// input named as the layer input `x`, the positions `pos`, a parameter, or the index of an earlier node of the
// layer. Built-in detection compares these programs with the layer structure of TensorRT-LLM's own models.

import type { Graph, Node, ValueId } from "../../src/ir/graph.ts";

export interface LayerStep {
  readonly node: Node;
  /** One entry per input: "x", "pos", "param", "outside", or the index of the producing step. */
  readonly args: readonly (string | number)[];
}

export interface LayerProgram {
  readonly index: number;
  readonly steps: readonly LayerStep[];
}

const LAYER_SCOPE = /^transformer\.layers\.(\d+)(?:\.|$)/;

export function layerIndexOfScope(scope: string): number | undefined {
  const m = LAYER_SCOPE.exec(scope);
  return m ? Number(m[1]) : undefined;
}

export function layerPrograms(g: Graph): LayerProgram[] {
  const params = new Set(g.params.map((p) => p.value));
  const positions = g.inputs.find((i) => i.name === "position_ids")?.value;
  const byLayer = new Map<number, Node[]>();
  for (const n of g.nodes) {
    const l = layerIndexOfScope(n.scope);
    if (l !== undefined) byLayer.set(l, [...(byLayer.get(l) ?? []), n]);
  }
  return [...byLayer.entries()]
    .sort(([a], [b]) => a - b)
    .map(([index, nodes]) => {
      const producedAt = new Map<ValueId, number>();
      const inside = new Set(nodes.flatMap((n) => n.outputs));
      // The layer input is the one value from outside the layer (not a parameter or the positions) that it reads.
      const outsideVals = [...new Set(nodes.flatMap((n) => n.inputs).filter((v) => !inside.has(v) && !params.has(v) && v !== positions))];
      const steps = nodes.map((n, k) => {
        const args = n.inputs.map((v) =>
          producedAt.has(v)
            ? producedAt.get(v)!
            : params.has(v)
              ? "param"
              : v === positions
                ? "pos"
                : outsideVals.length === 1 && v === outsideVals[0]
                  ? "x"
                  : "outside",
        );
        n.outputs.forEach((o) => producedAt.set(o, k));
        return { node: n, args };
      });
      return { index, steps };
    });
}

/** A one-line rendering for messages, e.g. "rms_norm(x) trtllm.attention(0,pos) add(x,1) ...". */
export function renderProgram(p: LayerProgram): string {
  return p.steps.map((s) => `${s.node.op}(${s.args.filter((a) => a !== "param").join(",")})`).join(" ");
}
