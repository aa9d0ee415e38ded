// What the memory planner needs to know about a lowered model: its decoder shape (layers, query and key/value heads,
// head size, hidden and MLP widths, vocabulary) and every TensorRT-LLM parameter with its full shape, its tensor-
// parallel role (lower/shard.ts) and whether weight quantization applies to it.
// Invariant: read from the TensorRT-LLM level graph, so the numbers are those of the checkpoint Kiln would write.

import type { Graph } from "../ir/graph.ts";
import { type Role, paramRoles, ShardError } from "../lower/shard.ts";
import type { LoweredModel } from "../lower/to-trtllm.ts";
import { isTrtllmOp } from "../lower/trtllm-ops.ts";
import { effectiveHints } from "../passes/hints.ts";
import { matchesExclusion, WEIGHT_SCHEMES } from "../quant/schemes.ts";

export interface PlanParam {
  readonly name: string;
  readonly shape: readonly number[];
  readonly role: Role;
  /** A Linear weight that --quant quantizes (TensorRT-LLM's quantized module names, minus exclude_modules; none when
   *  the model's hints say `quantize: false`; per-module quantize hints are not mapped to TensorRT-LLM names here). */
  readonly quantizable: boolean;
}

export interface ModelDims {
  readonly numLayers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly hidden: number;
  /** Widest MLP (the activated side); 0 when the layers have no recognized MLP. */
  readonly ffn: number;
  readonly gatedMlp: boolean;
  readonly vocab: number;
  /** Mixture of experts (the first trtllm.moe block; TensorRT-LLM's classes make every layer alike). */
  readonly moe?: MoeDims;
  readonly params: readonly PlanParam[];
}

export interface MoeDims {
  readonly numExperts: number;
  readonly topK: number;
  /** One expert's intermediate width. */
  readonly expertInter: number;
  /** The shared expert's width (0: none). */
  readonly sharedInter: number;
}

const EXPERT_ROLES: ReadonlySet<Role["kind"]> = new Set(["moe_fc", "moe_proj"]);
/** A routed expert's parameter (stacked [E, ...]): only top_k of E of it works per token. */
export const isExpertParam = (p: PlanParam): boolean => EXPERT_ROLES.has(p.role.kind);

const QUANTIZED_NAMES = WEIGHT_SCHEMES.w8a16.loadTimeQuantizedNames;

export function modelDims(lowered: LoweredModel): ModelDims {
  const g: Graph = lowered.graph;
  const att = g.nodes.find((n) => isTrtllmOp(n, "trtllm.attention"));
  if (!att) throw new ShardError(`graph '${g.name}' has no TensorRT-LLM attention layer to plan the KV cache for`);
  const mlps = g.nodes.filter((n) => n.op === "trtllm.gated_mlp" || n.op === "trtllm.mlp");
  const head = g.nodes.find((n) => isTrtllmOp(n, "trtllm.lm_head"));
  const roles = paramRoles(g);
  const quantizeAllowed = effectiveHints(g, "").quantize !== false;
  const params = g.params.map((p) => {
    const name = p.name;
    const role = roles.get(name)!;
    // Kiln writes MoE experts unquantized (their quantized layouts are TensorRT-LLM's MOEWeightWrapper's own).
    const quantizable =
      quantizeAllowed && !EXPERT_ROLES.has(role.kind) && QUANTIZED_NAMES.some((q) => name.includes(q)) && !matchesExclusion(name.replace(/\.weight$/, ""));
    return { name, shape: g.values.get(p.value)!.shape as number[], role, quantizable };
  });
  const moeNode = g.nodes.find((n) => isTrtllmOp(n, "trtllm.moe"));
  const moeShape = (k: number) => g.values.get(moeNode!.inputs[k]!)!.shape as number[];
  return {
    numLayers: lowered.numLayers,
    heads: att.attrs.heads,
    kvHeads: att.attrs.kvHeads,
    headDim: att.attrs.headDim,
    hidden: g.values.get(att.inputs[0]!)!.shape.at(-1) as number,
    ffn: Math.max(0, ...mlps.map((n) => g.values.get(n.inputs[1]!)!.shape[0] as number)),
    gatedMlp: mlps.some((n) => n.op === "trtllm.gated_mlp"),
    vocab: head?.attrs.vocab ?? 0,
    ...(moeNode && {
      moe: {
        numExperts: moeNode.attrs.numExperts,
        topK: moeNode.attrs.topK,
        expertInter: moeShape(2)[1]! / 2,
        sharedInter: moeNode.attrs.shared ? moeShape(4)[0]! / 2 : 0,
      },
    }),
    params,
  };
}

/** Why a tensor-parallel size (and expert-parallel split, moe_tp = tp / moeEp) cannot shard this model
 *  (TensorRT-LLM's even splits; MixtureOfExperts.__init__ raises on the MoE ones), or undefined when it can. */
export function tpProblem(d: ModelDims, tp: number, moeEp = 1): string | undefined {
  if (!Number.isInteger(tp) || tp < 1) return `tp must be a positive integer, got ${tp}`;
  if (d.heads % tp !== 0) return `tp=${tp} does not divide the ${d.heads} query heads`;
  if (d.kvHeads % tp !== 0 && tp % d.kvHeads !== 0) return `tp=${tp} neither divides nor is a multiple of the ${d.kvHeads} key/value heads`;
  if (d.ffn % tp !== 0) return `tp=${tp} does not divide the MLP width ${d.ffn}`;
  if (!d.moe) return moeEp === 1 ? undefined : `moe_ep=${moeEp}: the model has no mixture-of-experts layers`;
  if (!Number.isInteger(tp / moeEp)) return `moe_ep=${moeEp} does not divide tp=${tp}`;
  const moeTp = tp / moeEp;
  if (d.moe.numExperts % moeEp !== 0) return `moe_ep=${moeEp} does not divide the ${d.moe.numExperts} experts`;
  if (d.moe.expertInter % moeTp !== 0) return `moe_tp=${moeTp} does not divide the expert width ${d.moe.expertInter}`;
  if (d.moe.sharedInter % tp !== 0) return `tp=${tp} does not divide the shared expert width ${d.moe.sharedInter}`;
  return undefined;
}

/** Key/value heads each tensor-parallel rank caches (replicated when there are fewer than tp). */
export const kvHeadsPerRank = (d: ModelDims, tp: number): number => Math.max(1, d.kvHeads / tp);

/** A parameter's shape on one tensor-parallel rank (MoE experts grouped over `moeEp`, moe_tp = tp / moeEp). */
export function rankShape(p: PlanParam, d: ModelDims, tp: number, moeEp = 1): number[] {
  const [rows, ...rest] = p.shape;
  const moeTp = tp / moeEp;
  const table: Record<Role["kind"], () => number[]> = {
    replicated: () => [...p.shape],
    row_bias: () => [...p.shape],
    column: () => [rows! / tp, ...rest],
    column_halves: () => [rows! / tp, ...rest],
    row: () => [rows!, rest[0]! / tp],
    qkv: () => [(d.heads / tp + 2 * kvHeadsPerRank(d, tp)) * d.headDim, ...rest],
    lm_head: () => [Math.ceil(rows! / tp), ...rest],
    moe_fc: () => [rows! / moeEp, rest[0]! / moeTp, rest[1]!],
    moe_proj: () => [rows! / moeEp, rest[0]!, rest[1]! / moeTp],
    gated_column: () => [rows! / tp, ...rest],
  };
  return table[p.role.kind]();
}
