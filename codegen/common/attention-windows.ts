// Per-layer attention windows of a lowered model, as TensorRT-LLM 1.2.1 takes them: a list with one entry per
// decoder layer, the sliding window for local layers and the maximum sequence length for global ones
// (KvCacheConfig.max_attention_window / RuntimeDefaults.max_attention_window; the Triton backend's
// `max_attention_window_size` parameter, comma-separated; examples/run.py's `--max_attention_window_size`).
// Undefined when no layer has a window: then every target leaves TensorRT-LLM's default (max_seq_len) alone.

import type { Graph } from "../../src/ir/graph.ts";

const LAYER = /^transformer\.layers\.(\d+)\./;

/** Window per decoder layer (0 = global), in layer order; undefined when every layer is global. */
export function layerWindows(g: Graph): number[] | undefined {
  const byLayer = new Map<number, number>();
  for (const n of g.nodes) {
    const m = n.op === "trtllm.attention" ? LAYER.exec(n.scope) : null;
    if (m) byLayer.set(Number(m[1]), n.attrs.window as number);
  }
  const windows = [...byLayer.entries()].sort(([a], [b]) => a - b).map(([, w]) => w);
  return windows.some((w) => w > 0) ? windows : undefined;
}

/** TensorRT-LLM's per-layer max_attention_window list: global layers get `maxSeqLen`. */
export function maxAttentionWindow(g: Graph, maxSeqLen: number): number[] | undefined {
  return layerWindows(g)?.map((w) => (w > 0 ? Math.min(w, maxSeqLen) : maxSeqLen));
}
