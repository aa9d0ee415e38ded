// Per-rank weights: for every TensorRT-LLM parameter, the expression each tensor-parallel rank stores, following
// TensorRT-LLM's conventions: column-parallel weights and biases split on dim 0, row-parallel weights on dim 1 with
// the bias whole on every rank (or on rank 0 only where the layer reduces once, GPT-J), the fused QKV split by heads
// first and concatenated per rank ([q_r; k_r; v_r], key/value heads replicated when fewer than tp), lm_head padded to
// a multiple of tp then split on dim 0 (so is the token embedding with a vocab-parallel embedding), everything else
// replicated. Expressions are simplified, so a rank's slice reads
// only the source rows it needs.
// Mixture of experts (TensorRT-LLM MixtureOfExperts with Mapping moe_tp x moe_ep = tp; docs/moe.md): tp rank r is
// moe_ep rank r % moe_ep and moe_tp rank floor(r / moe_ep); the stacked fc [E, 2I, H] keeps the contiguous block of
// E / moe_ep experts of its ep rank and, of each expert's [up ; gate], rows [up_t ; gate_t] of its moe_tp rank; proj
// [E, H, I] the same experts and columns I / moe_tp; the router and the shared-expert gate are replicated; the
// shared expert's fc [up ; gate] is split half by half over the plain tp ranks, its proj on dim 1.

import type { Graph, Node } from "../ir/graph.ts";
import { simplifyExpr } from "../weights/simplify.ts";
import { concat, pad, slice, type WeightExpr, type WeightMap, zeros } from "../weights/weight-map.ts";
import type { LoweredModel } from "./to-trtllm.ts";
import { isTrtllmOp } from "./trtllm-ops.ts";

export class ShardError extends Error {}

export type Role =
  | { readonly kind: "replicated" }
  | { readonly kind: "column" }
  /** A column-parallel weight of two stacked halves (swiglu fc [x; gate]): each rank holds its part of each half. */
  | { readonly kind: "column_halves" }
  | { readonly kind: "row" }
  | { readonly kind: "row_bias"; readonly rank0Only: boolean }
  | { readonly kind: "qkv"; readonly heads: number; readonly kvHeads: number; readonly headDim: number }
  | { readonly kind: "lm_head" }
  /** [E, 2I, H] stacked experts, each [up ; gate]: experts by moe_ep, both halves by moe_tp. */
  | { readonly kind: "moe_fc" }
  /** [E, H, I] stacked experts: experts by moe_ep, columns by moe_tp. */
  | { readonly kind: "moe_proj" }
  /** [up ; gate] rows of a gated fc (SharedMoE's shared expert): each half split on dim 0 by tp. */
  | { readonly kind: "gated_column" };

/** The sharding role of every parameter, from the TensorRT-LLM op that reads it. */
export function paramRoles(g: Graph): Map<string, Role> {
  const nameOf = new Map(g.params.map((p) => [p.value, p.name]));
  const roles = new Map<string, Role>();
  const set = (n: Node, slot: number, role: Role) => {
    const name = nameOf.get(n.inputs[slot]!);
    if (name) roles.set(name, role);
  };
  for (const n of g.nodes) {
    const layerReduce = n.attrs.reduce === "layer";
    if (isTrtllmOp(n, "trtllm.attention")) {
      const qkv: Role = { kind: "qkv", heads: n.attrs.heads, kvHeads: n.attrs.kvHeads, headDim: n.attrs.headDim };
      let slot = 2;
      set(n, slot++, qkv);
      if (n.attrs.qkvBias) set(n, slot++, qkv);
      set(n, slot++, { kind: "row" });
      if (n.attrs.denseBias) set(n, slot, { kind: "row_bias", rank0Only: layerReduce });
    } else if (n.op === "trtllm.gated_mlp" || n.op === "trtllm.mlp") {
      const cols = n.op === "trtllm.gated_mlp" ? 2 : 1;
      const column: Role = n.attrs.act === "swiglu" ? { kind: "column_halves" } : { kind: "column" };
      for (let k = 0; k < cols; k++) set(n, 1 + k, column);
      set(n, 1 + cols, { kind: "row" });
      if (n.attrs.bias) {
        for (let k = 0; k < cols; k++) set(n, 2 + cols + k, column);
        set(n, 2 + 2 * cols, { kind: "row_bias", rank0Only: layerReduce });
      }
    } else if (isTrtllmOp(n, "trtllm.moe")) {
      set(n, 2, { kind: "moe_fc" });
      set(n, 3, { kind: "moe_proj" });
      if (n.attrs.shared) {
        set(n, 4, { kind: "gated_column" });
        set(n, 5, { kind: "row" });
      }
    } else if (n.op === "trtllm.lm_head") {
      set(n, 1, { kind: "lm_head" });
      set(n, 2, { kind: "lm_head" });
    }
  }
  for (const p of g.params) if (!roles.has(p.name)) roles.set(p.name, { kind: "replicated" });
  return roles;
}

type ShapeOf = (name: string) => readonly number[] | undefined;

function evenSplit(size: number, tp: number, what: string): number {
  if (size % tp !== 0) throw new ShardError(`${what}: size ${size} is not divisible by tp=${tp}`);
  return size / tp;
}

/** Rows of the fused QKV weight that rank r holds: its q heads, then its k heads, then its v heads. */
export function qkvRankRows(role: Extract<Role, { kind: "qkv" }>, tp: number, r: number, what: string): [number, number][] {
  const { heads, kvHeads, headDim: hd } = role;
  const hl = evenSplit(heads, tp, `${what} query heads`);
  let kvStart: number;
  let kvl: number;
  if (kvHeads >= tp) {
    kvl = evenSplit(kvHeads, tp, `${what} key/value heads`);
    kvStart = r * kvl;
  } else {
    if (tp % kvHeads !== 0) throw new ShardError(`${what}: tp=${tp} is not a multiple of ${kvHeads} key/value heads, so they cannot be replicated evenly`);
    kvl = 1;
    kvStart = Math.floor((r * kvHeads) / tp);
  }
  const q0 = 0;
  const k0 = heads * hd;
  const v0 = (heads + kvHeads) * hd;
  return [
    [q0 + r * hl * hd, q0 + (r + 1) * hl * hd],
    [k0 + kvStart * hd, k0 + (kvStart + kvl) * hd],
    [v0 + kvStart * hd, v0 + (kvStart + kvl) * hd],
  ];
}

/** [start, end) of a contiguous split of `size` into `parts`, part `k`. */
function block(size: number, parts: number, k: number, what: string): [number, number] {
  const n = evenSplit(size, parts, what);
  return [k * n, (k + 1) * n];
}

/** Rows [up_k ; gate_k] of a gated fc whose rows are [up ; gate], split into `parts` (dim `dim`). */
function gatedHalves(e: WeightExpr, dim: number, rows: number, parts: number, k: number, what: string): WeightExpr {
  const half = evenSplit(rows, 2, `${what} [up ; gate] rows`);
  const [a, b] = block(half, parts, k, `${what} half`);
  return concat(dim, slice(e, dim, a, b), slice(e, dim, half + a, half + b));
}

export function rankExpr(name: string, e: WeightExpr, role: Role, shape: readonly number[], tp: number, r: number, shapeOf: ShapeOf, moeEp = 1): WeightExpr {
  if (tp === 1 && role.kind !== "lm_head") return e;
  const part = (dim: number) => {
    const n = evenSplit(shape[dim]!, tp, `${name} dim ${dim}`);
    return simplifyExpr(slice(e, dim, r * n, (r + 1) * n), shapeOf);
  };
  const moeTp = tp / moeEp;
  const [epRank, moeTpRank] = [r % moeEp, Math.floor(r / moeEp)];
  const experts = () => {
    const [a, b] = block(shape[0]!, moeEp, epRank, `${name} experts over moe_ep=${moeEp}`);
    return moeEp === 1 ? e : slice(e, 0, a, b);
  };
  switch (role.kind) {
    case "replicated":
      return e;
    case "column":
      return part(0);
    case "column_halves": {
      const half = evenSplit(shape[0]!, 2, `${name} halves`);
      const n = evenSplit(half, tp, `${name} half`);
      return simplifyExpr(concat(0, slice(e, 0, r * n, (r + 1) * n), slice(e, 0, half + r * n, half + (r + 1) * n)), shapeOf);
    }
    case "row":
      return part(1);
    case "row_bias":
      return role.rank0Only && r > 0 ? zeros(shape) : e;
    case "qkv":
      return simplifyExpr(concat(0, ...qkvRankRows(role, tp, r, name).map(([a, b]) => slice(e, 0, a, b))), shapeOf);
    case "moe_fc":
      return simplifyExpr(gatedHalves(experts(), 1, shape[1]!, moeTp, moeTpRank, `${name} over moe_tp=${moeTp}`), shapeOf);
    case "moe_proj": {
      const [a, b] = block(shape[2]!, moeTp, moeTpRank, `${name} dim 2 over moe_tp=${moeTp}`);
      return simplifyExpr(slice(experts(), 2, a, b), shapeOf);
    }
    case "gated_column":
      return simplifyExpr(gatedHalves(e, 0, shape[0]!, tp, r, name), shapeOf);
    case "lm_head": {
      const padded = Math.ceil(shape[0]! / tp) * tp;
      const full = padded === shape[0] ? e : pad(e, 0, padded);
      const n = padded / tp;
      return tp === 1 ? full : simplifyExpr(slice(full, 0, r * n, (r + 1) * n), shapeOf);
    }
  }
}

export interface ShardOptions {
  /** TensorRT-LLM's use_parallel_embedding with embedding_sharding_dim 0: the token embedding is split by vocab rows,
   *  padded to a multiple of tp like lm_head (layers/embedding.py: ceil(num_embeddings / tp) rows per rank). */
  readonly parallelEmbedding?: boolean;
  /** Expert-parallel groups for mixture-of-experts blocks (moe_tp = tp / moeEp); 1 when absent. */
  readonly moeEp?: number;
}

/** Every rank's expressions for every parameter (global names). */
export function shardWeights(lowered: LoweredModel, tp: number, shapeOf: ShapeOf, o: ShardOptions = {}): WeightMap[] {
  const moeEp = o.moeEp ?? 1;
  if (!Number.isInteger(tp / moeEp)) throw new ShardError(`moe_ep=${moeEp} does not divide tp=${tp}`);
  const roles = paramRoles(lowered.graph);
  if (o.parallelEmbedding) {
    const embed = lowered.graph.nodes.find((n) => n.op === "embedding" && n.scope === "transformer.vocab_embedding");
    const table = embed && lowered.graph.params.find((p) => p.value === embed.inputs[0]);
    if (table) roles.set(table.name, { kind: "lm_head" });
  }
  const shapes = new Map(lowered.graph.params.map((p) => [p.name, lowered.graph.values.get(p.value)!.shape as number[]]));
  return Array.from({ length: tp }, (_, r) =>
    Object.fromEntries(
      Object.entries(lowered.weights).map(([name, e]) => [name, rankExpr(name, e, roles.get(name)!, shapes.get(name)!, tp, r, shapeOf, moeEp)]),
    ),
  );
}
