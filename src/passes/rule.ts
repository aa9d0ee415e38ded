// Rewrite rules (pattern / check / rewrite, as in onnxscript's rewriter) and the pass that applies a rule set.
// `check` returns a reason to reject a match (or nothing); `rewrite` builds the replacement with DSL ops, which are
// emitted into the new graph with the matched root's scope and source line. State is never stashed between check
// and rewrite: both receive the match. A rule pass repeats until nothing fires (bounded), then removes dead code.

import { Tensor } from "../dsl/tensor.ts";
import { Tracer, withTracer } from "../dsl/tracer.ts";
import { describeNode, type Graph } from "../ir/graph.ts";
import { eliminateDeadCode, rebuild } from "./graph-edit.ts";
import { type FuseHint, fusionEnabled } from "./hints.ts";
import type { ValueType } from "../ir/ops.ts";
import type { WeightExpr } from "../weights/weight-map.ts";
import { keepParams, type NearMiss, type Pass, PassError, type PassResult, substitute } from "./pass.ts";
import { indexGraph, isMatch, type Match, matchAt, type Pattern, patternRootOp, patternSize } from "./pattern.ts";

export interface RewriteArgs<V extends string> {
  /** Matched values as tensors of the graph being built. */
  readonly t: Readonly<Record<V, Tensor>>;
  readonly constants: Readonly<Partial<Record<V, number>>>;
  readonly match: Match<V>;
  readonly graph: Graph;
  /** Name of a matched parameter variable. */
  paramName(v: V): string;
  /** Declares a new parameter computed from existing ones (e.g. concatenated weights of a fusion). */
  newParam(name: string, type: ValueType, derive: WeightExpr): Tensor;
}

export interface Rule<V extends string = string> {
  readonly name: string;
  readonly pattern: Pattern<V>;
  readonly check?: (m: Match<V>, g: Graph) => string | undefined;
  readonly rewrite: (a: RewriteArgs<V>) => Tensor;
  /** The fusion hint that can switch this rule off for a module. */
  readonly hint?: FuseHint;
  /** Which TensorRT-LLM layer or plugin the rewrite enables; stored in node meta `trtllm`. */
  readonly enables?: string;
}

export const rule = <V extends string>(r: Rule<V>): Rule<V> => r;

const MAX_ROUNDS = 8;
/** A failed match counts as a near miss (worth explaining) once this many pattern nodes matched. */
const NEAR_MISS_MIN_NODES = 3;

function applyOnce(g: Graph, rules: readonly Rule[], nearMisses: NearMiss[], derived: Record<string, WeightExpr>): { graph: Graph; rewrites: number } {
  const ix = indexGraph(g);
  const paramNames = new Map(g.params.map((p) => [p.value, p.name]));
  let rewrites = 0;
  const byRoot = new Map<string, Rule[]>();
  for (const r of rules) byRoot.set(patternRootOp(r.pattern), [...(byRoot.get(patternRootOp(r.pattern)) ?? []), r]);
  const graph = rebuild(g, (n, rb) => {
    for (const r of byRoot.get(n.op) ?? []) {
      const m = matchAt(r.pattern, ix, n);
      if (!isMatch(m)) {
        if (m.matched >= NEAR_MISS_MIN_NODES) nearMisses.push({ rule: r.name, at: describeNode(n), reason: `matched ${m.matched} of ${patternSize(r.pattern)} pattern nodes, then: ${m.reason}`, matched: m.matched });
        continue;
      }
      if (r.hint && !fusionEnabled(g, n.scope, r.hint)) {
        nearMisses.push({ rule: r.name, at: describeNode(n), reason: `disabled by hint fuse.${r.hint}=false`, matched: m.nodes.length });
        continue;
      }
      const why = r.check?.(m, g);
      if (why) {
        nearMisses.push({ rule: r.name, at: describeNode(n), reason: `check rejected: ${why}`, matched: m.nodes.length });
        continue;
      }
      const tracer = new Tracer(rb.builder, { scope: n.scope, ...(n.loc && { loc: n.loc }), ...(r.enables && { meta: { trtllm: r.enables } }) });
      const out = withTracer(tracer, () => {
        const t = Object.fromEntries(Object.entries(m.values).map(([k, v]) => [k, new Tensor(rb.map(v as number))]));
        return r.rewrite({
          t,
          constants: m.constants,
          match: m,
          graph: g,
          paramName: (v) => paramNames.get(m.values[v]!) ?? "?",
          newParam: (name, type, derive) => {
            if (rb.builder.paramNamed(name) !== undefined) throw new PassError(`rule ${r.name}: parameter '${name}' already exists (at ${describeNode(n)})`);
            derived[name] = substitute(derive, derived);
            return new Tensor(rb.builder.param(name, type));
          },
        });
      });
      rewrites++;
      return [out.id];
    }
    return undefined;
  });
  return { graph: eliminateDeadCode(graph).graph, rewrites };
}

/** A pass that applies a rule set until it stops changing the graph. */
export function rulePass(name: string, description: string, rules: readonly Rule<any>[]): Pass {
  return {
    name,
    description,
    run(g: Graph): PassResult {
      let graph = g;
      let rewrites = 0;
      let misses: NearMiss[] = [];
      const derived: Record<string, WeightExpr> = keepParams(g);
      for (let round = 0; round < MAX_ROUNDS; round++) {
        misses = [];
        const r = applyOnce(graph, rules, misses, derived);
        graph = r.graph;
        rewrites += r.rewrites;
        if (!r.rewrites) break;
      }
      return { graph, params: Object.fromEntries(graph.params.map((p) => [p.name, derived[p.name]!])), rewrites, nearMisses: misses };
    },
  };
}
