// The emission plan behind model.py: the lowered graph cut into what each generated class computes (pre-layer glue
// on the first pipeline stage, one decoder-layer program, post-layer glue on the last stage, lm_head), and for each
// class the tree of attributes its __init__ creates (TensorRT-LLM layers, plain Parameters, container groups) so that
// `named_parameters()` yields exactly the graph's parameter names. Decoder layers must share one structure (one
// class builds them all); numeric attributes that differ per layer (softmax scale, norm epsilon, scalar constants)
// become per-layer slots.
// Invariants: every parameter of the graph lands in exactly one tree; a failure names the node, the tensor or the
// first differing layer; nothing here prints Python.

import { reservedAttribute, TRTLLM_MODULE_ATTRIBUTES } from "../python/identifiers.ts";
import type { JsonValue } from "../../src/ir/attrs.ts";
import type { DType } from "../../src/ir/dtype.ts";
import { describeNode, type Graph, type Node, type SourceLoc, type ValueId } from "../../src/ir/graph.ts";
import type { Shape } from "../../src/ir/shape.ts";
import { isTrtllmOp, type TrtllmNodeOf } from "../../src/lower/trtllm-ops.ts";
import type { Namespace } from "../python/identifiers.ts";

export class ModelPyError extends Error {
  override name = "ModelPyError";
}

export const fail = (msg: string): never => {
  throw new ModelPyError(msg);
};

const LAYER_SCOPE = /^transformer\.layers\.(\d+)(?:\.|$)/;
export const layerOf = (n: Node): number | undefined => {
  const m = LAYER_SCOPE.exec(n.scope);
  return m ? Number(m[1]) : undefined;
};

// ---------------------------------------------------------------------------------------------------------------
// Partition

export interface Partition {
  readonly pre: readonly Node[];
  readonly layers: readonly (readonly Node[])[];
  readonly post: readonly Node[];
  readonly head: TrtllmNodeOf<"trtllm.lm_head">;
  /** The hidden state entering layer 0 (made by the pre-layer glue). */
  readonly layerInput: ValueId;
  readonly layerOutputs: readonly ValueId[];
  /** What lm_head reads: the transformer's output. */
  readonly transformerOutput: ValueId;
  readonly inputIds?: ValueId;
  readonly positionIds?: ValueId;
}

type Stage = { kind: "pre" } | { kind: "layer"; index: number } | { kind: "post" };

export function partition(g: Graph): Partition {
  const heads = g.nodes.filter((n) => isTrtllmOp(n, "trtllm.lm_head"));
  if (heads.length !== 1) fail(`graph '${g.name}' has ${heads.length} trtllm.lm_head nodes; a causal LM has exactly one`);
  const head = heads[0]!;
  const extraOut = g.outputs.find((o) => o.name !== "logits" || o.value !== head.outputs[0]);
  if (extraOut) fail(`graph output '${extraOut.name}' is not the lm_head's logits; TensorRT-LLM engines output logits only`);
  const params = new Set(g.params.map((p) => p.value));
  const inputIds = g.inputs.find((i) => i.name === "input_ids")?.value;
  const positionIds = g.inputs.find((i) => i.name === "position_ids")?.value;
  const strange = g.inputs.find((i) => i.name !== "input_ids" && i.name !== "position_ids");
  if (strange) fail(`graph input '${strange.name}' is not input_ids or position_ids, which are all TensorRT-LLM passes in`);

  const stageOf = new Map<ValueId, Stage>();
  const layerNodes = new Map<number, Node[]>();
  const pre: Node[] = [];
  const post: Node[] = [];
  // Scalar constants and parameter-free computations on position_ids belong to no stage (CSE may share one such
  // node between layers): constants are inlined as literals, position computations are repeated where read.
  const constants = new Set(g.nodes.filter((n) => n.op === "constant").flatMap((n) => n.outputs));
  const floating = new Map<ValueId, Node>();
  for (const n of g.nodes)
    if (n !== head && n.op !== "constant" && n.inputs.length > 0 && n.inputs.every((v) => v === positionIds || constants.has(v) || floating.has(v)))
      n.outputs.forEach((o) => floating.set(o, n));
  /** The nodes with the position computations they read placed just before their first reader, so every layer
   *  lists them at the same place whichever layer's scope CSE left them in. */
  const withFloating = (nodes: readonly Node[]): Node[] => {
    const out: Node[] = [];
    const place = (n: Node) => {
      for (const v of n.inputs) {
        const f = floating.get(v);
        if (f && !out.includes(f)) place(f);
      }
      out.push(n);
    };
    nodes.filter((n) => !floating.has(n.outputs[0]!)).forEach(place);
    return out;
  };
  for (const n of g.nodes) {
    if (n === head || n.op === "constant" || floating.has(n.outputs[0]!)) continue;
    const l = layerOf(n);
    let stage: Stage;
    if (l !== undefined) {
      stage = { kind: "layer", index: l };
      layerNodes.set(l, [...(layerNodes.get(l) ?? []), n]);
    } else {
      const afterLayers = n.inputs.some((v) => {
        const s = stageOf.get(v);
        return s !== undefined && s.kind !== "pre";
      });
      stage = afterLayers ? { kind: "post" } : { kind: "pre" };
      (afterLayers ? post : pre).push(n);
    }
    n.outputs.forEach((o) => stageOf.set(o, stage));
  }
  const count = layerNodes.size;
  for (let i = 0; i < count; i++) if (!layerNodes.has(i)) fail(`decoder layers are not numbered 0..${count - 1}: layer ${i} is missing`);
  if (count === 0) fail(`graph '${g.name}' has no nodes in transformer.layers.*`);
  const layers = Array.from({ length: count }, (_, i) => withFloating(layerNodes.get(i)!));

  // Each layer reads exactly one hidden state from outside (the previous layer's output) and hands one on.
  const layerInputs: ValueId[] = [];
  const layerOutputs: ValueId[] = [];
  for (const [i, nodes] of layers.entries()) {
    const inside = new Set(nodes.flatMap((n) => n.outputs));
    const outside = new Map<ValueId, Node>();
    for (const n of nodes)
      for (const v of n.inputs) {
        if (inside.has(v) || params.has(v) || constants.has(v) || v === positionIds) continue;
        if (v === inputIds) fail(`${describeNode(n)} reads input_ids inside decoder layer ${i}; only the embedding before the layers may`);
        const s = stageOf.get(v);
        if (s?.kind === "post")
          fail(`${describeNode(n)} reads a value computed outside the decoder layers after them; glue between layers must live inside a layer module`);
        if (!outside.has(v)) outside.set(v, n);
      }
    if (outside.size !== 1)
      fail(
        `decoder layer ${i} reads ${outside.size} hidden states from outside the layer (${[...outside.values()].map(describeNode).join("; ")}); TensorRT-LLM's DecoderLayerList passes exactly one`,
      );
    const [input] = outside.keys();
    const expected = i === 0 ? undefined : layerOutputs[i - 1];
    if (i === 0 && stageOf.get(input!)?.kind !== "pre") fail(`decoder layer 0 reads a value that is not computed before the layers`);
    if (i > 0 && input !== expected)
      fail(`decoder layer ${i} reads a value other than layer ${i - 1}'s output (${describeNode(outside.get(input!)!)}); layers must form a chain`);
    layerInputs.push(input!);
    const usedOutside = new Set<ValueId>();
    for (const n of g.nodes) if (!nodes.includes(n)) for (const v of n.inputs) if (inside.has(v) && !floating.has(v)) usedOutside.add(v);
    if (usedOutside.size !== 1)
      fail(`decoder layer ${i} hands ${usedOutside.size} values to the rest of the model; a decoder layer returns exactly one hidden state`);
    layerOutputs.push([...usedOutside][0]!);
  }
  const last = layerOutputs[count - 1]!;
  const postMade = new Set(post.flatMap((n) => n.outputs));
  for (const n of [...post, head])
    for (const v of n.inputs) {
      const s = stageOf.get(v);
      if (s?.kind === "layer" && v !== last)
        fail(`${describeNode(n)} reads a value from inside decoder layer ${s.index}; after the layers only the last layer's output is available`);
      if (s?.kind === "pre")
        fail(`${describeNode(n)} reads a value computed before the decoder layers; with pipeline parallelism that value lives on another stage`);
    }
  const transformerOutput = head.inputs[0]!;
  if (transformerOutput !== last && !postMade.has(transformerOutput)) fail(`lm_head does not read the decoder layers' output`);
  return {
    pre: withFloating(pre),
    layers,
    post: withFloating(post),
    head,
    layerInput: layerInputs[0]!,
    layerOutputs,
    transformerOutput,
    ...(inputIds !== undefined && { inputIds }),
    ...(positionIds !== undefined && { positionIds }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Module trees

/** TensorRT-LLM layers the generated code instantiates for graph nodes. Custom linears and embeddings stay
 *  functional with plain Parameters: quantization swaps every Linear/Embedding module for a quantized one that
 *  expects quantized checkpoint tensors, which Kiln does not write for custom weights. */
export type ModuleKind = "attention" | "mlp" | "moe" | "norm" | "embedding";

export interface ModuleLeaf {
  readonly kind: "module";
  readonly module: ModuleKind;
  readonly node: Node;
  /** Parameter names the module registers, relative to it, in the node's input order. */
  readonly own: readonly string[];
}
export interface ParamLeaf {
  readonly kind: "param";
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly node: Node;
}
export interface Group {
  readonly kind: "group";
  readonly children: Map<string, Entry>;
}
export type Entry = ModuleLeaf | ParamLeaf | Group;

export const newGroup = (): Group => ({ kind: "group", children: new Map() });

/** Parameter names each TensorRT-LLM layer registers for a node (what `named_parameters()` lists under it). */
export function ownParams(module: ModuleKind, n: Node): string[] {
  const b = (on: unknown, name: string) => (on ? [name] : []);
  switch (module) {
    case "attention":
      return [
        "qkv.weight",
        ...b(n.attrs.qkvBias, "qkv.bias"),
        "dense.weight",
        ...b(n.attrs.denseBias, "dense.bias"),
        ...b(n.attrs.qkNorm, "q_layernorm.weight"),
        ...b(n.attrs.qkNorm, "k_layernorm.weight"),
      ];
    case "mlp": {
      const cols = n.op === "trtllm.gated_mlp" ? ["fc", "gate"] : ["fc"];
      return [...[...cols, "proj"].map((c) => `${c}.weight`), ...(n.attrs.bias ? [...cols, "proj"].map((c) => `${c}.bias`) : [])];
    }
    case "moe":
      // MixtureOfExperts: router, fc, proj (MOEWeightWrapper .weight); SharedMoE adds its MLP and gate.
      return [
        "router.weight",
        "fc.weight",
        "proj.weight",
        ...b(n.attrs.shared, "shared_expert.fc.weight"),
        ...b(n.attrs.shared, "shared_expert.proj.weight"),
        ...b(n.attrs.shared, "shared_expert_gate.weight"),
      ];
    case "norm":
      return ["weight", "bias"].slice(0, n.inputs.length - 1);
    case "embedding":
      return ["weight"];
  }
}

/** Input slots holding the module's parameters, parallel to ownParams. */
function paramSlots(module: ModuleKind, n: Node): number[] {
  const from = { attention: 2, mlp: 1, moe: 1, norm: 1, embedding: 0 }[module];
  const len = module === "embedding" ? 1 : n.inputs.length - from;
  return Array.from({ length: len }, (_, k) => from + k);
}

const TRTLLM_MODULES: Record<string, ModuleKind> = {
  "trtllm.attention": "attention",
  "trtllm.mlp": "mlp",
  "trtllm.gated_mlp": "mlp",
  "trtllm.moe": "moe",
};
const OPTIONAL_MODULES: Record<string, ModuleKind> = { rms_norm: "norm", layer_norm: "norm", embedding: "embedding" };
/** Embeddings TensorRT-LLM's passes know by name (prompt tuning, parallel and shared embeddings); others are glue. */
const EMBEDDING_SCOPES = new Set(["transformer.vocab_embedding", "transformer.position_embedding"]);

/** Attribute names of the generated classes and of TensorRT-LLM's Module that a checkpoint name must not take. */
export const MODULE_ATTRIBUTES: ReadonlySet<string> = TRTLLM_MODULE_ATTRIBUTES;

export interface ClassTree {
  /** Checkpoint-name prefix of this class's attributes ("transformer.layers.3." for a layer, "transformer." for the model). */
  readonly prefix: string;
  readonly root: Group;
  /** Module leaf created for a node, by node. */
  readonly moduleOf: Map<Node, readonly string[]>;
  /** Attribute path of each parameter read by a node of this class, by parameter name. */
  readonly paramPath: Map<string, readonly string[]>;
}

export function newClassTree(prefix: string): ClassTree {
  return { prefix, root: newGroup(), moduleOf: new Map(), paramPath: new Map() };
}

/** Adds a node's parameters to the class tree: as a TensorRT-LLM layer when the node is one (or can be one with
 *  exactly its names), else as plain Parameters read by functional code. `reserved` are the class's own attributes. */
export function addNode(t: ClassTree, g: Graph, n: Node, reserved: ReadonlySet<string>): void {
  const names = new Map(g.params.map((p) => [p.value, p.name]));
  const rel = (name: string, what: string) => {
    if (!name.startsWith(t.prefix) || name.length === t.prefix.length)
      fail(`${describeNode(n)} reads parameter '${name}', which is not under '${t.prefix}' where the code that reads it lives (${what})`);
    const path = name.slice(t.prefix.length).split(".");
    if (path.some((s) => s === "")) fail(`parameter '${name}' has an empty name segment`);
    return path;
  };
  const trt = TRTLLM_MODULES[n.op];
  const optional = n.op !== "embedding" || EMBEDDING_SCOPES.has(n.scope) ? OPTIONAL_MODULES[n.op] : undefined;
  const module = trt ?? optional;
  if (module) {
    const own = ownParams(module, n);
    const slots = paramSlots(module, n);
    const fits = n.scope.startsWith(t.prefix) && n.scope.length > t.prefix.length && slots.every((s, k) => names.get(n.inputs[s]!) === `${n.scope}.${own[k]}`);
    if (trt && !fits)
      fail(`${describeNode(n)}: its parameters are not named ${n.scope}.{${own.join(",")}} as TensorRT-LLM's ${n.op.slice(7)} layer registers them`);
    if (fits) {
      const path = rel(n.scope, "module");
      insert(t, path, { kind: "module", module, node: n, own }, `${n.scope}.${own[0]}`, reserved);
      t.moduleOf.set(n, path);
      own.forEach((o, k) => t.paramPath.set(names.get(n.inputs[slots[k]!]!)!, [...path, ...o.split(".")]));
      return;
    }
  }
  for (const v of n.inputs) {
    const name = names.get(v);
    if (name === undefined || t.paramPath.has(name)) continue;
    const path = rel(name, "parameter");
    const type = g.values.get(v)!;
    const shape = type.shape as Shape;
    if (shape.some((d) => typeof d !== "number")) fail(`parameter '${name}' has a symbolic shape`);
    if (!reachesModuleParam(t.root, path)) insert(t, path, { kind: "param", shape: shape as number[], dtype: type.dtype, node: n }, name, reserved);
    t.paramPath.set(name, path);
  }
}

/** True when `path` names a parameter that a module leaf on the way already registers (e.g. a tied weight). */
function reachesModuleParam(root: Group, path: readonly string[]): boolean {
  let cur: Entry = root;
  for (const [k, seg] of path.entries()) {
    if (cur.kind === "module") return cur.own.includes(path.slice(k).join("."));
    if (cur.kind !== "group") return false;
    const next = cur.children.get(seg);
    if (!next) return false;
    cur = next;
  }
  return false;
}

function insert(t: ClassTree, path: readonly string[], leaf: ModuleLeaf | ParamLeaf, tensor: string, reserved: ReadonlySet<string>): void {
  if (reserved.has(path[0]!) || path.some((s) => MODULE_ATTRIBUTES.has(s)))
    fail(
      `tensor '${tensor}' needs the attribute '${path.find((s) => reserved.has(s) || MODULE_ATTRIBUTES.has(s))}', which the generated module class uses itself; rename that module field`,
    );
  for (const seg of path) {
    const why = reservedAttribute(seg, "trtllm");
    if (why) fail(`tensor '${tensor}' needs the attribute '${seg}' in a generated module class, but ${why}; rename that module field`);
  }
  let cur = t.root;
  for (const [k, seg] of path.entries()) {
    const existing = cur.children.get(seg);
    if (k === path.length - 1) {
      if (existing) fail(`tensor '${tensor}' clashes with another parameter or module at '${t.prefix}${path.join(".")}'`);
      cur.children.set(seg, leaf);
      return;
    }
    if (existing === undefined) {
      const grp = newGroup();
      cur.children.set(seg, grp);
      cur = grp;
    } else if (existing.kind === "group") cur = existing;
    else
      fail(
        `tensor '${tensor}' would live inside ${existing.kind === "module" ? `the ${existing.module} layer` : "the parameter"} '${t.prefix}${path.slice(0, k + 1).join(".")}'`,
      );
  }
}

/** Every parameter name the tree registers, in creation order (depth first). */
export function treeParamNames(root: Group, prefix: string): string[] {
  const out: string[] = [];
  const walk = (g: Group, at: string) => {
    for (const [name, e] of g.children) {
      const here = `${at}${name}`;
      if (e.kind === "group") walk(e, `${here}.`);
      else if (e.kind === "param") out.push(here);
      else out.push(...e.own.map((o) => `${here}.${o}`));
    }
  };
  walk(root, prefix);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoder-layer structure

/** A numeric attribute that may differ between layers without changing the code's structure: an attribute of `node`
 *  (input -1) or the scalar constant `node` reads at `input`. */
export interface Slot {
  readonly node: Node;
  readonly input: number;
  readonly kind: "q_scaling" | "eps" | "constant";
  readonly value: number;
}

export interface LayerPlan {
  readonly index: number;
  readonly nodes: readonly Node[];
  readonly tree: ClassTree;
  readonly signature: readonly string[];
  readonly slots: readonly Slot[];
  readonly readsPositions: boolean;
}

/** TensorRT-LLM's q_scaling for a softmax scale: scale = 1 / (q_scaling * sqrt(head_dim)). Values within 1e-9 of an
 *  integer are snapped to it, so the default scale gives exactly 1.0 and GPT-2's inverse-layer scaling gives i + 1. */
export function qScaling(scale: number, headDim: number): number {
  const q = 1 / (scale * Math.sqrt(headDim));
  const r = Math.round(q);
  return Math.abs(q - r) <= 1e-9 * Math.max(1, Math.abs(q)) ? r : q;
}

const SLOT_ATTRS: Record<string, { attr: string; kind: Slot["kind"] }> = {
  "trtllm.attention": { attr: "scale", kind: "q_scaling" },
  rms_norm: { attr: "eps", kind: "eps" },
  layer_norm: { attr: "eps", kind: "eps" },
};

export function planLayer(g: Graph, p: Partition, index: number, reserved: ReadonlySet<string>): LayerPlan {
  const nodes = p.layers[index]!;
  const prefix = `transformer.layers.${index}.`;
  const tree = newClassTree(prefix);
  for (const n of nodes) addNode(tree, g, n, reserved);
  const input = index === 0 ? p.layerInput : p.layerOutputs[index - 1]!;
  const paramName = new Map(g.params.map((q) => [q.value, q.name]));
  const producer = new Map<ValueId, string>();
  nodes.forEach((n, k) => n.outputs.forEach((o, j) => producer.set(o, `#${k}.${j}`)));
  const constant = new Map(g.nodes.filter((n) => n.op === "constant").map((n) => [n.outputs[0]!, n]));
  const slots: Slot[] = [];
  let readsPositions = false;
  const signature = nodes.map((n) => {
    const args = n.inputs.map((v, k) => {
      const c = constant.get(v);
      if (c) {
        slots.push({ node: n, input: k, kind: "constant", value: c.attrs.value as number });
        return `constant ${c.attrs.dtype as string}`;
      }
      if (v === input) return "x";
      if (v === p.positionIds) {
        if (n.op !== "trtllm.attention") readsPositions = true;
        return "pos";
      }
      const name = paramName.get(v);
      if (name !== undefined) return `param ${name.slice(prefix.length)} ${JSON.stringify(g.values.get(v)!.shape)}`;
      return producer.get(v)!;
    });
    const slot = SLOT_ATTRS[n.op];
    const attrs = { ...n.attrs };
    // A sliding window is a runtime setting (per-layer max_attention_window_size); the layer class is the same.
    if (n.op === "trtllm.attention") delete attrs.window;
    if (slot) {
      delete attrs[slot.attr];
      const raw = n.attrs[slot.attr] as number;
      slots.push({ node: n, input: -1, kind: slot.kind, value: slot.kind === "q_scaling" ? qScaling(raw, n.attrs.headDim as number) : raw });
    }
    const scope = n.scope.startsWith(prefix) ? n.scope.slice(prefix.length) : "";
    return JSON.stringify([n.op, scope, args, attrs, n.outputs.map((o) => g.values.get(o)!.shape)]);
  });
  return { index, nodes, tree, signature, slots, readsPositions };
}

/** Throws naming the first layer whose structure differs from layer 0's. */
export function checkSameStructure(plans: readonly LayerPlan[]): void {
  const [first, ...rest] = plans;
  for (const p of rest) {
    const k = p.signature.findIndex((s, i) => s !== first!.signature[i]);
    const at = k >= 0 ? k : p.signature.length !== first!.signature.length ? Math.min(p.signature.length, first!.signature.length) : -1;
    if (at < 0) continue;
    const mine = p.nodes[at];
    const theirs = first!.nodes[at];
    const what =
      mine && theirs
        ? `${describeNode(mine)} vs layer 0's ${describeNode(theirs)}: ${firstDifference(p.signature[at]!, first!.signature[at]!)}`
        : `it has ${p.nodes.length} ops, layer 0 has ${first!.nodes.length}`;
    fail(
      `decoder layer ${p.index} differs in structure from layer 0 at op ${at} (${what}); TensorRT-LLM builds every layer of a DecoderLayerList with one class`,
    );
  }
}

function firstDifference(a: string, b: string): string {
  const [x, y] = [JSON.parse(a) as unknown[], JSON.parse(b) as unknown[]];
  const labels = ["op", "scope", "inputs", "attributes", "output shapes"];
  const k = x.findIndex((v, i) => JSON.stringify(v) !== JSON.stringify(y[i]));
  return `${labels[k]} ${JSON.stringify(x[k])} vs ${JSON.stringify(y[k])}`;
}

export const locText = (loc: SourceLoc | undefined): string | undefined => (loc ? `${loc.file}:${loc.line}` : undefined);

/** How a layer's numeric slot is read: inline (`uniform`, the same in every layer) or from a per-layer config list. */
export interface SlotUse {
  /** Config field holding one value per layer, when the values differ. */
  readonly field?: string;
  /** Layer 0's value (the only value when `field` is absent). */
  readonly uniform: number;
}

/** Per-layer numeric attributes: shared values are written inline, differing ones become config lists. */
export function layerConfigFields(
  layers: readonly LayerPlan[],
  fields: Namespace,
): { slotUse: Map<Node, Map<number, SlotUse>>; configFields: Record<string, JsonValue> } {
  const slotUse = new Map<Node, Map<number, SlotUse>>();
  const configFields: Record<string, JsonValue> = {};
  let constants = 0;
  layers[0]!.slots.forEach((slot, k) => {
    const values = layers.map((l) => l.slots[k]!.value);
    const uses = slotUse.get(slot.node) ?? new Map<number, SlotUse>();
    slotUse.set(slot.node, uses);
    if (values.every((v) => Object.is(v, values[0]))) {
      uses.set(slot.input, { uniform: values[0]! });
      return;
    }
    const base =
      slot.kind === "q_scaling"
        ? "q_scaling"
        : slot.kind === "eps"
          ? `${(layers[0]!.tree.moduleOf.get(slot.node) ?? ["norm"]).join("_")}_eps`
          : `layer_constant_${constants++}`;
    const field = fields.create(base);
    configFields[field] = values;
    uses.set(slot.input, { field, uniform: values[0]! });
  });
  return { slotUse, configFields };
}
