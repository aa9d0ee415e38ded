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
  readonly params: readonly PlanParam[];
}

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
    const quantizable = quantizeAllowed && QUANTIZED_NAMES.some((q) => name.includes(q)) && !matchesExclusion(name.replace(/\.weight$/, ""));
    return { name, shape: g.values.get(p.value)!.shape as number[], role: roles.get(name)!, quantizable };
  });
  return {
    numLayers: lowered.numLayers,
    heads: att.attrs.heads,
    kvHeads: att.attrs.kvHeads,
    headDim: att.attrs.headDim,
    hidden: g.values.get(att.inputs[0]!)!.shape.at(-1) as number,
    ffn: Math.max(0, ...mlps.map((n) => g.values.get(n.inputs[1]!)!.shape[0] as number)),
    gatedMlp: mlps.some((n) => n.op === "trtllm.gated_mlp"),
    vocab: head?.attrs.vocab ?? 0,
    params,
  };
}

/** Why a tensor-parallel size cannot shard this model (TensorRT-LLM's even splits), or undefined when it can. */
export function tpProblem(d: ModelDims, tp: number): string | undefined {
  if (!Number.isInteger(tp) || tp < 1) return `tp must be a positive integer, got ${tp}`;
  if (d.heads % tp !== 0) return `tp=${tp} does not divide the ${d.heads} query heads`;
  if (d.kvHeads % tp !== 0 && tp % d.kvHeads !== 0) return `tp=${tp} neither divides nor is a multiple of the ${d.kvHeads} key/value heads`;
  if (d.ffn % tp !== 0) return `tp=${tp} does not divide the MLP width ${d.ffn}`;
  return undefined;
}

/** Key/value heads each tensor-parallel rank caches (replicated when there are fewer than tp). */
export const kvHeadsPerRank = (d: ModelDims, tp: number): number => Math.max(1, d.kvHeads / tp);

/** A parameter's shape on one tensor-parallel rank. */
export function rankShape(p: PlanParam, d: ModelDims, tp: number): number[] {
  const [rows, ...rest] = p.shape;
  const table: Record<Role["kind"], () => number[]> = {
    replicated: () => [...p.shape],
    row_bias: () => [...p.shape],
    column: () => [rows! / tp, ...rest],
    column_halves: () => [rows! / tp, ...rest],
    row: () => [rows!, rest[0]! / tp],
    qkv: () => [(d.heads / tp + 2 * kvHeadsPerRank(d, tp)) * d.headDim, ...rest],
    lm_head: () => [Math.ceil(rows! / tp), ...rest],
  };
  return table[p.role.kind]();
}
