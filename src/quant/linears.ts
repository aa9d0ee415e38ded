// The Linears of a lowered model that TensorRT-LLM 1.2's quantizers replace, and the attention modules whose KV
// cache they quantize, by TensorRT-LLM module path (global layer indices). quantize_layers swaps every ColumnLinear
// and RowLinear whose path no `exclude_modules` pattern matches; inside Kiln's lowered layers those are
// attention.qkv / attention.dense, mlp.fc / mlp.gate / mlp.proj; lm_head is a Linear too but always in the default
// exclusions (Kiln does not quantize it). kv_cache_quantize adds `kv_cache_scaling_factor` to every Attention,
// exclusions or not.
// Invariant: `scaleGroup` ties fc and gate of one GatedMLP together: TensorRT-LLM's fuse_gate_mlp (use_fused_mlp,
// on by default) requantizes both with the larger of their two FP8 weight scales, so Kiln gives them that one scale
// up front and the engine's requantization becomes exact (see fp8 weight scales in quant-weights.ts).

import type { Graph } from "../ir/graph.ts";

export type LinearRole = "qkv" | "dense" | "fc" | "gate" | "proj";

export interface QuantLinear {
  /** TensorRT-LLM module path, e.g. transformer.layers.0.attention.qkv. */
  readonly module: string;
  /** Its weight parameter in the lowered graph (`<module>.weight`). */
  readonly param: string;
  readonly role: LinearRole;
  /** Module path whose FP8 weight scale this Linear shares (itself, or the fc of its GatedMLP for fc and gate). */
  readonly scaleGroup: string;
  /** The attention or MLP module it belongs to. */
  readonly layer: string;
}

const ROLES: Readonly<Record<string, readonly LinearRole[]>> = {
  "trtllm.attention": ["qkv", "dense"],
  "trtllm.gated_mlp": ["fc", "gate", "proj"],
  "trtllm.mlp": ["fc", "proj"],
};

/** Every quantizable Linear, in graph order. */
export function quantizableLinears(g: Graph): QuantLinear[] {
  const params = new Set(g.params.map((p) => p.name));
  return g.nodes.flatMap((n) =>
    (ROLES[n.op] ?? []).map((role): QuantLinear => {
      const module = `${n.scope}.${role}`;
      const param = `${module}.weight`;
      if (!params.has(param)) throw new Error(`lowered ${n.op} at ${n.scope} has no parameter '${param}'`);
      const shared = n.op === "trtllm.gated_mlp" && role === "gate";
      return { module, param, role, scaleGroup: shared ? `${n.scope}.fc` : module, layer: n.scope };
    }),
  );
}

/** Every attention module (they all get a KV-cache scale). */
export const attentionModules = (g: Graph): string[] => g.nodes.filter((n) => n.op === "trtllm.attention").map((n) => n.scope);
