// The emission plan shared by the PyTorch-based targets (hf, trtllm-torch): the lowered graph cut into pre-layer
// glue, one decoder-layer program, post-layer glue and the lm_head (the partition and class trees of
// codegen/common/model-py-plan.ts, reused as they are), numeric attributes that differ between layers as
// config list fields, and a check that no attribute path of the generated modules collides with what
// torch.nn.Module (or the generated class itself) already uses.
// Invariants: every graph parameter lands in exactly one class tree; failures are ModelPyError naming the tensor.

import type { JsonValue } from "../../src/ir/attrs.ts";
import { liveNodes, type Graph, type Node } from "../../src/ir/graph.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { Namespace, reservedAttribute, TORCH_MODULE_ATTRIBUTES } from "../python/identifiers.ts";
import {
  addNode,
  checkSameStructure,
  layerConfigFields,
  type SlotUse,
  type ClassTree,
  fail,
  type Group,
  type LayerPlan,
  newClassTree,
  type Partition,
  partition,
  planLayer,
} from "../common/model-py-plan.ts";

/** The torch.nn.Module names a generated attribute must not take (one list, in codegen/python/identifiers.ts). */
export { TORCH_MODULE_ATTRIBUTES };

export type { SlotUse } from "../common/model-py-plan.ts";

export interface TorchPlan {
  readonly g: Graph;
  readonly part: Partition;
  readonly layers: readonly LayerPlan[];
  /** Per node of layer 0 and input (-1: the node's own attribute). */
  readonly slotUse: ReadonlyMap<Node, ReadonlyMap<number, SlotUse>>;
  /** Per-layer list fields for config.json. */
  readonly configFields: Record<string, JsonValue>;
  readonly pre: ClassTree;
  readonly post: ClassTree;
  /** Nodes that reach an output. */
  readonly live: ReadonlySet<Node>;
}

export interface PlanOptions {
  /** Attributes the generated decoder-layer class sets itself (config, layer_idx, ...). */
  readonly layerAttrs: ReadonlySet<string>;
  /** Attributes the generated model class sets itself (config, layers, ...). */
  readonly modelAttrs: ReadonlySet<string>;
  /** config.json keys that per-layer fields must not take. */
  readonly configKeys: Iterable<string>;
}

export function planTorchModel(low: LoweredModel, o: PlanOptions): TorchPlan {
  const g = low.graph;
  const part = partition(g);
  if (part.layers.length !== low.numLayers) fail(`lowered model says ${low.numLayers} layers but the graph has ${part.layers.length}`);
  const layerReserved = new Set([...o.layerAttrs, ...TORCH_MODULE_ATTRIBUTES]);
  const modelReserved = new Set([...o.modelAttrs, ...TORCH_MODULE_ATTRIBUTES]);
  const layers = part.layers.map((_, i) => planLayer(g, part, i, layerReserved));
  checkSameStructure(layers);
  const fields = new Namespace(o.configKeys);
  const { slotUse, configFields } = layerConfigFields(layers, fields);
  const pre = newClassTree("transformer.");
  const post = newClassTree("transformer.");
  for (const n of part.pre) addNode(pre, g, n, modelReserved);
  for (const n of part.post) addNode(post, g, n, modelReserved);
  const shared = [...post.root.children.keys()].find((k) => pre.root.children.has(k));
  if (shared) fail(`'transformer.${shared}' is used both before and after the decoder layers; give each its own parameter`);
  for (const [tree, what] of [
    [pre, "model"],
    [post, "model"],
    [layers[0]!.tree, "decoder layer"],
  ] as const)
    checkTorchNames(tree.root, tree.prefix, what);
  return { g, part, layers, slotUse, configFields, pre, post, live: liveNodes(g) };
}

/** Nested attribute names must not shadow torch.nn.Module members either (addNode checks the first segment). */
function checkTorchNames(root: Group, prefix: string, what: string): void {
  const walk = (grp: Group, at: string) => {
    for (const [name, e] of grp.children) {
      const why = reservedAttribute(name, "torch");
      if (why) fail(`tensor path '${at}${name}' needs the attribute '${name}' in the generated ${what} class, but ${why}; rename that module field`);
      if (e.kind === "group") walk(e, `${at}${name}.`);
    }
  };
  walk(root, prefix);
}

/** The lm_head's parameter names, checked against what a causal-LM head module registers. */
export function headParams(plan: TorchPlan): { readonly weight: string; readonly bias?: string } {
  const head = plan.part.head;
  const name = (k: number) => plan.g.params.find((p) => p.value === head.inputs[k])?.name;
  if (name(1) !== "lm_head.weight") fail(`lm_head reads '${name(1)}'; the generated lm_head registers 'lm_head.weight'`);
  if (head.inputs.length > 2 && name(2) !== "lm_head.bias") fail(`lm_head reads '${name(2)}' as its bias; the generated lm_head registers 'lm_head.bias'`);
  return { weight: "lm_head.weight", ...(head.inputs.length > 2 && { bias: "lm_head.bias" }) };
}
