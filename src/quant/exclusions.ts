// Per-module exclusions: which lowered Linears a DSL `quantize: false` hint keeps unquantized, and the config.json
// `exclude_modules` list that makes TensorRT-LLM 1.2.1 do the same. Facts it follows (quantization/quantize.py,
// models/modeling_utils.py, models/convert_utils.py):
//   - quantize_layers fnmatches each module's path against the patterns; a given list REPLACES the defaults, so
//     Kiln always writes the defaults (lm_head, router, embeddings) plus its own entries.
//   - Module paths are local to a pipeline stage (transformer.layers.{local}); one config serves every stage, so a
//     per-layer exclusion must be the same on every stage (else a QuantError says so).
//   - Weight-only load-time quantization (weight_only_quantize_dict) matches the same patterns against TENSOR names
//     and quantizes any tensor whose name merely contains qkv.weight, dense.weight, fc.weight, proj.weight or
//     gate.weight; so for W8A16/W4A16 every excluded Linear also gets its `.weight` pattern, and so does any other
//     tensor whose name contains one of those strings (a custom `*_proj.weight`), which would otherwise be
//     quantized behind the model's back.
//   - fuse_gate_mlp checks `<mlp>.fc` by exact membership and fuses fc with gate; excluding only one of them would
//     fuse an FP8 and a half-precision weight, so excluding either excludes both.
//   - Mixture of experts (docs/moe.md): the router and the shared-expert gate are never quantized (the defaults
//     `*router` and `*shared_expert_gate`, which both upstream converters also keep unquantized); Kiln does not write
//     TensorRT-LLM's quantized expert layouts either, so every MoE module (its MixtureOfExperts, which
//     quantize_layers would otherwise give a quantized mode, and its shared expert's Linears) is excluded by path.
// How a hint reaches a lowered Linear: traced parameters are named by DSL module path, and lowered weights are
// expressions over the same checkpoint tensors, so a lowered Linear is excluded when it reads a checkpoint tensor
// of a traced parameter whose effective hint (closest enclosing module) says `quantize: false`.

import type { Graph } from "../ir/graph.ts";
import { placeParam } from "../lower/mapping.ts";
import type { LoweredModel } from "../lower/to-trtllm.ts";
import { effectiveHints } from "../passes/hints.ts";
import { exprSources, type WeightMap } from "../weights/weight-map.ts";
import { quantizableLinears } from "./linears.ts";
import { QuantError } from "../numerics/quant-error.ts";
import { DEFAULT_EXCLUDE_MODULES, WEIGHT_SCHEMES } from "./schemes.ts";
import type { QuantSpec } from "./spec.ts";

const scopeOfParam = (name: string) => name.slice(0, Math.max(0, name.lastIndexOf(".")));

/** Global paths of the lowered Linears that `quantize: false` hints exclude, in graph order. */
export function hintExclusions(traced: Graph, tracedMap: WeightMap, lowered: LoweredModel): string[] {
  const unquantized = new Set<string>();
  for (const p of traced.params)
    if (effectiveHints(traced, scopeOfParam(p.name)).quantize === false)
      for (const s of exprSources(tracedMap[p.name] ?? { source: p.name })) unquantized.add(s);
  const linears = quantizableLinears(lowered.graph);
  const hit = new Set(linears.filter((l) => exprSources(lowered.weights[l.param]!).some((s) => unquantized.has(s))).map((l) => l.scaleGroup));
  return linears.filter((l) => hit.has(l.scaleGroup)).map((l) => l.module);
}

/** A literal name as an fnmatch pattern (module paths rarely hold `*?[`, but a custom name might). */
export const fnmatchLiteral = (name: string): string => name.replace(/[*?[]/g, (c) => `[${c}]`);

/** config.json `quantization.exclude_modules` for a resolved spec (stage-local names). */
export function excludeModules(spec: QuantSpec, g: Graph, numLayers: number, pp: number): string[] {
  if (!spec.weight) return [];
  const quantized = new Set(spec.linears.map((l) => l.module));
  const all = quantizableLinears(g);
  const local = (name: string) => placeParam(name, numLayers, pp);
  const excludedLocal = new Set(all.filter((l) => !quantized.has(l.module)).map((l) => local(l.module).localName));
  // One config for every stage: a local path excluded on one stage must be excluded wherever it exists.
  for (const l of all) {
    const loc = local(l.module).localName;
    if (quantized.has(l.module) && excludedLocal.has(loc))
      throw new QuantError(
        `'${l.module}' is quantized but '${loc}' is excluded on another pipeline stage; TensorRT-LLM's exclude_modules name stage-local layers, so with --pp ${pp} exclude the same layers of every stage`,
      );
  }
  const weightOnly = WEIGHT_SCHEMES[spec.weight].loadTimeQuantizedNames;
  const quantizedWeights = new Set(spec.linears.map((l) => local(l.param).localName));
  const stray = g.params.map((p) => local(p.name).localName).filter((n) => !quantizedWeights.has(n) && weightOnly.some((s) => n.includes(s)));
  const own = [...excludedLocal].flatMap((m) => [m, ...(weightOnly.length ? [`${m}.weight`] : [])]);
  const moe = moeModules(g).map((m) => local(`${m}.weight`).localName.replace(/\.weight$/, ""));
  return [...new Set([...DEFAULT_EXCLUDE_MODULES, ...[...own, ...moe, ...stray].map(fnmatchLiteral)])];
}

/** Module paths (global) of every MoE block and its shared expert's Linears: kept in the model dtype. */
export function moeModules(g: Graph): string[] {
  return g.nodes
    .filter((n) => n.op === "trtllm.moe")
    .flatMap((n) => [n.scope, ...(n.attrs.shared ? [`${n.scope}.shared_expert.fc`, `${n.scope}.shared_expert.proj`] : [])]);
}
