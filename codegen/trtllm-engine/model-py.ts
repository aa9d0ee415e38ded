// model.py for a custom architecture on TensorRT-LLM 1.2.1's TensorRT-engine flow: a PretrainedConfig subclass, one
// decoder-layer class built from tensorrt_llm.layers (Attention with the GPT attention plugin, MLP/GatedMLP,
// RmsNorm/LayerNorm, Embedding) plus tensorrt_llm.functional for the remaining glue, the transformer (embeddings on
// the first pipeline stage, DecoderLayerList, final norm on the last, recv/send between stages), the
// DecoderModelForCausalLM with its lm_head, and the MODEL_MAP registration that `trtllm-build --model_cls_file` and
// `PretrainedConfig.from_json_file` need (TensorRT-LLM issue #2430).
// Invariants: the module tree registers exactly the lowered graph's parameter names (see expectedParameterNames);
// output is byte-identical for the same input; every user string reaches Python through codegen/python/identifiers;
// the file imports only from tensorrt_llm. Exact (erf) GELU is emitted with functional ops (an erf accurate to
// 1.5e-7) because TensorRT-LLM's activations only have the tanh form; see model-py-ops.ts.

import type { JsonValue } from "../../src/ir/attrs.ts";
import type { DType } from "../../src/ir/dtype.ts";
import { liveNodes, type Graph, type Node, type ValueId } from "../../src/ir/graph.ts";
import { stageLayers } from "../../src/lower/mapping.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { isPlainAttribute, Namespace, pascalCase, pyFloat, pyInt, pyString } from "../python/identifiers.ts";
import { Imports, PyWriter } from "../python/writer.ts";
import { customOpGlue } from "./custom-ops.ts";
import { pretrainedConfig } from "./pretrained-config.ts";
import { argReader, emitNodeStatements, type StatementBody, type Val } from "../common/emit-nodes.ts";
import { glueRuleFor, HELPERS, type HelperName, type OpArg, orderedHelpers } from "./model-py-ops.ts";
import {
  addNode,
  type ClassTree,
  layerConfigFields,
  type SlotUse,
  checkSameStructure,
  type Entry,
  fail,
  type Group,
  type LayerPlan,
  locText,
  type ModuleLeaf,
  newClassTree,
  type Partition,
  partition,
  planLayer,
  treeParamNames,
} from "../common/model-py-plan.ts";

export { ModelPyError } from "../common/model-py-plan.ts";

export interface ModelPyOptions {
  /** The DSL model's name (user input): class names derive from it. */
  readonly modelName: string;
  /** The DSL file, for the header comment. */
  readonly dslFile?: string;
}

export interface ModelPy {
  readonly source: string;
  /** The DecoderModelForCausalLM subclass (`--model_cls_name`). */
  readonly className: string;
  /** The MODEL_MAP key config.json's `architecture` must hold. */
  readonly architecture: string;
  /** Custom config.json keys the Config class reads (next to the standard PretrainedConfig keys). */
  readonly configFields: Record<string, JsonValue>;
}

const LAYER_ATTRS = new Set(["config", "layer_idx", "local_layer_idx"]);
const MODEL_ATTRS = new Set(["config", "mapping", "layers"]);
const ACT_NAMES: Record<string, string> = { silu: "silu", relu: "relu", gelu_tanh: "gelu" };
const DTYPE_NAMES: Record<DType, string> = { f32: "float32", f16: "float16", bf16: "bfloat16", i32: "int32", bool: "bool" };

/** Standard PretrainedConfig values (as pretrained-config.ts writes them); code reads config.<key> where they match. */
type Std = Record<string, JsonValue>;

interface Plan {
  readonly g: Graph;
  readonly part: Partition;
  readonly layers: readonly LayerPlan[];
  /** Per slot of layer 0, by node and input (-1: the node's own attribute): a config field when the values differ
   *  between layers, else the shared value. */
  readonly slotUse: ReadonlyMap<Node, ReadonlyMap<number, SlotUse>>;
  readonly configFields: Record<string, JsonValue>;
  readonly pre: ClassTree;
  readonly post: ClassTree;
  readonly std: Std;
  readonly live: ReadonlySet<Node>;
}

function buildPlan(low: LoweredModel): Plan {
  const g = low.graph;
  const part = partition(g);
  if (part.layers.length !== low.numLayers) fail(`lowered model says ${low.numLayers} layers but the graph has ${part.layers.length}`);
  const layers = part.layers.map((_, i) => planLayer(g, part, i, LAYER_ATTRS));
  checkSameStructure(layers);
  const std = pretrainedConfig(low, "Kiln", undefined, { dtype: "float16", mapping: { tp: 1, pp: 1 }, hf: {} });
  // Per-layer numeric attributes: shared values are written inline, differing ones become config lists.
  const fields = new Namespace([...PRETRAINED_CONFIG_KEYS, ...SOFTCAP_CONFIG_KEYS]);
  const { slotUse, configFields: layerFields } = layerConfigFields(layers, fields);
  const configFields = { ...layerFields, ...finalSoftcapFields(g, part) };
  const pre = newClassTree("transformer.");
  const post = newClassTree("transformer.");
  for (const n of part.pre) addNode(pre, g, n, MODEL_ATTRS);
  for (const n of part.post) addNode(post, g, n, MODEL_ATTRS);
  const shared = [...post.paramPath.keys()].find((p) => pre.paramPath.has(p)) ?? [...post.root.children.keys()].find((k) => pre.root.children.has(k));
  if (shared)
    fail(
      `'${shared}' is used both before and after the decoder layers; with pipeline parallelism those run on different stages, so give each its own parameter`,
    );
  return { g, part, layers, slotUse, configFields, pre, post, std, live: liveNodes(g) };
}

/**
 * Final-logit soft-capping: TensorRT-LLM 1.2.1's DecoderModelForCausalLM.forward caps lm_head's logits itself when the
 * config has every key of Gemma2ConfigGroup (query_pre_attn_scalar, final_logit_softcapping, attn_logit_softcapping;
 * models/modeling_utils.py @ b35ac1b6), so model.py writes those keys rather than glue after lm_head. The values are the
 * model's own: 1 / scale^2 of layer 0's attention and its logit cap (null when it has none).
 */
function finalSoftcapFields(g: Graph, part: Partition): Record<string, JsonValue> {
  const cap = part.head.attrs.softcap;
  if (!cap) return {};
  const att = part.layers[0]!.find((n) => n.op === "trtllm.attention");
  const scale = att?.attrs.scale as number | undefined;
  const attnCap = att?.attrs.softcap as number | undefined;
  if (!scale) fail(`graph '${g.name}': final-logit soft-capping needs decoder layers with attention`);
  return { query_pre_attn_scalar: 1 / (scale! * scale!), final_logit_softcapping: cap, attn_logit_softcapping: attnCap || null };
}

/** The config keys of finalSoftcapFields (fixed names: TensorRT-LLM reads them). */
const SOFTCAP_CONFIG_KEYS = ["query_pre_attn_scalar", "final_logit_softcapping", "attn_logit_softcapping"];

/** PretrainedConfig attributes and the keys pretrained-config.ts writes: custom fields must not take these names. */
const PRETRAINED_CONFIG_KEYS = [
  "architecture",
  "dtype",
  "logits_dtype",
  "vocab_size",
  "hidden_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "head_size",
  "intermediate_size",
  "hidden_act",
  "norm_epsilon",
  "position_embedding_type",
  "max_position_embeddings",
  "rotary_base",
  "rotary_scaling",
  "rotary_pct",
  "rotary_dim",
  "rotary_embedding_dim",
  "mapping",
  "quantization",
  "use_parallel_embedding",
  "embedding_sharding_dim",
  "qk_layernorm",
  "runtime_defaults",
  "quant_mode",
  "quant_algo",
  "kv_dtype",
  "attn_bias",
  "mlp_bias",
  "bias",
];

// ---------------------------------------------------------------------------------------------------------------

interface Names {
  readonly stem: string;
  readonly config: string;
  readonly group: string;
  readonly erfMlp: string;
  readonly layer: string;
  readonly model: string;
  readonly causalLm: string;
}

/** Attribute access along a path; segments that are not plain identifiers go through getattr with a str literal. */
function attrChain(base: string, path: readonly string[]): string {
  return path.reduce((acc, seg) => (isPlainAttribute(seg) ? `${acc}.${seg}` : `getattr(${acc}, ${pyString(seg)})`), base);
}

/** `self.<path> = callee(args)`, through setattr when the last segment is not a plain identifier. */
function assignCall(w: PyWriter, path: readonly string[], callee: string, args: readonly string[]): void {
  const parent = attrChain("self", path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (isPlainAttribute(last)) w.call(`${parent}.${last} = ${callee}`, args);
  else w.call(`setattr(${parent}, ${pyString(last)}, ${callee}`, args, ")");
}

class Emitter {
  readonly imports = new Imports();
  readonly helpers = new Set<HelperName>();
  usesGroup = false;
  usesErfMlp = false;

  constructor(
    readonly plan: Plan,
    readonly names: Names,
  ) {}

  F(name: string): string {
    this.imports.use("tensorrt_llm", "functional", "F");
    return `F.${name}`;
  }

  /** Registers a module-level helper (and its dependencies); helpers use `F`. */
  helper(name: HelperName): string {
    this.imports.use("tensorrt_llm", "functional", "F");
    this.helpers.add(name);
    HELPERS[name].deps.forEach((d) => this.helper(d));
    return name;
  }

  layerCls(name: string): string {
    return this.imports.use("tensorrt_llm.layers", name);
  }

  /** `config.<key>` when the standard config value equals `n`, else the literal. */
  size(n: number, key: string): string {
    return this.plan.std[key] === n ? `config.${key}` : pyInt(n);
  }

  dtypeExpr(d: DType, cfg: string): string {
    const model = this.plan.g.values.get(this.plan.g.params[0]!.value)!.dtype;
    return d === model ? `${cfg}.dtype` : pyString(DTYPE_NAMES[d]);
  }

  // --- module constructors --------------------------------------------------------------------------------

  /** [callee, keyword arguments] that create the TensorRT-LLM layer for a module leaf. */
  moduleCtor(leaf: ModuleLeaf, inLayer: boolean): [string, string[]] {
    const n = leaf.node;
    const g = this.plan.g;
    const shape = (k: number) => g.values.get(n.inputs[k]!)!.shape as number[];
    const tp = (reduce: unknown) => (reduce === "layer" ? ["tp_group=None"] : ["tp_group=config.mapping.tp_group"]);
    const use = this.plan.slotUse.get(n)?.get(-1);
    switch (leaf.module) {
      case "attention": {
        if (!inLayer) fail(`trtllm.attention in ${n.scope} is outside the decoder layers`);
        const a = n.attrs;
        const rope = a.rope !== "none";
        if (rope && Math.trunc((a.headDim as number) * ((a.rotaryDim as number) / (a.headDim as number))) !== a.rotaryDim)
          fail(`${n.scope}: rotary dim ${a.rotaryDim} of head dim ${a.headDim} does not survive TensorRT-LLM's int(head_size * rotary_pct)`);
        return [
          this.layerCls("Attention"),
          [
            "local_layer_idx=self.local_layer_idx",
            "hidden_size=config.hidden_size",
            "attention_head_size=config.head_size",
            "num_attention_heads=config.num_attention_heads",
            "num_kv_heads=config.num_key_value_heads",
            "max_position_embeddings=config.max_position_embeddings",
            "dtype=config.dtype",
            `attention_mask_type=${this.layerCls("AttentionMaskType")}.causal`,
            `bias=${a.qkvBias ? "True" : "False"}`,
            `dense_bias=${a.denseBias ? "True" : "False"}`,
            // QK-norm: per-head RmsNorm of q and k before rotary; weights q_layernorm / k_layernorm of size head_dim.
            ...(a.qkNorm
              ? [
                  "qk_layernorm=True",
                  `layernorm_type=${this.imports.use("tensorrt_llm.functional", "LayerNormType")}.RmsNorm`,
                  `eps=${pyFloat(a.qkNormEps as number)}`,
                ]
              : []),
            // Attention-logit soft-capping: the plugin's attn_logit_softcapping_scale (models/gemma/model.py passes
            // config.attn_logit_softcapping as max_attn_value).
            ...(a.softcap ? [`max_attn_value=${pyFloat(a.softcap as number)}`] : []),
            "position_embedding_type=config.position_embedding_type",
            ...(rope
              ? ["rotary_embedding_base=config.rotary_base", "rotary_embedding_scaling=config.rotary_scaling", "rotary_embedding_percentage=config.rotary_pct"]
              : []),
            `q_scaling=${use?.field ? `config.${use.field}[layer_idx]` : pyFloat(use!.uniform)}`,
            ...tp(a.reduce),
            "tp_size=config.mapping.tp_size",
            "tp_rank=config.mapping.tp_rank",
            "quant_mode=config.quant_mode",
          ],
        ];
      }
      case "mlp": {
        const gated = n.op === "trtllm.gated_mlp";
        const ffn = shape(1)[0]!;
        const act = n.attrs.act as string;
        const common = [`hidden_size=${this.size(shape(1)[1]!, "hidden_size")}`, `ffn_hidden_size=${this.size(ffn, "intermediate_size")}`];
        const tail = [`bias=${n.attrs.bias ? "True" : "False"}`, "dtype=config.dtype", ...tp(n.attrs.reduce), "tp_size=config.mapping.tp_size"];
        if (act === "gelu") {
          this.usesErfMlp = true;
          this.helper("_kiln_gelu_erf");
          return [this.names.erfMlp, [...common, `gated=${gated ? "True" : "False"}`, ...tail]];
        }
        const name = ACT_NAMES[act] ?? fail(`${n.scope}: activation '${act}' has no TensorRT-LLM name`);
        const actExpr = this.plan.std.hidden_act === name ? "config.hidden_act" : pyString(name);
        return [this.layerCls(gated ? "GatedMLP" : "MLP"), [...common, `hidden_act=${actExpr}`, ...tail, "quant_mode=config.quant_mode"]];
      }
      case "moe": {
        // tensorrt_llm/layers/moe.py @ c388fec7: MOE(moe_config, hidden_size, ffn_hidden_size, hidden_act, mapping, ...);
        // SharedMoE adds the shared expert (width moe_config.shared_expert_intermediate_size) and its sigmoid gate.
        if (!inLayer) fail(`trtllm.moe in ${n.scope} is outside the decoder layers`);
        const a = n.attrs;
        const moeConfig = this.imports.use("tensorrt_llm.layers", "MoeConfig");
        const mode = `${moeConfig}.ExpertScaleNormalizationMode.${a.normalization === "renormalize" ? "RENORMALIZE" : "NONE"}`;
        const cfg = [
          `num_experts=${pyInt(a.numExperts as number)}`,
          `top_k=${pyInt(a.topK as number)}`,
          `normalization_mode=${mode}`,
          ...(a.shared ? [`shared_expert_intermediate_size=${pyInt(shape(4)[0]! / 2)}`] : []),
        ];
        return [
          // SharedMoE is not re-exported by the manifest's tensorrt_llm/layers/__init__.py; its module has it.
          a.shared ? this.imports.use("tensorrt_llm.layers.moe", "SharedMoE") : this.layerCls("MOE"),
          [
            `moe_config=${moeConfig}(${cfg.join(", ")})`,
            `hidden_size=${this.size(shape(2)[2]!, "hidden_size")}`,
            `ffn_hidden_size=${pyInt(shape(2)[1]! / 2)}`,
            `hidden_act=${pyString("swiglu")}`,
            "mapping=config.mapping",
            "bias=False",
            "dtype=config.dtype",
            "tp_group=config.mapping.tp_group",
            "tp_size=config.mapping.tp_size",
            "quant_mode=config.quant_mode",
            ...(a.shared ? ["use_shared_gate=True"] : []),
          ],
        ];
      }
      case "norm": {
        const rms = n.op === "rms_norm";
        const dim = g.values.get(n.inputs[0]!)!.shape.at(-1) as number;
        const value = use?.uniform ?? (n.attrs.eps as number);
        const eps = use?.field ? `config.${use.field}[layer_idx]` : value === this.plan.std.norm_epsilon ? "config.norm_epsilon" : pyFloat(value);
        const affine = n.inputs.length > 1 ? [] : ["elementwise_affine=False"];
        const bias = !rms && n.inputs.length === 2 ? ["bias=False"] : [];
        return [
          this.layerCls(rms ? "RmsNorm" : "LayerNorm"),
          [`normalized_shape=${this.size(dim, "hidden_size")}`, `eps=${eps}`, ...affine, ...bias, "dtype=config.dtype"],
        ];
      }
      case "embedding": {
        const [rows, cols] = shape(0) as [number, number];
        const rowKey = leaf.node.scope === "transformer.position_embedding" ? "max_position_embeddings" : "vocab_size";
        return [this.layerCls("Embedding"), [this.size(rows, rowKey), this.size(cols, "hidden_size"), "dtype=config.dtype"]];
      }
    }
  }

  /** __init__ statements creating a class tree's attributes (groups first, then their children). */
  emitTree(w: PyWriter, root: Group, inLayer: boolean): void {
    let lastLoc: string | undefined;
    const walk = (grp: Group, path: string[]) => {
      for (const [name, e] of grp.children) {
        const here = [...path, name];
        const loc = e.kind === "group" ? undefined : locText(e.node.loc);
        if (loc && loc !== lastLoc) {
          w.comment(loc);
          lastLoc = loc;
        }
        this.emitEntry(w, e, here, inLayer);
        if (e.kind === "group") walk(e, here);
      }
    };
    walk(root, []);
  }

  private emitEntry(w: PyWriter, e: Entry, path: string[], inLayer: boolean): void {
    if (e.kind === "group") {
      this.usesGroup = true;
      assignCall(w, path, this.names.group, []);
    } else if (e.kind === "param") {
      const shape = e.shape.length === 1 ? `(${e.shape[0]},)` : `(${e.shape.join(", ")})`;
      assignCall(w, path, this.imports.use("tensorrt_llm", "Parameter"), [`shape=${shape}`, `dtype=${this.dtypeExpr(e.dtype, "config")}`]);
    } else {
      const [callee, args] = this.moduleCtor(e, inLayer);
      assignCall(w, path, callee, args);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// forward() bodies

interface Body extends StatementBody {
  readonly tree: ClassTree;
  readonly inLayer: boolean;
  readonly partial: Set<ValueId>;
  readonly reduced: Map<ValueId, string>;
}

function emitNodes(em: Emitter, b: Body, nodes: readonly Node[]): void {
  const g = em.plan.g;
  const argOf = argReader(b, {
    g,
    tree: b.tree,
    slotUse: em.plan.slotUse,
    layerField: (field) => `self.config.${field}[self.layer_idx]`,
    paramExpr: (path) => `${attrChain("self", path)}.value`,
  });
  // A residual add of two partial sums stays partial (GPT-J's parallel block reduces once, after the add).
  const keepsPartial = (n: Node) => n.op === "add" && n.inputs.every((v) => b.partial.has(v));
  emitNodeStatements(b, nodes, {
    live: em.plan.live,
    args: (n) => n.inputs.map((v, k) => (b.partial.has(v) && !keepsPartial(n) ? reduceValue(em, b, v) : argOf(v, n, k))),
    modulePath: (n) => b.tree.moduleOf.get(n),
    moduleCall: (n, path, args, out) => emitModuleCall(b, n, path, args, out),
    glue: (n, args, loc) => {
      const rule =
        glueRuleFor(n.op) ??
        customOpGlue(n.op, em.imports) ??
        fail(`${n.op} at ${loc ?? n.scope}: no TensorRT-LLM translation for this op (custom ops need a TensorRT-LLM plugin)`);
      const use = em.plan.slotUse.get(n)?.get(-1);
      return rule({
        node: n,
        args: n.inputs.map((v, k) => ({ ...args[k]!, shape: g.values.get(v)!.shape, dtype: g.values.get(v)!.dtype }) satisfies OpArg),
        outShapes: n.outputs.map((o) => g.values.get(o)!.shape),
        F: (name) => em.F(name),
        helper: (name) => em.helper(name),
        ...(use?.field && { slot: `self.config.${use.field}[self.layer_idx]` }),
        dtype: (d) => em.dtypeExpr(d, "self.config"),
      });
    },
    bound: (n) => {
      if ((n.op.startsWith("trtllm.") && n.attrs.reduce === "layer") || keepsPartial(n)) n.outputs.forEach((o) => b.partial.add(o));
    },
  });
}

/** The all-reduced copy of a partial sum (attention/MLP with reduce=layer: GPT-J's single all-reduce). */
function reduceValue(em: Emitter, b: Body, v: ValueId): Val {
  const done = b.reduced.get(v);
  if (done) return { expr: done, literal: false };
  const src = b.env.get(v)!.expr;
  const name = b.vars.create(`${src}_reduced`);
  b.w.line(`${name} = ${src}`);
  b.w.block("if self.config.mapping.tp_size > 1:", () => b.w.call(`${name} = ${em.F("allreduce")}`, [name, "self.config.mapping.tp_group"]));
  b.reduced.set(v, name);
  return { expr: name, literal: false };
}

function emitModuleCall(b: Body, n: Node, path: readonly string[], args: readonly Val[], out: string): void {
  const mod = attrChain("self", path);
  const x = args[n.op === "embedding" ? 1 : 0]!.expr;
  if (n.op === "trtllm.attention") {
    b.w.call(`${out} = ${mod}`, [
      x,
      "attention_mask=attention_mask",
      "use_cache=use_cache",
      "kv_cache_params=kv_cache_params",
      "attention_params=attention_params",
      "lora_layer_params=lora_layer_params",
      "spec_decoding_params=spec_decoding_params",
    ]);
    b.w.block("if use_cache:", () => b.w.line(`${out}, presents = ${out}`));
  } else if (((n.op === "trtllm.mlp" || n.op === "trtllm.gated_mlp") && n.attrs.act !== "gelu") || n.op === "trtllm.moe") {
    b.w.call(`${out} = ${mod}`, [x, "lora_layer_params=lora_layer_params"]);
  } else if (n.op === "embedding" && !b.inLayer && path.join(".") === "vocab_embedding") {
    b.w.call(`${out} = ${mod}`, [x, "*ptuning_args"]);
  } else b.w.call(`${out} = ${mod}`, [x]);
}

// ---------------------------------------------------------------------------------------------------------------
// The classes of model.py

function emitConfig(em: Emitter): PyWriter {
  const w = new PyWriter();
  const base = em.imports.use("tensorrt_llm.models.modeling_utils", "PretrainedConfig");
  const custom = Object.keys(em.plan.configFields);
  const layerLists = custom.filter((f) => !SOFTCAP_CONFIG_KEYS.includes(f));
  w.block(`class ${em.names.config}(${base}):`, () => {
    w.docstring([
      `PretrainedConfig of ${em.names.causalLm}.`,
      "",
      "The rotary settings are read by name (as LLaMAConfig does), so the",
      "Attention layers and the RoPE tables of DecoderModelForCausalLM agree.",
      ...(layerLists.length ? ["Per-layer lists, indexed by the global layer index:", ...layerLists.map((f) => `${f}.`)] : []),
      ...(custom.some((f) => SOFTCAP_CONFIG_KEYS.includes(f))
        ? ["query_pre_attn_scalar, final_logit_softcapping and attn_logit_softcapping", "make DecoderModelForCausalLM soft-cap the logits (Gemma2ConfigGroup)."]
        : []),
    ]);
    w.blank();
    w.blockCall("def __init__", ["self", "*", ...ROTARY.map(([k, v]) => `${k}=${v}`), ...custom, "**kwargs"], () => {
      for (const f of [...ROTARY.map(([k]) => k), ...custom]) w.line(`self.${f} = ${f}`);
      w.line("super().__init__(**kwargs)");
    });
  });
  return w;
}

const ROTARY: readonly (readonly [string, string])[] = [
  ["rotary_base", "10000.0"],
  ["rotary_scaling", "None"],
  ["rotary_pct", "1.0"],
];

function emitGroup(em: Emitter): PyWriter {
  const w = new PyWriter();
  w.block(`class ${em.names.group}(${em.imports.use("tensorrt_llm.module", "Module")}):`, () => {
    w.docstring(["Container that gives nested custom parameters their checkpoint names."]);
    w.blank();
    w.block("def __init__(self):", () => w.line("super().__init__()"));
  });
  return w;
}

function emitErfMlp(em: Emitter): PyWriter {
  const w = new PyWriter();
  const col = em.layerCls("ColumnLinear");
  const row = em.layerCls("RowLinear");
  const tensor = em.imports.use("tensorrt_llm.functional", "Tensor");
  w.block(`class ${em.names.erfMlp}(${em.imports.use("tensorrt_llm.module", "Module")}):`, () => {
    w.docstring([
      "proj(gelu(fc(x)) [* gate(x)]) with the exact (erf) GELU.",
      "",
      "TensorRT-LLM's MLP and GatedMLP only know the tanh approximation under",
      "the name 'gelu'; this keeps their parameter names and tensor-parallel",
      "layout (fc and gate column-parallel, proj row-parallel).",
    ]);
    w.blank();
    w.blockCall("def __init__", ["self", "hidden_size", "ffn_hidden_size", "gated", "bias", "dtype", "tp_group", "tp_size"], () => {
      const cols = ["hidden_size", "ffn_hidden_size", "bias=bias", "dtype=dtype", "tp_group=tp_group", "tp_size=tp_size", "gather_output=False"];
      w.line("super().__init__()");
      w.call(`self.fc = ${col}`, cols);
      w.line("self.gate = None");
      w.block("if gated:", () => w.call(`self.gate = ${col}`, cols));
      w.call(`self.proj = ${row}`, ["ffn_hidden_size", "hidden_size", "bias=bias", "dtype=dtype", "tp_group=tp_group", "tp_size=tp_size"]);
    });
    w.blank();
    w.block(`def forward(self, hidden_states: ${tensor}):`, () => {
      w.line(`inter = ${em.helper("_kiln_gelu_erf")}(self.fc(hidden_states))`);
      w.block("if self.gate is not None:", () => w.line("inter = inter * self.gate(hidden_states)"));
      w.line("return self.proj(inter)");
    });
  });
  return w;
}

function newBody(em: Emitter, w: PyWriter, tree: ClassTree, params: readonly string[], inLayer: boolean): Body {
  const vars = new Namespace([
    ...params.map((p) => p.split(/[:=]/)[0]!.replace(/^\*+/, "").trim()),
    ...FUNCTION_LOCALS,
    "F",
    "Tensor",
    ...Object.keys(HELPERS),
    ...Object.values(em.names),
  ]);
  return { w, vars, env: new Map(), tree, inLayer, bindAs: new Map(), partial: new Set(), reduced: new Map() };
}

const FUNCTION_LOCALS = [
  "self",
  "config",
  "presents",
  "ptuning_args",
  "layers_range",
  "tp_size",
  "vocab_size",
  "vocab_size_padded",
  "transformer",
  "lm_head",
  "inter",
];

function emitLayer(em: Emitter): PyWriter {
  const { plan, names } = em;
  const l0 = plan.layers[0]!;
  const readsPositions = plan.layers.some((l) => l.readsPositions);
  const w = new PyWriter();
  const tensor = em.imports.use("tensorrt_llm.functional", "Tensor");
  w.block(`class ${names.layer}(${em.imports.use("tensorrt_llm.module", "Module")}):`, () => {
    w.docstring([
      "One decoder layer. DecoderLayerList builds one per layer of this",
      "pipeline stage; layer_idx is the global index, parameter names use",
      "the index within the stage.",
    ]);
    w.blank();
    w.blockCall("def __init__", ["self", `config: ${names.config}`, "layer_idx: int"], () => {
      w.line("super().__init__()");
      w.line("self.config = config");
      w.line("self.layer_idx = layer_idx");
      w.line("layers_range = config.mapping.pp_layers(config.num_hidden_layers)");
      w.line("self.local_layer_idx = layer_idx - layers_range[0]");
      em.emitTree(w, l0.tree.root, true);
    });
    w.blank();
    const params = [
      "self",
      `hidden_states: ${tensor}`,
      "attention_mask=None",
      "use_cache=False",
      "kv_cache_params=None",
      "attention_params=None",
      "lora_layer_params=None",
      "spec_decoding_params=None",
      ...(readsPositions ? ["position_ids=None"] : []),
    ];
    w.blockCall("def forward", params, () => {
      const b = newBody(em, w, l0.tree, params, true);
      b.env.set(plan.part.layerInput, { expr: "hidden_states", literal: false });
      if (plan.part.positionIds !== undefined) b.env.set(plan.part.positionIds, { expr: "position_ids", literal: false });
      emitNodes(em, b, l0.nodes);
      const outV = plan.part.layerOutputs[0]!;
      const out = b.partial.has(outV) ? reduceValue(em, b, outV).expr : b.env.get(outV)!.expr;
      w.block("if use_cache:", () => w.line(`return (${out}, presents)`));
      w.line(`return ${out}`);
    });
  });
  return w;
}

function emitModel(em: Emitter): PyWriter {
  const { plan, names } = em;
  const { part } = plan;
  const w = new PyWriter();
  const usesPtuning = part.pre.some((n) => plan.live.has(n) && plan.pre.moduleOf.get(n)?.join(".") === "vocab_embedding");
  const readsPositions = plan.layers.some((l) => l.readsPositions);
  w.block(`class ${names.model}(${em.imports.use("tensorrt_llm.module", "Module")}):`, () => {
    w.docstring(["The transformer: embeddings on the first pipeline stage, the decoder", "layers, and the final norm on the last stage."]);
    w.blank();
    w.blockCall("def __init__", ["self", `config: ${names.config}`], () => {
      w.line("super().__init__()");
      w.line("self.config = config");
      w.line("self.mapping = config.mapping");
      w.block("if self.mapping.is_first_pp_rank():", () => em.emitTree(w, plan.pre.root, false));
      w.call(`self.layers = ${em.imports.use("tensorrt_llm.models.modeling_utils", "DecoderLayerList")}`, [names.layer, "config"]);
      if (plan.post.root.children.size) w.block("if self.mapping.is_last_pp_rank():", () => em.emitTree(w, plan.post.root, false));
    });
    w.blank();
    const params = [
      "self",
      "input_ids",
      "position_ids=None",
      "use_cache=False",
      "attention_mask=None",
      "kv_cache_params=None",
      "attention_params=None",
      "hidden_states=None",
      "prompt_embedding_table=None",
      "prompt_tasks=None",
      "prompt_vocab_size=None",
      "lora_params=None",
      "spec_decoding_params=None",
    ];
    w.blockCall("def forward", params, () => {
      w.block("if self.mapping.is_first_pp_rank():", () => {
        if (usesPtuning) {
          w.line("ptuning_args = []");
          w.block("if prompt_embedding_table is not None:", () => {
            w.line("ptuning_args = [prompt_embedding_table, prompt_tasks,");
            w.line("                prompt_vocab_size]");
          });
        }
        const b = newBody(em, w, plan.pre, params, false);
        bindInputs(b, part);
        const producer = part.pre.find((n) => n.outputs.includes(part.layerInput));
        if (producer && producer.outputs.length === 1) b.bindAs.set(part.layerInput, "hidden_states");
        emitNodes(em, b, part.pre);
        const h = b.env.get(part.layerInput)!.expr;
        if (h !== "hidden_states") w.assign("hidden_states", h);
      });
      w.block("else:", () => w.call(`hidden_states = ${em.F("recv")}`, ["hidden_states", "self.mapping.prev_pp_rank()"]));
      w.call("hidden_states = self.layers.forward", [
        "hidden_states",
        "use_cache=use_cache",
        "attention_mask=attention_mask",
        "kv_cache_params=kv_cache_params",
        "attention_params=attention_params",
        "lora_params=lora_params",
        "spec_decoding_params=spec_decoding_params",
        ...(readsPositions ? ["position_ids=position_ids"] : []),
      ]);
      w.block("if use_cache:", () => w.line("hidden_states, presents = hidden_states"));
      const last = part.layerOutputs[part.layerOutputs.length - 1]!;
      const send = () => w.call(`hidden_states = ${em.F("send")}`, ["hidden_states", "self.mapping.next_pp_rank()"]);
      if (part.transformerOutput === last) w.block("if not self.mapping.is_last_pp_rank():", send);
      else {
        w.block("if self.mapping.is_last_pp_rank():", () => {
          const b = newBody(em, w, plan.post, params, false);
          bindInputs(b, part);
          b.env.set(last, { expr: "hidden_states", literal: false });
          const producer = part.post.find((n) => n.outputs.includes(part.transformerOutput));
          if (producer && producer.outputs.length === 1) b.bindAs.set(part.transformerOutput, "hidden_states");
          emitNodes(em, b, part.post);
          const h = b.env.get(part.transformerOutput)!.expr;
          if (h !== "hidden_states") w.assign("hidden_states", h);
        });
        w.block("else:", send);
      }
      w.block("if use_cache:", () => w.line("return (hidden_states, tuple(presents))"));
      w.line("return hidden_states");
    });
  });
  return w;
}

function bindInputs(b: Body, part: Partition): void {
  if (part.inputIds !== undefined) b.env.set(part.inputIds, { expr: "input_ids", literal: false });
  if (part.positionIds !== undefined) b.env.set(part.positionIds, { expr: "position_ids", literal: false });
}

function emitCausalLm(em: Emitter): PyWriter {
  const { plan, names } = em;
  const head = plan.part.head;
  const g = plan.g;
  const paramName = (k: number) => g.params.find((p) => p.value === head.inputs[k])?.name;
  const expected = ["lm_head.weight", "lm_head.bias"].slice(0, head.inputs.length - 1);
  expected.forEach((e, k) => paramName(k + 1) === e || fail(`lm_head reads '${paramName(k + 1)}'; DecoderModelForCausalLM's lm_head registers '${e}'`));
  const hidden = g.values.get(head.inputs[1]!)!.shape[1] as number;
  const w = new PyWriter();
  w.block(`class ${names.causalLm}(${em.imports.use("tensorrt_llm.models.modeling_utils", "DecoderModelForCausalLM")}):`, () => {
    w.docstring(["The transformer and its lm_head; registered in MODEL_MAP below."]);
    w.blank();
    w.line(`config_class = ${names.config}`);
    w.blank();
    w.blockCall("def __init__", ["self", `config: ${names.config}`], () => {
      w.call(`transformer = ${names.model}`, ["config"]);
      w.line("tp_size = config.mapping.tp_size");
      w.comment("lm_head rows are padded to a multiple of tp_size, as in the checkpoint.");
      w.line(`vocab_size = ${em.size(head.attrs.vocab, "vocab_size")}`);
      w.line("vocab_size_padded = (vocab_size + tp_size - 1) // tp_size * tp_size");
      w.block("if config.mapping.is_last_pp_rank():", () => {
        const loc = locText(head.loc);
        if (loc) w.comment(loc);
        w.call(`lm_head = ${em.layerCls("ColumnLinear")}`, [
          em.size(hidden, "hidden_size"),
          "vocab_size_padded",
          `bias=${head.inputs.length > 2 ? "True" : "False"}`,
          "dtype=config.dtype",
          "tp_group=config.mapping.tp_group",
          "tp_size=tp_size",
          "gather_output=True",
        ]);
      });
      w.block("else:", () => w.line("lm_head = None"));
      w.line("super().__init__(config, transformer, lm_head)");
    });
  });
  return w;
}

function classNames(modelName: string): Names {
  const stem = `Kiln${pascalCase(modelName)}`;
  return {
    stem,
    config: `${stem}Config`,
    group: `${stem}Group`,
    erfMlp: `${stem}ErfGeluMLP`,
    layer: `${stem}DecoderLayer`,
    model: `${stem}Model`,
    causalLm: `${stem}ForCausalLM`,
  };
}

/** Emits model.py for a lowered model; throws ModelPyError naming the node, tensor or layer it cannot express. */
export function emitModelPy(lowered: LoweredModel, opts: ModelPyOptions): ModelPy {
  const plan = buildPlan(lowered);
  const names = classNames(opts.modelName);
  const em = new Emitter(plan, names);
  const [layer, model, causalLm] = [emitLayer(em), emitModel(em), emitCausalLm(em)];
  const config = emitConfig(em);
  const extra = [...(em.usesGroup ? [emitGroup(em)] : []), ...(em.usesErfMlp ? [emitErfMlp(em)] : [])];
  const register = new PyWriter();
  const key = `${em.imports.use("tensorrt_llm.models", "MODEL_MAP")}[${pyString(names.causalLm)}] = `;
  if (key.length + names.causalLm.length <= 79) register.line(`${key}${names.causalLm}`);
  else register.line(`${key}(`).line(`    ${names.causalLm}`).line(")");
  const header = new PyWriter();
  header.comment(
    `Generated by Kiln from ${opts.dslFile ?? "a DSL model"} (model ${pyString(opts.modelName)}): TensorRT-LLM 1.2 model code for the TensorRT-engine flow. Do not edit; regenerate with Kiln.`,
  );
  header.comment(`Build: trtllm-build --checkpoint_dir <checkpoint> --model_cls_file model.py --model_cls_name ${names.causalLm}`);
  const imports = new PyWriter();
  for (const l of em.imports.lines()) imports.line(l);
  const helpers = orderedHelpers(em.helpers).map((h) => {
    const hw = new PyWriter();
    for (const l of HELPERS[h].source) hw.line(l);
    return hw;
  });
  const sections = [imports, ...helpers, config, ...extra, layer, model, causalLm, register];
  const source = `${header.toString()}\n${sections.map((s) => s.toString()).join("\n\n")}`;
  return { source, className: names.causalLm, architecture: names.causalLm, configFields: plan.configFields };
}

/** The parameter names the emitted module tree registers (`named_parameters()` without RoPE buffers), derived from
 *  the emission plan: global layer indices, or, with `stage`, that pipeline stage's names with local indices. */
export function expectedParameterNames(lowered: LoweredModel, stage?: { readonly pp: number; readonly index: number }): string[] {
  const plan = buildPlan(lowered);
  const pp = stage?.pp ?? 1;
  const s = stage?.index ?? 0;
  const [first, end] = stageLayers(lowered.numLayers, pp)[s] ?? fail(`stage ${s} of ${pp} does not exist`);
  const head = ["lm_head.weight", "lm_head.bias"].slice(0, plan.part.head.inputs.length - 1);
  return [
    ...(s === 0 ? treeParamNames(plan.pre.root, "transformer.") : []),
    ...Array.from({ length: end - first }, (_, l) => treeParamNames(plan.layers[0]!.tree.root, `transformer.layers.${l}.`)).flat(),
    ...(s === pp - 1 ? [...treeParamNames(plan.post.root, "transformer."), ...head] : []),
  ];
}
