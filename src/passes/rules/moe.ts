// Recognizing a mixture of experts written by hand and turning it into the `moe` op. The recognized form (the one
// docs/moe.md shows) is, per token x [..., H]:
//   probs = softmax(linear(x, Wr), -1)          or sigmoid(...); casts around the logits are allowed
//   [w, idx] = topk(probs, k)                    optionally w = w / sum(w, -1, keepDims)
//   dense = sum(one_hot(idx, E) * reshape(w, [..., k, 1]), -2)          the [..., E] routing weight of each expert
//   out = sum over e of down_e(act(gate_e x) * up_e x) * dense[..., e:e+1]   every expert 0..E-1 exactly once
// and, in a second rule, `moe(...) + shared(x)` or `moe(...) + shared(x) * sigmoid(linear(x, Wsg))` with shared a
// gated MLP of the same activation. The routed rule's pattern is the last term of the sum (binding x); its check
// walks the rest imperatively because the number of experts varies. The expert weights become stacked parameters
// ([E, I, H] / [E, H, I]) derived by concat + reshape in the weight map; the router and the shared expert keep theirs.
// Invariants: a form that differs in any step (no renormalization where the graph has one, a missing or repeated
// expert, experts reading different inputs, mixed activations) is left alone and the reason is reported.

import { linear, type MoeSpec, moe } from "../../dsl/functional.ts";
import { Tensor } from "../../dsl/tensor.ts";
import { describeNode, type Graph, type Node, type ValueId } from "../../ir/graph.ts";
import { normAxis } from "../../ir/shape.ts";
import { concat, reshape, src } from "../../weights/weight-map.ts";
import { ANY, indexGraph, isMatch, type Match, matchAt, pattern } from "../pattern.ts";
import { type Rule, rule } from "../rule.ts";

type Act = MoeSpec["activation"];
const ACTS: [Act, (x: Tensor) => Tensor][] = [
  ["silu", (x) => x.silu()],
  ["gelu", (x) => x.gelu("none")],
  ["gelu_tanh", (x) => x.gelu("tanh")],
  ["relu", (x) => x.relu()],
];

type ExpertVars = "x" | "wg" | "wu" | "wd";
const gatedMlp = (apply: (x: Tensor) => Tensor) => (t: Record<ExpertVars, Tensor>) => linear(apply(linear(t.x, t.wg)).mul(linear(t.x, t.wu)), t.wd);
const EXPERT_VARS = { x: "value", wg: "param", wu: "param", wd: "param" } as const;
const EXPERT_PATTERNS = ACTS.map(([act, apply]) => ({ act, pat: pattern(`gated expert (${act})`, EXPERT_VARS, gatedMlp(apply)) }));

/** The dense routing weights: sum(one_hot(idx) * reshape(w, [..., k, 1]), -2). */
const DENSE_PATTERN = pattern("moe routing weights", { idx: "value", w: "value" }, ({ idx, w }) => idx.oneHot(ANY, ANY).mul(w.reshape(ANY)).sum(-2, false));

interface Expert {
  readonly act: Act;
  readonly gate: ValueId;
  readonly up: ValueId;
  readonly down: ValueId;
}

export interface RoutedMoe {
  readonly x: ValueId;
  readonly router: ValueId;
  readonly experts: readonly Expert[];
  readonly spec: MoeSpec;
}

interface Walk {
  readonly g: Graph;
  readonly def: ReadonlyMap<ValueId, Node>;
  readonly ix: ReturnType<typeof indexGraph>;
}

const defOf = (w: Walk, v: ValueId) => w.def.get(v);
/** The value under any chain of casts. */
function peelCasts(w: Walk, v: ValueId): ValueId {
  let n = defOf(w, v);
  while (n?.op === "cast") {
    v = n.inputs[0]!;
    n = defOf(w, v);
  }
  return v;
}
const rankOf = (w: Walk, v: ValueId) => w.g.values.get(v)!.shape.length;
const isLastAxis = (w: Walk, v: ValueId, axis: number) => normAxis(axis, rankOf(w, v)) === rankOf(w, v) - 1;

/** One routed term: mlp_e(x) * dense[..., e:e+1] (either operand order, casts allowed on the weight). */
function routedTerm(w: Walk, v: ValueId): { e: number; dense: ValueId; x: ValueId; expert: Expert } | string {
  const n = defOf(w, v);
  if (n?.op !== "mul") return `a term of the sum is ${n ? n.op : "an input"}, not expert(x) * weight`;
  for (const [a, b] of [n.inputs, [...n.inputs].reverse()] as [ValueId, ValueId][]) {
    const s = defOf(w, peelCasts(w, b));
    if (s?.op !== "slice" || !isLastAxis(w, s.inputs[0]!, s.attrs.axis as number)) continue;
    const e = s.attrs.start as number;
    if ((s.attrs.end as number) !== e + 1) return `the routing weight of a term is a slice of ${(s.attrs.end as number) - e} experts, not one`;
    const mlp = defOf(w, a);
    if (!mlp) return "an expert's output is a graph input";
    for (const { act, pat } of EXPERT_PATTERNS) {
      const m = matchAt(pat, w.ix, mlp);
      if (isMatch(m)) return { e, dense: peelCasts(w, s.inputs[0]!), x: m.values.x, expert: { act, gate: m.values.wg, up: m.values.wu, down: m.values.wd } };
    }
    return `expert ${e}'s output (${describeNode(mlp)}) is not a bias-free gated MLP down(act(gate x) * up x)`;
  }
  return "a term of the sum has no routing weight dense[..., e:e+1]";
}

/** The terms of a sum tree of adds. */
function sumTerms(w: Walk, v: ValueId, out: ValueId[]): void {
  const n = defOf(w, v);
  if (n?.op === "add") for (const i of n.inputs) sumTerms(w, i, out);
  else out.push(v);
}

/** Router: topk(softmax|sigmoid(linear(x, Wr)), k) with optional casts around the logits. */
function routing(
  w: Walk,
  idx: ValueId,
  weights: ValueId,
  x: ValueId,
): { router: ValueId; k: number; scoring: MoeSpec["scoring"]; normalize: boolean } | string {
  const top = defOf(w, idx);
  if (top?.op !== "topk" || top.outputs[1] !== idx) return "the one-hot expert ids are not the indices of a topk";
  if (!isLastAxis(w, top.inputs[0]!, top.attrs.axis as number)) return "topk is not over the last (expert) axis";
  let normalize = false;
  if (weights !== top.outputs[0]) {
    const d = defOf(w, weights);
    const sum = d?.op === "div" ? defOf(w, d.inputs[1]!) : undefined;
    const renorm =
      d?.inputs[0] === top.outputs[0] &&
      sum?.op === "reduce_sum" &&
      sum.inputs[0] === top.outputs[0] &&
      sum.attrs.keepDims === true &&
      (sum.attrs.axes as number[]).length === 1 &&
      isLastAxis(w, top.outputs[0]!, (sum.attrs.axes as number[])[0]!);
    if (!renorm) return "the routing weights are neither the top-k scores nor the top-k scores divided by their sum";
    normalize = true;
  }
  const scores = defOf(w, top.inputs[0]!);
  const scoring = scores?.op === "softmax" ? "softmax" : scores?.op === "sigmoid" ? "sigmoid" : undefined;
  if (!scores || !scoring) return `topk reads ${scores ? scores.op : "an input"}, not softmax or sigmoid router scores`;
  if (scoring === "softmax" && !isLastAxis(w, scores.inputs[0]!, scores.attrs.axis as number)) return "the router softmax is not over the expert axis";
  const logits = defOf(w, peelCasts(w, scores.inputs[0]!));
  if (logits?.op !== "linear" || logits.inputs.length !== 2 || !w.ix.params.has(logits.inputs[1]!))
    return "the router scores do not come from a bias-free linear layer with a weight parameter";
  if (peelCasts(w, logits.inputs[0]!) !== x) return "the router reads a different input than the experts";
  return { router: logits.inputs[1]!, k: top.attrs.k as number, scoring, normalize };
}

/** The whole routed mixture under a sum, or why the sum is not one. Pure: check and rewrite both call it. */
export function analyzeRoutedSum(g: Graph, root: Node): RoutedMoe | string {
  const ix = indexGraph(g);
  const w: Walk = { g, def: ix.def, ix };
  const terms: ValueId[] = [];
  sumTerms(w, root.outputs[0]!, terms);
  const parsed = [];
  for (const t of terms) {
    const r = routedTerm(w, t);
    if (typeof r === "string") return r;
    parsed.push(r);
  }
  const [first] = parsed;
  if (!first) return "empty sum";
  if (parsed.some((p) => p.dense !== first.dense)) return "the terms read different routing weights";
  if (parsed.some((p) => p.x !== first.x)) return "the experts read different inputs";
  if (parsed.some((p) => p.expert.act !== first.expert.act)) return "the experts use different activations";
  const denseNode = defOf(w, first.dense);
  const dm = denseNode && matchAt(DENSE_PATTERN, ix, denseNode);
  if (!dm || !isMatch(dm)) return "the routing weights are not sum(one_hot(ids) * reshape(weights, [..., k, 1]), -2)";
  const oneHot = dm.nodes.find((n) => n.op === "one_hot")!;
  const unsqueeze = dm.nodes.find((n) => n.op === "reshape")!;
  const [before, after] = [g.values.get(unsqueeze.inputs[0]!)!.shape, g.values.get(unsqueeze.outputs[0]!)!.shape];
  if (after.length !== before.length + 1 || after[after.length - 1] !== 1 || before.some((d, i) => d !== after[i]))
    return "the top-k weights are not reshaped to [..., k, 1] before multiplying the one-hot ids";
  const numExperts = oneHot.attrs.numClasses as number;
  const seen = new Set(parsed.map((p) => p.e));
  if (parsed.length !== numExperts || seen.size !== numExperts || [...seen].some((e) => e < 0 || e >= numExperts))
    return `the sum has experts [${parsed.map((p) => p.e).join(", ")}], a mixture needs each of 0..${numExperts - 1} once (a partial sum is matched further on)`;
  const r = routing(w, dm.values.idx, peelCasts(w, dm.values.w), first.x);
  if (typeof r === "string") return r;
  const routerRows = g.values.get(r.router)!.shape[0];
  if (routerRows !== numExperts) return `the router has ${routerRows} outputs for ${numExperts} experts`;
  const experts = [...parsed].sort((a, b) => a.e - b.e).map((p) => p.expert);
  return {
    x: first.x,
    router: r.router,
    experts,
    spec: { numExperts, topK: r.k, scoring: r.scoring, normalizeTopK: r.normalize, activation: first.expert.act },
  };
}

const scoped = (scope: string, what: string) => (scope ? `${scope}.${what}` : what);
const paramName = (g: Graph, v: ValueId) => g.params.find((p) => p.value === v)!.name;

/** Routed experts: the last term of the sum, mlp(x) * weight, with the rest checked by analyzeRoutedSum. */
const ROUTED_RULES: Rule[] = ACTS.map(([act, apply]) =>
  rule({
    name: `recognize-moe(${act})`,
    pattern: pattern(`moe sum (${act})`, { rest: "value", weight: "value", ...EXPERT_VARS }, (t) => t.rest.add(gatedMlp(apply)(t).mul(t.weight))),
    check: (m, g) => {
      const r = analyzeRoutedSum(g, m.root);
      return typeof r === "string" ? r : undefined;
    },
    rewrite: ({ t, match, graph, newParam }) => {
      const r = analyzeRoutedSum(graph, match.root) as RoutedMoe;
      const stacked = (what: "gate" | "up" | "down") => {
        const each = r.experts.map((e) => e[what]);
        const [rows, cols] = graph.values.get(each[0]!)!.shape as [number, number];
        const dtype = graph.values.get(each[0]!)!.dtype;
        const shape = [r.experts.length, rows, cols];
        return newParam(scoped(match.root.scope, `experts.${what}`), { dtype, shape }, reshape(concat(0, ...each.map((v) => src(paramName(graph, v)))), shape));
      };
      return moe(t.x, { router: new Tensor(r.router), gate: stacked("gate"), up: stacked("up"), down: stacked("down") }, r.spec);
    },
    enables: "MOE (tensorrt_llm.layers.MOE)",
  }),
);

type SharedVars = "x" | "router" | "eg" | "eu" | "ed" | ExpertVars;
const routedMoe = (t: Record<SharedVars, Tensor>) =>
  moe(t.x, { router: t.router, gate: t.eg, up: t.eu, down: t.ed }, { numExperts: ANY, topK: ANY, scoring: ANY, normalizeTopK: ANY, activation: ANY });
const SHARED_VARS = { x: "value", router: "param", eg: "value", eu: "value", ed: "value", wg: "param", wu: "param", wd: "param" } as const;

const sameActivation = (act: Act) => (m: Match) => {
  const routed = m.nodes.find((n) => n.op === "moe")!.attrs.activation;
  return routed === act ? undefined : `the shared expert's activation ${act} differs from the routed experts' ${routed}`;
};
const routedSpec = (m: Match) => m.nodes.find((n) => n.op === "moe")!.attrs as unknown as MoeSpec;

/** A shared expert added to a routed `moe` of the same input and activation; optionally scaled by sigmoid(x . w). */
const SHARED_RULES: Rule[] = ACTS.flatMap(([act, apply]) => [
  rule({
    name: `recognize-moe-gated-shared-expert(${act})`,
    pattern: pattern(`moe + gated shared expert (${act})`, { ...SHARED_VARS, sg: "param" }, (t) =>
      routedMoe(t).add(gatedMlp(apply)(t).mul(linear(t.x, t.sg).sigmoid())),
    ),
    check: sameActivation(act),
    rewrite: ({ t, match }) =>
      moe(t.x, { router: t.router, gate: t.eg, up: t.eu, down: t.ed, shared: { gate: t.wg, up: t.wu, down: t.wd, expertGate: t.sg } }, routedSpec(match)),
    enables: "MOE with a gated shared expert",
  }),
  rule({
    name: `recognize-moe-shared-expert(${act})`,
    pattern: pattern(`moe + shared expert (${act})`, SHARED_VARS, (t) => routedMoe(t).add(gatedMlp(apply)(t))),
    check: sameActivation(act),
    rewrite: ({ t, match }) =>
      moe(t.x, { router: t.router, gate: t.eg, up: t.eu, down: t.ed, shared: { gate: t.wg, up: t.wu, down: t.wd } }, routedSpec(match)),
    enables: "MOE with a shared expert",
  }),
]);

export const MOE_RULES: readonly Rule[] = [...ROUTED_RULES, ...SHARED_RULES];
