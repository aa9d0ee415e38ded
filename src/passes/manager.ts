// The pass manager: runs named passes in order, verifies the IR after each one (in effect: see runPasses),
// composes the parameter derivations (so the final weight map still names checkpoint tensors), and records per
// pass the op counts before and after, the number of rewrites and the near misses — the data behind
// `kiln passes --explain`. Op counts are computed when the log is first read, not while compiling.

import { opCounts, type Graph } from "../ir/graph.ts";
import { verify } from "../ir/verify.ts";
import type { WeightExpr } from "../weights/weight-map.ts";
import { checkHintConsistency } from "./hints.ts";
import { composeParams, keepParams, type NearMiss, type Pass, PassError, type PassResult } from "./pass.ts";

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

/** Once-computed op counts of a graph. */
function counter(g: Graph): () => Record<string, number> {
  let counts: Record<string, number> | undefined;
  return () => (counts ??= opCounts(g));
}

/**
 * A log entry whose op counts are computed on first read (then kept): sorting op names loads ICU's collator, a
 * cost a compile that never reads the log should not pay. Graphs are immutable, so the counts are the same.
 */
function logEntry(pass: Pass, before: Graph, r: PassResult, ms: number): PassLogEntry {
  const countBefore = counter(before);
  const countAfter = counter(r.graph);
  return {
    pass: pass.name,
    description: pass.description,
    get before() {
      return countBefore();
    },
    get after() {
      return countAfter();
    },
    rewrites: r.rewrites,
    nearMisses: r.nearMisses,
    ms,
  };
}

/**
 * Runs `passes` over `g`. The result is verified; when it is not valid, or a pass throws, the pipeline runs again
 * verifying after every pass, so the error names the pass that broke the graph (passes are deterministic, so the
 * second run fails the same way, only earlier). A valid pipeline so skips one verification per pass (about a
 * fifth of a compile's prelude for LLaMA).
 */
export function runPasses(g: Graph, passes: readonly Pass[], opts: { verifyEach?: boolean } = {}): PipelineResult {
  checkHintConsistency(g);
  const input = verify(g);
  if (opts.verifyEach) return run(input, passes, true);
  try {
    const r = run(input, passes, false);
    verify(r.graph);
    return r;
  } catch {
    return run(input, passes, true);
  }
}

function run(g: Graph, passes: readonly Pass[], verifyEach: boolean): PipelineResult {
  let graph = g;
  let params = keepParams(g);
  const log: PassLogEntry[] = [];
  for (const pass of passes) {
    const t0 = performance.now();
    const r = pass.run(graph);
    if (verifyEach) {
      try {
        verify(r.graph);
      } catch (e) {
        throw new PassError(`pass '${pass.name}' produced an invalid graph: ${(e as Error).message}`);
      }
    }
    log.push(logEntry(pass, graph, r, performance.now() - t0));
    params = composeParams(r.params, params);
    graph = r.graph;
  }
  return { graph, params, log };
}
