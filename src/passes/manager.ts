// The pass manager: runs named passes in order, verifies the IR after each one, composes the parameter
// derivations (so the final weight map still names checkpoint tensors), and records per pass the op counts before
// and after, the number of rewrites and the near misses — the data behind `kiln passes --explain`.

import { opCounts, type Graph } from "../ir/graph.ts";
import { verify } from "../ir/verify.ts";
import type { WeightExpr } from "../weights/weight-map.ts";
import { checkHintConsistency } from "./hints.ts";
import { composeParams, keepParams, type NearMiss, type Pass, PassError } from "./pass.ts";

export interface PassLogEntry {
  readonly pass: string;
  readonly description: string;
  readonly before: Record<string, number>;
  readonly after: Record<string, number>;
  readonly rewrites: number;
  readonly nearMisses: readonly NearMiss[];
  readonly ms: number;
}

export interface PipelineResult {
  readonly graph: Graph;
  /** final parameter name -> expression over the input graph's parameter names. */
  readonly params: Record<string, WeightExpr>;
  readonly log: PassLogEntry[];
}

export function runPasses(g: Graph, passes: readonly Pass[]): PipelineResult {
  checkHintConsistency(g);
  let graph = verify(g);
  let params = keepParams(g);
  const log: PassLogEntry[] = [];
  for (const pass of passes) {
    const t0 = performance.now();
    const r = pass.run(graph);
    try {
      verify(r.graph);
    } catch (e) {
      throw new PassError(`pass '${pass.name}' produced an invalid graph: ${(e as Error).message}`);
    }
    log.push({ pass: pass.name, description: pass.description, before: opCounts(graph), after: opCounts(r.graph), rewrites: r.rewrites, nearMisses: r.nearMisses, ms: performance.now() - t0 });
    params = composeParams(r.params, params);
    graph = r.graph;
  }
  return { graph, params, log };
}
