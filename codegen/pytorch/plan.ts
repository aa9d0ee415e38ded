// The emission plan shared by the PyTorch-based targets (hf, trtllm-torch): the lowered graph cut into pre-layer
// glue, one decoder-layer program, post-layer glue and the lm_head (the partition and class trees of
// codegen/common/model-py-plan.ts, reused as they are), numeric attributes that differ between layers as
// config list fields, and a check that no attribute path of the generated modules collides with what
// torch.nn.Module (or the generated class itself) already uses.
// Invariants: every graph parameter lands in exactly one class tree; failures are ModelPyError naming the tensor.

import type { JsonValue } from "../../src/ir/attrs.ts";
import { liveNodes, type Graph, type Node } from "../../src/ir/graph.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { Namespace } from "../python/identifiers.ts";
import { addNode, checkSameStructure, layerConfigFields, type SlotUse, type ClassTree, fail, type Group, type LayerPlan, newClassTree, type Partition, partition, planLayer } from "../common/model-py-plan.ts";

/** Attributes and methods of torch.nn.Module (torch 2.x) and of transformers' PreTrainedModel that a generated
 *  attribute must not shadow. */
export const TORCH_MODULE_ATTRIBUTES: ReadonlySet<string> = new Set(
  (
    "T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval " +
    "extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict modules mtia " +
    "named_buffers named_children named_modules named_parameters parameters register_backward_hook register_buffer " +
    "register_forward_hook register_forward_pre_hook register_full_backward_hook register_full_backward_pre_hook " +
    "register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module register_parameter " +
    "register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory " +
    "state_dict to to_empty train training type xpu zero_grad " +
    "base_model base_model_prefix config device dtype generation_config main_input_name name_or_path loss_function " +
    "post_init get_input_embeddings set_input_embeddings get_output_embeddings set_output_embeddings model_tags"
  ).split(" "),
);

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
  for (const [tree, what] of [[pre, "model"], [post, "model"], [layers[0]!.tree, "decoder layer"]] as const) checkTorchNames(tree.root, tree.prefix, what);
  return { g, part, layers, slotUse, configFields, pre, post, live: liveNodes(g) };
}

/** Nested attribute names must not shadow torch.nn.Module members either (addNode checks the first segment). */
function checkTorchNames(root: Group, prefix: string, what: string): void {
  const walk = (grp: Group, at: string) => {
    for (const [name, e] of grp.children) {
      if (TORCH_MODULE_ATTRIBUTES.has(name)) fail(`tensor path '${at}${name}' uses the attribute '${name}', which torch.nn.Module defines (in the generated ${what} class); rename that module field`);
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
