// `kiln inspect`: what a model is made of — parameter counts per module (every module path, summed over its
// children), op counts at each stage, the hints in effect, and the TensorRT-LLM class it compiles to (built-in, or
// custom code and why no built-in class matches).
// Invariants: counts are exact element counts of the traced graph's parameters (a tied weight counts once); module
// paths are parameter names minus their last component, plus every ancestor, "" being the whole model.

import { type BuiltinFamily, detectForEngine } from "../../codegen/trtllm-engine/builtin.ts";
import { lowerMoeToTrtllm } from "../lower/moe-lowering.ts";
import { emitModelPy } from "../../codegen/trtllm-engine/model-py.ts";
import type { Hints } from "../dsl/hints.ts";
import type { JsonValue } from "../ir/attrs.ts";
import { type Graph, opCounts } from "../ir/graph.ts";
import { effectiveHints } from "../passes/hints.ts";
import { findRepeatedLayers } from "./collapse.ts";
import { type ModelStages, type Stage, STAGES } from "./model-stages.ts";

export interface ModuleParams {
  readonly path: string;
  readonly params: number;
}

export interface TargetClass {
  readonly builtin: boolean;
  readonly architecture: string;
  readonly why: string;
  /** Per built-in family, why it does not match (custom targets only). */
  readonly reasons?: Readonly<Record<BuiltinFamily, string>>;
}

export interface InspectReport {
  readonly model: string;
  readonly architectures: readonly string[];
  readonly totalParams: number;
  /** Every module path with its parameter count, parents before children, in first-appearance order. */
  readonly modules: readonly ModuleParams[];
  /** Runs of identical layers in the traced graph ("layers.1 … layers.31 same as layers.0"). */
  readonly repeated: readonly { readonly list: string; readonly first: string; readonly count: number }[];
  readonly ops: Readonly<Record<Stage, Readonly<Record<string, number>>>>;
  readonly nodes: Readonly<Record<Stage, number>>;
  readonly hints: { readonly perModule: Readonly<Record<string, JsonValue>>; readonly model: Hints };
  readonly target: TargetClass;
}

export function paramsPerModule(g: Graph): ModuleParams[] {
  const counts = new Map<string, number>([["", 0]]);
  for (const p of g.params) {
    const n = (g.values.get(p.value)!.shape as number[]).reduce((a, b) => a * b, 1);
    const parts = p.name.split(".").slice(0, -1);
    for (let i = 0; i <= parts.length; i++) {
      const path = parts.slice(0, i).join(".");
      counts.set(path, (counts.get(path) ?? 0) + n);
    }
  }
  return [...counts].map(([path, params]) => ({ path, params }));
}

function targetClass(stages: ModelStages): TargetClass {
  // As the engine target sees it: mixture-of-experts blocks as TensorRT-LLM's MOE / SharedMoE.
  const lowered = lowerMoeToTrtllm(stages.lowered(), stages.shapeOf);
  const d = detectForEngine(lowered).detection;
  if (d.ok)
    return {
      builtin: true,
      architecture: d.match.architecture,
      why: `every decoder layer and the model around them match TensorRT-LLM's built-in ${d.match.architecture} (family ${d.match.family})`,
    };
  let architecture: string;
  try {
    architecture = emitModelPy(lowered, { modelName: stages.def.name }).architecture;
  } catch (e) {
    architecture = `(model.py cannot be generated: ${(e as Error).message.split("\n")[0]})`;
  }
  const why = Object.entries(d.reasons)
    .map(([family, reason]) => `not ${family}: ${reason}`)
    .join("; ");
  return { builtin: false, architecture, why, reasons: d.reasons };
}

export function inspectModel(stages: ModelStages): InspectReport {
  const traced = stages.graph("traced");
  const modules = paramsPerModule(traced);
  const graphs = Object.fromEntries(STAGES.map((s) => [s, stages.graph(s)])) as Record<Stage, Graph>;
  return {
    model: stages.def.name,
    architectures: stages.def.architectures,
    totalParams: modules[0]!.params,
    modules,
    repeated: findRepeatedLayers(traced).map((r) => ({ list: r.list, first: r.layers[0]!, count: r.layers.length })),
    ops: Object.fromEntries(STAGES.map((s) => [s, opCounts(graphs[s])])) as Record<Stage, Record<string, number>>,
    nodes: Object.fromEntries(STAGES.map((s) => [s, graphs[s].nodes.length])) as Record<Stage, number>,
    hints: { perModule: traced.hints, model: effectiveHints(traced, "") },
    target: targetClass(stages),
  };
}

const count = (n: number) => n.toLocaleString("en-US");
const NAME_W = 30;

/** Readable report: module tree (repeated layers after the first folded), op counts per stage, hints, target. */
export function formatInspect(r: InspectReport): string {
  const hidden = new Set<string>();
  for (const run of r.repeated) {
    const prefix = run.first.replace(/\d+$/, "");
    const firstIdx = Number(run.first.slice(prefix.length));
    for (let k = firstIdx + 1; k < firstIdx + run.count; k++) hidden.add(`${prefix}${k}`);
  }
  const isHidden = (path: string) => [...hidden].some((h) => path === h || path.startsWith(`${h}.`));
  const lines = [`model ${r.model} (${r.architectures.join(", ") || "no HF architecture"}): ${count(r.totalParams)} parameters`, "parameters per module:"];
  for (const m of r.modules) {
    if (m.path === "" || isHidden(m.path)) continue;
    const depth = m.path.split(".").length;
    lines.push(`  ${`${"  ".repeat(depth - 1)}${m.path.split(".").at(-1)}`.padEnd(NAME_W)} ${count(m.params).padStart(16)}`);
  }
  for (const run of r.repeated) lines.push(`  (${run.list}: ${run.count} identical layers; ${run.first} shown, the other ${run.count - 1} folded)`);
  lines.push("ops per stage:");
  const ops = [...new Set(Object.values(r.ops).flatMap((o) => Object.keys(o)))].sort();
  const w = Math.max(...ops.map((o) => o.length), 10);
  lines.push(`  ${"op".padEnd(w)} ${STAGES.map((s) => s.padStart(7)).join(" ")}`);
  for (const op of ops) lines.push(`  ${op.padEnd(w)} ${STAGES.map((s) => String(r.ops[s][op] ?? "·").padStart(7)).join(" ")}`);
  lines.push(`  ${"(nodes)".padEnd(w)} ${STAGES.map((s) => String(r.nodes[s]).padStart(7)).join(" ")}`);
  const perModule = Object.entries(r.hints.perModule);
  lines.push(
    `hints: ${perModule.length ? perModule.map(([s, h]) => `${s || "<model>"} ${JSON.stringify(h)}`).join("; ") : "none (defaults: every fusion on, GPT attention plugin, paged KV cache)"}`,
  );
  lines.push(`target: ${r.target.builtin ? "built-in" : "custom"} ${r.target.architecture}`);
  lines.push(`  why: ${r.target.why}`);
  return `${lines.join("\n")}\n`;
}
