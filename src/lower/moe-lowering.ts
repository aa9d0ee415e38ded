// Mixture of experts for the TensorRT-LLM engine: each core `moe` node of a lowered graph that TensorRT-LLM 1.2.1's
// MixtureOfExperts / SharedMoE can run becomes one `trtllm.moe` at `transformer.layers.{l}.mlp`, with the parameters
// under the names and layout its converters write (docs/moe.md "TensorRT-LLM layout"):
//   mlp.router.weight [E, H] (kept float32), mlp.fc.weight = concat([up, gate], dim 1) [E, 2I, H],
//   mlp.proj.weight [E, H, I], and for a gated shared expert mlp.shared_expert.fc.weight = [up ; gate] [2S, H],
//   mlp.shared_expert.proj.weight [H, S], mlp.shared_expert_gate.weight [1, H].
// TensorRT-LLM's MOE routes by softmax (NONE or RENORMALIZE) with a gated SiLU ("swiglu"); QWen's SharedMoE gates its
// shared expert with a sigmoid. Other forms (sigmoid scoring, other activations, an ungated shared expert) stay core
// `moe` ops, and the engine target says why it cannot emit them (codegen/trtllm-engine/model-py-ops.ts).
// Only the engine target applies this: the other targets run the core op (codegen/pytorch glue).
// Invariants: the parameters the old node read and nothing else reads are dropped with their weight expressions; the
// new expressions are over the same checkpoint tensors.

import { GraphBuilder, type Node, type ValueId } from "../ir/graph.ts";
import { moeParts } from "../ir/ops-routing.ts";
import { simplifyExpr } from "../weights/simplify.ts";
import { concat, type WeightExpr } from "../weights/weight-map.ts";
import type { LoweredModel } from "./to-trtllm.ts";
import "./trtllm-ops.ts";

type ShapeOf = (name: string) => readonly number[] | undefined;

const LAYER = /^transformer\.layers\.(\d+)(?:\.|$)/;

/** Why TensorRT-LLM's MoE cannot run this `moe` node, or undefined when it can. */
export function trtllmMoeProblem(n: Node): string | undefined {
  const { shared, sharedGated } = moeParts(n.inputs.length);
  if (n.attrs.scoring !== "softmax") return `router scoring '${n.attrs.scoring}' (TensorRT-LLM's MOE routes by softmax)`;
  if (n.attrs.activation !== "silu") return `expert activation '${n.attrs.activation}' (TensorRT-LLM's MOE experts here are SwiGLU)`;
  if (shared && !sharedGated) return "an ungated shared expert (QWen's SharedMoE gates it with a sigmoid)";
  return undefined;
}

/** The decoder layer of a convertible `moe` node, or undefined when it stays a core op. */
function convertibleLayer(n: Node): string | undefined {
  // A mixture outside the decoder layers stays a core op too (custom code refuses it).
  return n.op === "moe" && trtllmMoeProblem(n) === undefined ? LAYER.exec(n.scope)?.[1] : undefined;
}

export function lowerMoeToTrtllm(low: LoweredModel, shapeOf: ShapeOf): LoweredModel {
  const g = low.graph;
  const converted = new Set(g.nodes.filter((n) => convertibleLayer(n) !== undefined));
  if (!converted.size) return low;
  const nameOf = new Map(g.params.map((p) => [p.value, p.name]));
  // Parameters still read elsewhere keep their names; the converted nodes' own ones are replaced.
  const stillRead = new Set(g.nodes.filter((n) => !converted.has(n)).flatMap((n) => n.inputs));
  const b = GraphBuilder.from(g, { keepParams: false });
  const subst = new Map<ValueId, ValueId>();
  const weights: Record<string, WeightExpr> = {};
  for (const p of g.params)
    if (stillRead.has(p.value)) {
      subst.set(p.value, b.param(p.name, g.values.get(p.value)!));
      weights[p.name] = low.weights[p.name]!;
    }
  const map = (v: ValueId) => subst.get(v) ?? v;
  const exprOf = (v: ValueId) => low.weights[nameOf.get(v)!]!;
  const shapeOfValue = (v: ValueId) => g.values.get(v)!.shape as number[];
  for (const n of g.nodes) {
    if (!converted.has(n)) {
      b.adoptNode({ ...n, inputs: n.inputs.map(map) }, g);
      continue;
    }
    const [x, router, gate, up, down, sGate, sUp, sDown, sExpertGate] = n.inputs as ValueId[];
    const scope = `transformer.layers.${convertibleLayer(n)}.mlp`;
    const [E, I, H] = shapeOfValue(gate!) as [number, number, number];
    const param = (suffix: string, e: WeightExpr, shape: number[], dtype = g.values.get(gate!)!.dtype) => {
      const name = `${scope}.${suffix}`;
      weights[name] = simplifyExpr(e, shapeOf);
      return b.param(name, { dtype, shape });
    };
    const shared = sGate !== undefined;
    const ins = [
      map(x!),
      param("router.weight", exprOf(router!), [E, H], "f32"),
      param("fc.weight", concat(1, exprOf(up!), exprOf(gate!)), [E, 2 * I, H]),
      param("proj.weight", exprOf(down!), [E, H, I]),
    ];
    if (shared) {
      const S = shapeOfValue(sGate!)[0]!;
      ins.push(
        param("shared_expert.fc.weight", concat(0, exprOf(sUp!), exprOf(sGate!)), [2 * S, H]),
        param("shared_expert.proj.weight", exprOf(sDown!), [H, S]),
        param("shared_expert_gate.weight", exprOf(sExpertGate!), [1, H]),
      );
    }
    const attrs = {
      numExperts: E,
      topK: n.attrs.topK,
      normalization: n.attrs.normalizeTopK ? "renormalize" : "none",
      act: "silu",
      shared,
    };
    const [y] = b.node("trtllm.moe", ins, attrs, { scope, ...(n.loc && { loc: n.loc }), meta: { trtllm: shared ? "SharedMoE" : "MOE" } });
    subst.set(n.outputs[0]!, y!);
  }
  for (const o of g.outputs) b.output(o.name, map(o.value));
  return { ...low, graph: b.build(), weights };
}
