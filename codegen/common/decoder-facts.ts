// What the config emitters (TensorRT-LLM's PretrainedConfig, the HF-standard config.json) read off a lowered
// graph: its first attention, MLP, norm and lm_head, and the sizes they give. Values the graph does not hold come
// from the source config (max positions without a position table) or TensorRT-LLM's defaults (an MLP 4x hidden,
// silu, norm epsilon 1e-5). For a mixture-of-experts model, `moe` holds the first MoE block's facts and
// `intermediate` is one expert's width (TensorRT-LLM's MOE takes it as ffn_hidden_size).

import { isOp, type Node, type NodeOf } from "../../src/ir/graph.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { isTrtllmOp, type TrtllmAttrs, type TrtllmNodeOf } from "../../src/lower/trtllm-ops.ts";

export interface DecoderFacts {
  /** The attention's attributes (heads, kvHeads, headDim, rope, ropeTheta, rotaryDim, qkvBias, ...). */
  readonly att: TrtllmAttrs<"trtllm.attention">;
  readonly mlp: TrtllmNodeOf<"trtllm.gated_mlp" | "trtllm.mlp"> | undefined;
  readonly norm: NodeOf<"rms_norm" | "layer_norm"> | undefined;
  readonly vocab: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly maxPositions: number;
  /** Kiln activation name of the MLP. */
  readonly act: string;
  readonly mlpBias: boolean;
  readonly moe?: MoeFacts;
}

export interface MoeFacts {
  readonly node: TrtllmNodeOf<"trtllm.moe">;
  readonly numExperts: number;
  readonly topK: number;
  readonly normalization: "none" | "renormalize";
  /** One expert's intermediate width. */
  readonly expertInter: number;
  /** The shared expert's width (0: none). */
  readonly sharedInter: number;
}

function moeFacts(low: LoweredModel): MoeFacts | undefined {
  const g = low.graph;
  const node = g.nodes.find((n) => isTrtllmOp(n, "trtllm.moe"));
  if (!node) return undefined;
  const shape = (k: number) => g.values.get(node.inputs[k]!)!.shape as number[];
  return {
    node,
    numExperts: node.attrs.numExperts,
    topK: node.attrs.topK,
    normalization: node.attrs.normalization,
    expertInter: shape(2)[1]! / 2,
    sharedInter: node.attrs.shared ? shape(4)[0]! / 2 : 0,
  };
}

export function decoderFacts(low: LoweredModel, hf: Readonly<Record<string, unknown>>): DecoderFacts {
  const g = low.graph;
  const first = (pred: (n: Node) => boolean) => g.nodes.find(pred);
  const shape = (n: Node, input: number) => g.values.get(n.inputs[input]!)!.shape;
  const att = g.nodes.find((n) => isTrtllmOp(n, "trtllm.attention"))!;
  const mlp = g.nodes.find((n) => isTrtllmOp(n, "trtllm.gated_mlp", "trtllm.mlp"));
  const posTable = first((n) => n.op === "embedding" && n.scope === "transformer.position_embedding");
  const hidden = shape(att, 0).at(-1) as number;
  const hfMaxPos = (hf.max_position_embeddings ?? hf.n_positions) as number | undefined;
  const moe = moeFacts(low);
  return {
    att: att.attrs,
    mlp,
    norm: g.nodes.find((n) => isOp(n, "rms_norm") || isOp(n, "layer_norm")),
    vocab: g.nodes.find((n) => isTrtllmOp(n, "trtllm.lm_head"))!.attrs.vocab,
    hidden,
    // A swiglu fc stacks [x; gate]: the MLP width is half its rows.
    intermediate: moe ? moe.expertInter : mlp ? (shape(mlp, 1)[0] as number) / (mlp.attrs.act === "swiglu" ? 2 : 1) : 4 * hidden,
    maxPositions: posTable ? (shape(posTable, 0)[0] as number) : (hfMaxPos ?? 2048),
    act: moe ? moe.node.attrs.act : mlp ? mlp.attrs.act : "silu",
    mlpBias: mlp?.attrs.bias ?? false,
    ...(moe && { moe }),
  };
}
