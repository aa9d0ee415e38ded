// Fusions that replace several values of a matched subgraph at once, for custom ops with more than one output
// (e.g. a fused residual-add + RMSNorm that returns both the normalized value and the new residual). A fusion rule
// is a pattern in the model's vocabulary rooted at the last node it covers, a `check` that returns a reason to
// reject, the values besides the root's output that the replacement also provides (`alsoReplaces`), and a `rewrite`
// that returns one tensor per replaced value: the root's output first, then those values in order.
// Invariants: the replacement is emitted at the root's position, so it reads only values defined before the root;
// a match whose extra values are read before the root is skipped (a near miss), so no half-fused graph is produced;
// parameters are untouched (identity derivation); dead code is removed afterwards.

import { Tensor } from "../dsl/tensor.ts";
import { Tracer, withTracer } from "../dsl/tracer.ts";
import { describeNode, GraphBuilder, type Graph, type Node, type ValueId } from "../ir/graph.ts";
import { eliminateDeadCode } from "../passes/graph-edit.ts";
import { keepParams, type NearMiss, type Pass, PassError, type PassResult } from "../passes/pass.ts";
import { indexGraph, isMatch, type Match, matchAt, type Pattern, patternRootOp } from "../passes/pattern.ts";

export interface FusionArgs<V extends string> {
  /** Matched values as tensors of the graph being built. */
  readonly t: Readonly<Record<V, Tensor>>;
  readonly match: Match<V>;
  readonly graph: Graph;
}

export interface FusionRule<V extends string = string> {
  readonly name: string;
  readonly pattern: Pattern<V>;
  readonly check?: (m: Match<V>, g: Graph) => string | undefined;
  /** Values computed inside the match (besides the root's output) that the replacement also produces. */
  readonly alsoReplaces?: (m: Match<V>) => ValueId[];
  readonly rewrite: (a: FusionArgs<V>) => Tensor[];
  /** Which TensorRT-LLM layer or plugin the rewrite enables; stored in node meta `trtllm`. */
  readonly enables?: string;
}

export const fusionRule = <V extends string>(r: FusionRule<V>): FusionRule<V> => r;

/** Why the extra values cannot move to the root's position, or undefined when they can. */
function extraProblem(g: Graph, m: Match, extras: readonly ValueId[], rootIndex: number): string | undefined {
  const covered = new Set(m.nodes.flatMap((n) => n.outputs));
  for (const v of extras) {
    if (!covered.has(v)) return `%${v} is not computed inside the match`;
    const early = g.nodes.slice(0, rootIndex).find((n) => !m.nodes.includes(n) && n.inputs.includes(v));
    if (early) return `%${v} is also read before the fused op's position (by ${describeNode(early)})`;
  }
  return undefined;
}

function fuseOnce(g: Graph, rules: readonly FusionRule<any>[], misses: NearMiss[]): { graph: Graph; rewrites: number } {
  const ix = indexGraph(g);
  const b = GraphBuilder.from(g);
  const subst = new Map<ValueId, ValueId>();
  const map = (v: ValueId) => subst.get(v) ?? v;
  let rewrites = 0;
  const tryFuse = (n: Node, index: number): boolean => {
    for (const r of rules) {
      if (patternRootOp(r.pattern) !== n.op) continue;
      const m = matchAt(r.pattern, ix, n);
      const at = describeNode(n);
      if (!isMatch(m)) continue;
      const extras = r.alsoReplaces?.(m) ?? [];
      const why = r.check?.(m, g) ?? extraProblem(g, m, extras, index);
      if (why) {
        misses.push({ rule: r.name, at, reason: `check rejected: ${why}`, matched: m.nodes.length });
        continue;
      }
      const tracer = new Tracer(b, { scope: n.scope, ...(n.loc && { loc: n.loc }), ...(r.enables && { meta: { trtllm: r.enables } }) });
      const outs = withTracer(tracer, () => r.rewrite({ t: Object.fromEntries(Object.entries(m.values).map(([k, v]) => [k, new Tensor(map(v as ValueId))])) as never, match: m, graph: g }));
      const replaced = [n.outputs[0]!, ...extras];
      if (outs.length !== replaced.length) throw new PassError(`fusion ${r.name} at ${at}: rewrite returned ${outs.length} tensors for ${replaced.length} replaced values`);
      replaced.forEach((v, k) => subst.set(v, outs[k]!.id));
      rewrites++;
      return true;
    }
    return false;
  };
  g.nodes.forEach((n, index) => {
    if (n.outputs.length === 1 && tryFuse(n, index)) return;
    const inputs = n.inputs.map(map);
    b.adoptNode(inputs.every((v, k) => v === n.inputs[k]) ? n : { ...n, inputs }, g);
  });
  for (const o of g.outputs) b.output(o.name, map(o.value));
  // The nodes that computed the replaced values were adopted before the root was reached; nothing reads them now.
  return { graph: eliminateDeadCode(b.build()).graph, rewrites };
}

/** A pass applying fusion rules until none fires (bounded). */
export function fusionPass(name: string, description: string, rules: readonly FusionRule<any>[]): Pass {
  return {
    name,
    description,
    run(g: Graph): PassResult {
      let graph = g;
      let rewrites = 0;
      let misses: NearMiss[] = [];
      for (let round = 0; round < 8; round++) {
        misses = [];
        const r = fuseOnce(graph, rules, misses);
        graph = r.graph;
        rewrites += r.rewrites;
        if (!r.rewrites) break;
      }
      return { graph, params: keepParams(graph), rewrites, nearMisses: misses };
    },
  };
}
