// Reading hints inside passes. Hints live in the IR per module scope; the effective value for a node is the one
// set on its closest enclosing module (its own scope, then each parent, then the model). Contradictory hint sets
// are rejected before any pass runs.

import type { Hints } from "../dsl/hints.ts";
import type { Graph } from "../ir/graph.ts";

export type FuseHint = keyof NonNullable<Hints["fuse"]>;

export class HintError extends Error {}

function scopesOutward(scope: string): string[] {
  const parts = scope ? scope.split(".") : [];
  return [...parts.map((_, i) => parts.slice(0, parts.length - i).join(".")), ""];
}

export function effectiveHints(g: Graph, scope: string): Hints {
  const merged: Hints = {};
  for (const s of scopesOutward(scope).reverse()) {
    const h = g.hints[s] as Hints | undefined;
    if (!h) continue;
    if (h.fuse) merged.fuse = { ...merged.fuse, ...h.fuse };
    if (h.plugins) merged.plugins = { ...merged.plugins, ...h.plugins };
    if (h.quantize !== undefined) merged.quantize = h.quantize;
  }
  return merged;
}

export function fusionEnabled(g: Graph, scope: string, key: FuseHint): boolean {
  return effectiveHints(g, scope).fuse?.[key] ?? true;
}

/** Rejects hint combinations TensorRT-LLM cannot build, naming the module and the conflicting hints. */
export function checkHintConsistency(g: Graph): void {
  for (const [scope, raw] of Object.entries(g.hints)) {
    const where = scope || "the model";
    const h = raw as Hints;
    const p = h.plugins;
    if (p && scope !== "") throw new HintError(`plugin hints apply to the whole model; move them from '${scope}' to the model's hints`);
    if (p?.gptAttention === false) {
      for (const needs of ["pagedKvCache", "contextFmha", "removeInputPadding"] as const)
        if (p[needs]) throw new HintError(`hints on ${where} contradict: plugins.${needs} needs the GPT attention plugin, but plugins.gptAttention is false`);
      if (h.fuse?.attention === false) continue;
    }
    if (p?.fusedMlp && h.fuse?.gatedMlp === false)
      throw new HintError(`hints on ${where} contradict: plugins.fusedMlp asks for the fused gated MLP, but fuse.gatedMlp is false`);
  }
}
