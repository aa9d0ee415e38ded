// Fusing the q, k and v projections of every attention op into one QKV GEMM, as TensorRT-LLM's Attention layer
// computes them (one ColumnLinear `qkv` with [q; k; v] rows). For each attention node whose q, k and v come from
// linears on the same input (through an optional reshape and rope), the three linears become one linear with a new
// parameter `<scope>.qkv.weight` = concat0(q, k, v) (biases likewise) followed by a split; everything after the
// split is unchanged. Attentions whose projections differ in input or bias presence are left alone, with a reason.

import { type Graph, type Node, type ValueId, describeNode } from "../ir/graph.ts";
import { concat, src, type WeightExpr } from "../weights/weight-map.ts";
import { eliminateDeadCode, rebuild } from "./graph-edit.ts";
import { fusionEnabled } from "./hints.ts";
import { keepParams, type NearMiss, type Pass } from "./pass.ts";
import { indexGraph } from "./pattern.ts";

interface QkvGroup {
  readonly attention: Node;
  /** The q, k, v linear nodes. */
  readonly linears: readonly [Node, Node, Node];
}

/** Walks from an attention input back to the linear that produced it: linear -> reshape -> [rope]. */
function projectionOf(v: ValueId, def: ReadonlyMap<ValueId, Node>): Node | string {
  let n = def.get(v);
  if (n?.op === "rope") n = def.get(n.inputs[0]!);
  if (n?.op !== "reshape") return `expected reshape (optionally followed by rope) before attention, found ${n?.op ?? "an input"}`;
  const lin = def.get(n.inputs[0]!);
  return lin?.op === "linear" ? lin : `expected a linear projection, found ${lin?.op ?? "an input"}`;
}

function findGroups(g: Graph, misses: NearMiss[]): QkvGroup[] {
  const { def, params } = indexGraph(g);
  const users = new Map<ValueId, number>();
  for (const n of g.nodes) for (const i of n.inputs) users.set(i, (users.get(i) ?? 0) + 1);
  const groups: QkvGroup[] = [];
  for (const att of g.nodes.filter((n) => n.op === "attention")) {
    const miss = (reason: string) => void misses.push({ rule: "fuse-qkv", at: describeNode(att), reason, matched: 1 });
    if (!fusionEnabled(g, att.scope, "qkv")) {
      miss("disabled by hint fuse.qkv=false");
      continue;
    }
    const lins = att.inputs.map((v) => projectionOf(v, def));
    const bad = lins.find((l) => typeof l === "string");
    if (bad) {
      miss(bad as string);
      continue;
    }
    const [q, k, v] = lins as [Node, Node, Node];
    if (new Set([q, k, v]).size < 3) miss("q, k and v share one projection already");
    else if (q.inputs[0] !== k.inputs[0] || q.inputs[0] !== v.inputs[0]) miss("q, k and v project different inputs");
    else if (new Set([q, k, v].map((l) => l.inputs.length)).size > 1) miss("only some of q, k, v have a bias");
    else if ([q, k, v].some((l) => l.inputs.slice(1).some((p) => !params.has(p)))) miss("a projection weight is computed, not a parameter");
    else if ([q, k, v].some((l) => users.get(l.outputs[0]!) !== 1)) miss("a projection output has other users");
    else groups.push({ attention: att, linears: [q, k, v] });
  }
  return groups;
}

export const FUSE_QKV: Pass = {
  name: "fuse-qkv",
  description: "merge the q, k, v projections of each attention into one QKV GEMM (TensorRT-LLM Attention.qkv)",
  run(g) {
    const misses: NearMiss[] = [];
    const groups = findGroups(g, misses);
    const paramName = new Map(g.params.map((p) => [p.value, p.name]));
    const derived: Record<string, WeightExpr> = keepParams(g);
    const byLinear = new Map<Node, QkvGroup>(groups.flatMap((grp) => grp.linears.map((l): [Node, QkvGroup] => [l, grp])));
    const splits = new Map<QkvGroup, ValueId[]>();
    const graph = rebuild(g, (n, r) => {
      const grp = byLinear.get(n);
      if (!grp) return undefined;
      if (!splits.has(grp)) {
        const [q, k, v] = grp.linears;
        const scope = grp.attention.scope;
        const opts = { scope, ...(grp.attention.loc && { loc: grp.attention.loc }), meta: { trtllm: "Attention.qkv (fused QKV ColumnLinear)" } };
        const fusedParam = (slot: number, what: string) => {
          const name = scope ? `${scope}.qkv.${what}` : `qkv.${what}`;
          const parts = [q, k, v].map((l) => g.values.get(l.inputs[slot]!)!);
          const rows = parts.reduce((a, t) => a + (t.shape[0] as number), 0);
          derived[name] = concat(0, ...[q, k, v].map((l) => src(paramName.get(l.inputs[slot]!)!)));
          return r.builder.param(name, { dtype: parts[0]!.dtype, shape: [rows, ...parts[0]!.shape.slice(1)] });
        };
        const weights = q.inputs.slice(1).map((_, i) => fusedParam(i + 1, i === 0 ? "weight" : "bias"));
        const [fused] = r.builder.node("linear", [r.map(q.inputs[0]!), ...weights], {}, opts);
        const sizes = [q, k, v].map((l) => g.values.get(l.outputs[0]!)!.shape.at(-1) as number);
        splits.set(grp, r.builder.node("split", [fused!], { axis: -1, sizes }, { ...opts, meta: {} }));
      }
      return [splits.get(grp)![grp.linears.indexOf(n)]!];
    });
    const clean = eliminateDeadCode(graph).graph;
    return { graph: clean, params: Object.fromEntries(clean.params.map((p) => [p.name, derived[p.name]!])), rewrites: groups.length, nearMisses: misses };
  },
};
