// Rewrite rules (pattern / check / rewrite, as in onnxscript's rewriter) and the pass that applies a rule set: the one
// rule engine, used by the built-in passes and by custom-op fusions (which may replace several values at once).
// `check` returns a reason to reject a match (or nothing); `rewrite` builds the replacement with DSL ops, which are
// emitted into the new graph with the matched root's scope and source line. State is never stashed between check
// and rewrite: both receive the match. A rule pass repeats until nothing fires (bounded), then removes dead code.

import { Tensor } from "../dsl/tensor.ts";
import { Tracer, withTracer } from "../dsl/tracer.ts";
import { describeNode, type Graph, GraphBuilder, type Node, type ValueId } from "../ir/graph.ts";
import { eliminateDeadCode } from "./graph-edit.ts";
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
  /**
   * Values computed inside the match, besides the root's output, that the rewrite also replaces (custom ops with
   * several outputs, e.g. a fused residual-add + RMSNorm). The rewrite then returns one tensor per replaced value:
   * the root's output first, then these in order.
   */
  readonly alsoReplaces?: (m: Match<V>) => ValueId[];
  readonly rewrite: (a: RewriteArgs<V>) => Tensor | readonly Tensor[];
  /** The fusion hint that can switch this rule off for a module. */
  readonly hint?: FuseHint;
  /** Which TensorRT-LLM layer or plugin the rewrite enables; stored in node meta `trtllm`. */
  readonly enables?: string;
}

export const rule = <V extends string>(r: Rule<V>): Rule<V> => r;

const MAX_ROUNDS = 8;
/** A failed match counts as a near miss (worth explaining) once this many pattern nodes matched. */
const NEAR_MISS_MIN_NODES = 3;

/**
 * Why extra replaced values cannot move to the root's position, or undefined when they can: the replacement is
 * emitted at the root, so an extra value read by a node before the root (outside the match) would be half-fused.
 */
function extraProblem(g: Graph, m: Match, extras: readonly ValueId[], rootIndex: number): string | undefined {
  const covered = new Set(m.nodes.flatMap((n) => n.outputs));
  for (const v of extras) {
    if (!covered.has(v)) return `%${v} is not computed inside the match`;
    const early = g.nodes.slice(0, rootIndex).find((n) => !m.nodes.includes(n) && n.inputs.includes(v));
    if (early) return `%${v} is also read before the fused op's position (by ${describeNode(early)})`;
  }
  return undefined;
}

function applyOnce(g: Graph, rules: readonly Rule[], nearMisses: NearMiss[], derived: Record<string, WeightExpr>): { graph: Graph; rewrites: number } {
  const ix = indexGraph(g);
  const b = GraphBuilder.from(g);
  const paramNames = new Map(g.params.map((p) => [p.value, p.name]));
  const subst = new Map<ValueId, ValueId>();
  const map = (v: ValueId) => subst.get(v) ?? v;
  let rewrites = 0;
  const byRoot = new Map<string, Rule[]>();
  for (const r of rules) byRoot.set(patternRootOp(r.pattern), [...(byRoot.get(patternRootOp(r.pattern)) ?? []), r]);
  const tryRules = (n: Node, index: number): boolean => {
    for (const r of byRoot.get(n.op) ?? []) {
      const m = matchAt(r.pattern, ix, n);
      if (!isMatch(m)) {
        if (m.matched >= NEAR_MISS_MIN_NODES)
          nearMisses.push({
            rule: r.name,
            at: describeNode(n),
            reason: `matched ${m.matched} of ${patternSize(r.pattern)} pattern nodes, then: ${m.reason}`,
            matched: m.matched,
          });
        continue;
      }
      if (r.hint && !fusionEnabled(g, n.scope, r.hint)) {
        nearMisses.push({ rule: r.name, at: describeNode(n), reason: `disabled by hint fuse.${r.hint}=false`, matched: m.nodes.length });
        continue;
      }
      const extras = r.alsoReplaces?.(m) ?? [];
      const why = r.check?.(m, g) ?? (extras.length ? extraProblem(g, m, extras, index) : undefined);
      if (why) {
        nearMisses.push({ rule: r.name, at: describeNode(n), reason: `check rejected: ${why}`, matched: m.nodes.length });
        continue;
      }
      const tracer = new Tracer(b, { scope: n.scope, ...(n.loc && { loc: n.loc }), ...(r.enables && { meta: { trtllm: r.enables } }) });
      const result = withTracer(tracer, () =>
        r.rewrite({
          t: Object.fromEntries(Object.entries(m.values).map(([k, v]) => [k, new Tensor(map(v as ValueId))])),
          constants: m.constants,
          match: m,
          graph: g,
          paramName: (v) => paramNames.get(m.values[v]!) ?? "?",
          newParam: (name, type, derive) => {
            if (b.paramNamed(name) !== undefined) throw new PassError(`rule ${r.name}: parameter '${name}' already exists (at ${describeNode(n)})`);
            derived[name] = substitute(derive, derived);
            return new Tensor(b.param(name, type));
          },
        }),
      );
      const outs: readonly Tensor[] = Array.isArray(result) ? result : [result as Tensor];
      const replaced = [...n.outputs, ...extras];
      if (outs.length !== replaced.length)
        throw new PassError(`rule ${r.name} at ${describeNode(n)}: rewrite returned ${outs.length} tensors for ${replaced.length} replaced values`);
      replaced.forEach((v, k) => subst.set(v, outs[k]!.id));
      rewrites++;
      return true;
    }
    return false;
  };
  g.nodes.forEach((n, index) => {
    if (tryRules(n, index)) return;
    const inputs = n.inputs.map(map);
    b.adoptNode(inputs.every((v, k) => v === n.inputs[k]) ? n : { ...n, inputs }, g);
  });
  for (const o of g.outputs) b.output(o.name, map(o.value));
  // Nodes that computed extra replaced values were adopted before the root was reached; nothing reads them now.
  return { graph: eliminateDeadCode(b.build()).graph, rewrites };
}

/** A pass that applies a rule set until it stops changing the graph (bounded), then removes dead code. */
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
