// Running the pass pipeline on an instantiated model and carrying its weight map through: the fused graph's
// parameters are expressed over the Hugging Face tensor names again, so the same binding and conversion code
// serves traced and fused graphs alike.

import type { Graph } from "../ir/graph.ts";
import { type PipelineResult, runPasses } from "../passes/manager.ts";
import { composeWeightMap, type Pass } from "../passes/pass.ts";
import { DEFAULT_PASSES } from "../passes/default-passes.ts";
import type { WeightMapSpec } from "../weights/weight-map.ts";
import type { Instance } from "./instantiate.ts";

export interface Optimized {
  readonly graph: Graph;
  readonly weights: WeightMapSpec;
  readonly log: PipelineResult["log"];
}

/** Runs the default pipeline, then the model's own passes (custom-op fusions a model file declares). */
export function optimize(inst: Pick<Instance, "graph" | "weights"> & { def?: Pick<Instance["def"], "passes"> }, passes?: readonly Pass[]): Optimized {
  const r = runPasses(inst.graph, passes ?? [...DEFAULT_PASSES, ...(inst.def?.passes ?? [])]);
  return { graph: r.graph, weights: { ...inst.weights, map: composeWeightMap(r.params, inst.weights.map) }, log: r.log };
}
