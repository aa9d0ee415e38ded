// modeling_kiln_<name>.py: a Hugging Face remote-code causal LM in plain PyTorch, generated from the lowered graph.
// trtllm.* layers become the fixed modules of runtime.ts (KilnAttention, KilnMLP), norms and embeddings torch
// modules, everything else glue statements (codegen/pytorch/glue-ops.ts). Classes: Kiln<Name>DecoderLayer (one
// class builds every layer; per-layer numbers are config lists), Kiln<Name>PreTrainedModel, Kiln<Name>Model
// (embeddings, layers, final norm: what the graph computes before and after the layers) and
// Kiln<Name>ForCausalLM (PreTrainedModel + GenerationMixin, lm_head, KV cache through transformers' DynamicCache).
// Invariants: state_dict() keys are exactly the lowered graph's parameter names (expectedHfParameterNames); output is
// byte-identical for the same input; every user string reaches Python through codegen/python/identifiers.

import { layerWindows } from "../common/attention-windows.ts";
import type { JsonValue } from "../../src/ir/attrs.ts";
import type { DType } from "../../src/ir/dtype.ts";
import type { Node } from "../../src/ir/graph.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { pyFloat, pyInt, type PyJson, pyString } from "../python/identifiers.ts";
import { PyWriter } from "../python/writer.ts";
import { assignAttr, type Body, emitNodes, newBody } from "../pytorch/forward.ts";
import { activationFn, orderedTorchHelpers, TORCH_HELPERS, type TorchHelper } from "../pytorch/glue-ops.ts";
import { hfRopeScaling } from "../pytorch/hf-config.ts";
import { assignLiteral } from "../pytorch/literal.ts";
import { torchCustomOpFiles, torchCustomOpImports, torchCustomOpNames } from "../pytorch/custom-ops.ts";
import { type CustomOp, customOps } from "../../src/custom-ops/custom-op.ts";
import { headParams, planTorchModel, type TorchPlan } from "../pytorch/plan.ts";
import type { TorchNames } from "../pytorch/names.ts";
import { type ClassTree, fail, type Group, type ModuleLeaf, treeParamNames } from "../common/model-py-plan.ts";
import { orderedBlocks, RUNTIME_BLOCKS, RUNTIME_NAMES, type RuntimeBlock } from "./runtime.ts";

const LAYER_ATTRS = new Set(["config", "layer_idx"]);
const MODEL_ATTRS = new Set(["config", "layers"]);
const ROPE_SCALING_CONST = "_KILN_ROPE_SCALING";
const TORCH_DTYPES: Partial<Record<DType, string>> = { f32: "torch.float32", f16: "torch.float16", bf16: "torch.bfloat16" };

/** The emission plan of the hf target (exported for tests and the config writer). */
export function planHfModel(low: LoweredModel, configKeys: Iterable<string>): TorchPlan {
  return planTorchModel(low, { layerAttrs: LAYER_ATTRS, modelAttrs: MODEL_ATTRS, configKeys });
}

class Emitter {
  readonly blocks = new Set<RuntimeBlock>();
  readonly helpers = new Set<TorchHelper>();
  readonly customOps = new Set<CustomOp>();
  usesMath = false;
  ropeScaling: JsonValue | undefined;

  constructor(
    readonly plan: TorchPlan,
    readonly names: TorchNames,
    readonly std: Readonly<Record<string, unknown>>,
  ) {}

  helper = (h: TorchHelper): string => {
    this.helpers.add(h);
    TORCH_HELPERS[h].deps.forEach(this.helper);
    return h;
  };

  block(b: RuntimeBlock): void {
    this.blocks.add(b);
    RUNTIME_BLOCKS[b].deps.forEach((d) => this.block(d));
    if (b === "rope") this.usesMath = true;
    if (b === "rms_norm") this.helper("_kiln_rms_norm");
  }

  /** `config.<key>` when the standard config value equals `n`, else the literal. */
  size(n: number, key: string): string {
    return this.std[key] === n ? `config.${key}` : pyInt(n);
  }

  /** Rotary keyword arguments as literals from the graph (transformers 5 rewrites config.rope_scaling into its own
   *  rope_parameters form, so the generated code does not read it back). The scaling dict is a module constant. */
  ropeArgs(a: Readonly<Record<string, unknown>>): string[] {
    const scaling = hfRopeScaling((a.ropeScaling ?? null) as JsonValue);
    const s = (a.ropeScaling ?? null) as Record<string, JsonValue> | null;
    if (scaling !== null) {
      const known = JSON.stringify(this.ropeScaling);
      if (this.ropeScaling !== undefined && known !== JSON.stringify(scaling)) fail(`rotary scaling differs between attention layers`);
      this.ropeScaling = scaling;
    }
    return [
      `rotary_dim=${pyInt(a.rotaryDim as number)}`,
      `rope_theta=${pyFloat(a.ropeTheta as number)}`,
      `rope_scaling=${scaling === null ? "None" : ROPE_SCALING_CONST}`,
      `rope_interleaved=${a.rope === "gptj" ? "True" : "False"}`,
      ...(s?.type === "dynamic" ? [`rope_max_positions=${pyInt(s.maxPositions as number)}`] : []),
    ];
  }

  /** A node's eps: a per-layer config list read inside layers when the layers differ, else the literal. */
  eps(n: Node): string {
    const use = this.plan.slotUse.get(n)?.get(-1);
    return use?.field ? `config.${use.field}[layer_idx]` : pyFloat(use?.uniform ?? (n.attrs.eps as number));
  }

  /** [callee, keyword arguments] creating the module for a leaf of the class tree. */
  moduleCtor(leaf: ModuleLeaf, inLayer: boolean): [string, string[]] {
    const n = leaf.node;
    const g = this.plan.g;
    const shape = (k: number) => g.values.get(n.inputs[k]!)!.shape as number[];
    const a = n.attrs;
    switch (leaf.module) {
      case "moe":
        // Only the engine target lowers mixture-of-experts blocks to trtllm.moe; this target runs the core op.
        return fail(`${n.scope}: trtllm.moe is the engine target's TensorRT-LLM MoE layer, not this target's`);
      case "attention": {
        if (!inLayer) fail(`trtllm.attention in ${n.scope} is outside the decoder layers`);
        this.block("attention");
        if (a.qkNorm) this.block("rms_norm");
        const hidden = g.values.get(n.inputs[0]!)!.shape.at(-1) as number;
        const headDim = a.headDim as number;
        const rope = a.rope !== "none";
        const use = this.plan.slotUse.get(n)?.get(-1);
        // The softmax scale: a literal, or from the per-layer q_scaling list (scale = 1 / (q * sqrt(head_dim))).
        const scale = use?.field ? `1.0 / (config.${use.field}[layer_idx] * math.sqrt(${pyInt(headDim)}))` : pyFloat(a.scale as number);
        if (use?.field) this.usesMath = true;
        return [
          "KilnAttention",
          [
            `hidden_size=${this.size(hidden, "hidden_size")}`,
            `num_heads=${this.size(a.heads as number, "num_attention_heads")}`,
            `num_kv_heads=${this.size(a.kvHeads as number, "num_key_value_heads")}`,
            `head_dim=${this.size(headDim, "head_dim")}`,
            `qkv_bias=${a.qkvBias ? "True" : "False"}`,
            `dense_bias=${a.denseBias ? "True" : "False"}`,
            `scale=${scale}`,
            "layer_idx=layer_idx",
            ...(rope ? this.ropeArgs(a) : []),
            ...(layerWindows(g) ? ["sliding_window=config.kiln_attention_windows[layer_idx]"] : []),
            ...(a.qkNorm ? [`qk_norm_eps=${pyFloat(a.qkNormEps as number)}`] : []),
            ...(a.softcap ? [`softcap=${pyFloat(a.softcap as number)}`] : []),
          ],
        ];
      }
      case "mlp": {
        if (!inLayer) fail(`${n.op} in ${n.scope} is outside the decoder layers`);
        this.block("mlp");
        const [ffn, hidden] = shape(1) as [number, number];
        return [
          "KilnMLP",
          [
            `hidden_size=${this.size(hidden, "hidden_size")}`,
            `intermediate_size=${this.size(ffn, "intermediate_size")}`,
            `act=${activationFn(a.act as string, this.helper)}`,
            `bias=${a.bias ? "True" : "False"}`,
            `gated=${n.op === "trtllm.gated_mlp" ? "True" : "False"}`,
          ],
        ];
      }
      case "norm": {
        const dim = g.values.get(n.inputs[0]!)!.shape.at(-1) as number;
        const eps = this.eps(n);
        const affine = n.inputs.length > 1;
        if (n.op === "rms_norm") {
          this.block("rms_norm");
          return ["KilnRMSNorm", [this.size(dim, "hidden_size"), `eps=${eps}`, ...(affine ? [] : ["elementwise_affine=False"])]];
        }
        return [
          "nn.LayerNorm",
          [this.size(dim, "hidden_size"), `eps=${eps}`, ...(affine ? [] : ["elementwise_affine=False"]), ...(n.inputs.length === 2 ? ["bias=False"] : [])],
        ];
      }
      case "embedding": {
        const [rows, cols] = shape(0) as [number, number];
        const rowKey = n.scope === "transformer.position_embedding" ? "max_position_embeddings" : "vocab_size";
        return ["nn.Embedding", [this.size(rows, rowKey), this.size(cols, "hidden_size")]];
      }
    }
  }

  /** __init__ statements creating a class tree's attributes (groups first, then their children). */
  emitTree(w: PyWriter, root: Group, inLayer: boolean): void {
    const walk = (grp: Group, path: string[]) => {
      for (const [name, e] of grp.children) {
        const here = [...path, name];
        if (e.kind === "group") {
          assignAttr(w, here, "nn.Module", []);
          walk(e, here);
        } else if (e.kind === "param") {
          const shape = e.shape.length === 1 ? `(${e.shape[0]},)` : `(${e.shape.join(", ")})`;
          // Plain parameters are read from the checkpoint; zeros only stand in until then.
          assignAttr(w, here, "nn.Parameter", [
            `torch.zeros(${shape}${e.dtype === "f32" || e.dtype === "f16" || e.dtype === "bf16" ? "" : `, dtype=${TORCH_DTYPES[e.dtype] ?? "torch.int32"}`})`,
          ]);
        } else {
          const [callee, args] = this.moduleCtor(e, inLayer);
          assignAttr(w, here, callee, args);
        }
      }
    };
    walk(root, []);
  }

  body(w: PyWriter, tree: ClassTree, params: readonly string[], inLayer: boolean): Body {
    const reserved = [
      ...params.map((p) => p.split("=")[0]!.replace(/^\*+/, "").trim()),
      "self",
      "torch",
      "nn",
      "F",
      "math",
      ROPE_SCALING_CONST,
      ...RUNTIME_NAMES,
      ...Object.keys(TORCH_HELPERS),
      ...Object.values(this.names),
      ...customOps().map((op) => torchCustomOpNames(op).alias),
    ];
    return newBody(
      {
        plan: this.plan,
        w,
        tree,
        attrPath: (p) => p,
        layerField: (f) => (inLayer ? `self.config.${f}[self.layer_idx]` : fail(`per-layer value '${f}' outside the decoder layers`)),
        helper: this.helper,
        modelDtype: "next(self.parameters()).dtype",
        target: "hf",
        useCustomOp: (op) => void this.customOps.add(op),
        moduleCall: (b, n, mod, args, out) => {
          const x = args[n.op === "embedding" ? 1 : 0]!.expr;
          if (n.op === "trtllm.attention") b.w.call(`${out} = ${mod}`, [x, args[1]!.expr, "attention_mask", "past_key_values"]);
          else b.w.call(`${out} = ${mod}`, [x]);
        },
      },
      reserved,
    );
  }
}

function emitLayer(em: Emitter): PyWriter {
  const { plan, names } = em;
  const l0 = plan.layers[0]!;
  const w = new PyWriter();
  w.block(`class ${names.layer}(nn.Module):`, () => {
    w.docstring(["One decoder layer; the model builds one per config.num_hidden_layers."]);
    w.blank();
    w.block("def __init__(self, config, layer_idx):", () => {
      w.line("super().__init__()");
      w.line("self.config = config");
      w.line("self.layer_idx = layer_idx");
      em.emitTree(w, l0.tree.root, true);
    });
    w.blank();
    const params = ["self", "hidden_states", "position_ids", "attention_mask=None", "past_key_values=None"];
    w.blockCall("def forward", params, () => {
      w.comment("hidden_states: [batch, seq, hidden]");
      const b = em.body(w, l0.tree, params, true);
      b.env.set(plan.part.layerInput, { expr: "hidden_states", literal: false });
      if (plan.part.positionIds !== undefined) b.env.set(plan.part.positionIds, { expr: "position_ids", literal: false });
      emitNodes(b, l0.nodes);
      w.line(`return ${b.env.get(plan.part.layerOutputs[0]!)!.expr}`);
    });
  });
  return w;
}

function emitPreTrained(em: Emitter): PyWriter {
  const w = new PyWriter();
  const n = em.names;
  w.block(`class ${n.pretrained}(PreTrainedModel):`, () => {
    w.line(`config_class = ${n.config}`);
    w.line('base_model_prefix = "transformer"');
    w.line(`_no_split_modules = [${pyString(n.layer)}]`);
    w.line("supports_gradient_checkpointing = False");
    w.line("_supports_cache_class = True");
  });
  return w;
}

/** The glue before (pre) or after (post) the layers, binding `hidden_states` where the layers read or leave it. */
function emitGlue(
  em: Emitter,
  w: PyWriter,
  tree: ClassTree,
  nodes: readonly Node[],
  params: readonly string[],
  bindIn: Map<number, string>,
  result: number,
): void {
  const b = em.body(w, tree, params, false);
  const { part } = em.plan;
  if (part.inputIds !== undefined) b.env.set(part.inputIds, { expr: "input_ids", literal: false });
  if (part.positionIds !== undefined) b.env.set(part.positionIds, { expr: "position_ids", literal: false });
  for (const [v, name] of bindIn) b.env.set(v, { expr: name, literal: false });
  const producer = nodes.find((n) => n.outputs.includes(result));
  if (producer && producer.outputs.length === 1) b.bindAs.set(result, "hidden_states");
  emitNodes(b, nodes);
  const h = b.env.get(result)?.expr ?? fail(`the model's hidden state is not computed by the glue around the layers`);
  if (h !== "hidden_states") w.assign("hidden_states", h);
}

function emitModel(em: Emitter): PyWriter {
  const { plan, names } = em;
  const { part } = plan;
  const w = new PyWriter();
  const vocab = plan.pre.root.children.get("vocab_embedding");
  w.block(`class ${names.model}(${names.pretrained}):`, () => {
    w.docstring(["Embeddings, the decoder layers and what follows them (final norm)."]);
    w.blank();
    w.block("def __init__(self, config):", () => {
      w.line("super().__init__(config)");
      em.emitTree(w, plan.pre.root, false);
      w.line("self.layers = nn.ModuleList(");
      w.line(`    ${names.layer}(config, i)`);
      w.line("    for i in range(config.num_hidden_layers)");
      w.line(")");
      em.emitTree(w, plan.post.root, false);
      w.line("self.post_init()");
    });
    if (vocab?.kind === "module") {
      w.blank();
      w.block("def get_input_embeddings(self):", () => w.line("return self.vocab_embedding"));
      w.blank();
      w.block("def set_input_embeddings(self, value):", () => w.line("self.vocab_embedding = value"));
    }
    w.blank();
    const params = ["self", "input_ids=None", "attention_mask=None", "position_ids=None", "past_key_values=None", "use_cache=None", "**kwargs"];
    w.blockCall("def forward", params, () => {
      w.block("if input_ids is None:", () => w.line('raise ValueError("input_ids is required (no inputs_embeds)")'));
      w.block("if use_cache is None:", () => w.line("use_cache = self.config.use_cache"));
      w.block("if use_cache and past_key_values is None:", () => w.line("past_key_values = DynamicCache()"));
      w.line("batch, seq = input_ids.shape");
      w.line("device = input_ids.device");
      w.line("past = 0");
      w.block("if past_key_values is not None:", () => w.line("past = past_key_values.get_seq_length()"));
      w.block("if position_ids is None:", () => {
        w.line("position_ids = torch.arange(past, past + seq, device=device)");
        w.line("position_ids = position_ids.unsqueeze(0).expand(batch, -1)");
      });
      w.line("mask = _kiln_attention_mask(attention_mask, batch, seq, past, device)");
      em.block("mask");
      const reserved = [...params, "batch", "seq", "past", "device", "mask", "layer", "hidden_states"];
      emitGlue(em, w, plan.pre, part.pre, reserved, new Map(), part.layerInput);
      w.block("for layer in self.layers:", () => w.call("hidden_states = layer", ["hidden_states", "position_ids", "mask", "past_key_values"]));
      const last = part.layerOutputs[part.layerOutputs.length - 1]!;
      if (part.transformerOutput !== last) emitGlue(em, w, plan.post, part.post, reserved, new Map([[last, "hidden_states"]]), part.transformerOutput);
      w.call("return BaseModelOutputWithPast", ["last_hidden_state=hidden_states", "past_key_values=past_key_values if use_cache else None"]);
    });
  });
  return w;
}

function emitCausalLm(em: Emitter): PyWriter {
  const { plan, names } = em;
  const head = plan.part.head;
  const hp = headParams(plan);
  const hidden = plan.g.values.get(head.inputs[1]!)!.shape[1] as number;
  const w = new PyWriter();
  const hasVocab = plan.pre.root.children.get("vocab_embedding")?.kind === "module";
  w.block(`class ${names.causalLm}(${names.pretrained}, GenerationMixin):`, () => {
    w.docstring(["The transformer and its lm_head; generate() uses the KV cache."]);
    w.blank();
    w.block("def __init__(self, config):", () => {
      w.line("super().__init__(config)");
      w.line(`self.transformer = ${names.model}(config)`);
      w.call("self.lm_head = nn.Linear", [em.size(hidden, "hidden_size"), em.size(head.attrs.vocab, "vocab_size"), `bias=${hp.bias ? "True" : "False"}`]);
      w.line("self.post_init()");
    });
    if (hasVocab) {
      w.blank();
      w.block("def get_input_embeddings(self):", () => w.line("return self.transformer.vocab_embedding"));
      w.blank();
      w.block("def set_input_embeddings(self, value):", () => w.line("self.transformer.vocab_embedding = value"));
    }
    w.blank();
    w.block("def get_output_embeddings(self):", () => w.line("return self.lm_head"));
    w.blank();
    w.block("def set_output_embeddings(self, value):", () => w.line("self.lm_head = value"));
    w.blank();
    const longrope = em.ropeScaling as { rope_type?: string; original_max_position_embeddings?: number } | undefined;
    if (longrope?.rope_type === "longrope") {
      // LongRoPE switches to its long factors past original_max_position_embeddings. transformers'
      // Phi3ForCausalLM.prepare_inputs_for_generation (5.17) drops the cache once there but still feeds only the
      // new token (next_sequence_length stays 1), so it loses the context; the generated model drops the cache and
      // recomputes the whole sequence, which is what a full forward (the goldens) computes.
      const original = pyInt(longrope.original_max_position_embeddings!);
      w.blockCall("def prepare_inputs_for_generation", ["self", "input_ids", "past_key_values=None", "**kwargs"], () => {
        w.comment("Recompute once when the sequence first passes the short-factor range.");
        w.block(`if past_key_values and input_ids.shape[1] >= ${original} + 1:`, () =>
          w.block(`if past_key_values.get_seq_length() <= ${original}:`, () => {
            w.line("past_key_values = None");
            w.line('kwargs["next_sequence_length"] = None  # feed the whole sequence');
          }),
        );
        w.call("return super().prepare_inputs_for_generation", ["input_ids", "past_key_values=past_key_values", "**kwargs"]);
      });
      w.blank();
    }
    const params = [
      "self",
      "input_ids=None",
      "attention_mask=None",
      "position_ids=None",
      "past_key_values=None",
      "use_cache=None",
      "labels=None",
      "logits_to_keep=0",
      "**kwargs",
    ];
    w.blockCall("def forward", params, () => {
      w.call("outputs = self.transformer", [
        "input_ids=input_ids",
        "attention_mask=attention_mask",
        "position_ids=position_ids",
        "past_key_values=past_key_values",
        "use_cache=use_cache",
      ]);
      w.line("hidden_states = outputs.last_hidden_state");
      w.block("if isinstance(logits_to_keep, int) and logits_to_keep > 0:", () => w.line("hidden_states = hidden_states[:, -logits_to_keep:]"));
      w.line("logits = self.lm_head(hidden_states)");
      // Final-logit soft-capping (trtllm.lm_head softcap), as transformers' Gemma2ForCausalLM does it.
      const cap = head.attrs.softcap;
      if (cap) w.line(`logits = torch.tanh(logits / ${pyFloat(cap)}) * ${pyFloat(cap)}`);
      w.line("loss = None");
      w.block("if labels is not None:", () =>
        w.call("loss = self.loss_function", ["logits=logits", "labels=labels", "vocab_size=self.config.vocab_size", "**kwargs"]),
      );
      w.call("return CausalLMOutputWithPast", ["loss=loss", "logits=logits", "past_key_values=outputs.past_key_values"]);
    });
  });
  return w;
}

function checkNames(names: TorchNames): void {
  const clash = Object.values(names).find((n) => RUNTIME_NAMES.includes(n) || n === ROPE_SCALING_CONST || Object.hasOwn(TORCH_HELPERS, n));
  if (clash) fail(`generated class name '${clash}' clashes with a building block of the modeling file; rename the model`);
}

export interface Modeling {
  readonly source: string;
  /** Python modules the modeling file imports (custom ops' PyTorch implementations): file name -> source. */
  readonly files: Readonly<Record<string, string>>;
  /** Per-layer config fields the layer class reads. */
  readonly configFields: TorchPlan["configFields"];
}

/** Emits modeling_kiln_<name>.py; throws ModelPyError naming the node or tensor it cannot express. */
export function emitHfModeling(plan: TorchPlan, names: TorchNames, std: Readonly<Record<string, unknown>>, modelName: string): Modeling {
  checkNames(names);
  const em = new Emitter(plan, names, std);
  const sections = [emitLayer(em), emitPreTrained(em), emitModel(em), emitCausalLm(em)];
  const header = new PyWriter();
  header.comment(
    `Generated by Kiln from model ${pyString(modelName)}: a Hugging Face remote-code causal LM in plain PyTorch. Do not edit; regenerate with Kiln.`,
  );
  header.comment(`Load: AutoModelForCausalLM.from_pretrained(<this directory>, trust_remote_code=True)`);
  const imports = new PyWriter();
  if (em.usesMath) imports.line("import math").line();
  imports.line("import torch");
  imports.line("import torch.nn.functional as F");
  imports.line("from torch import nn");
  imports.line("from transformers import GenerationMixin, PreTrainedModel");
  imports.line("from transformers.cache_utils import DynamicCache");
  imports.line("from transformers.modeling_outputs import (");
  imports.line("    BaseModelOutputWithPast,");
  imports.line("    CausalLMOutputWithPast,");
  imports.line(")");
  imports.line();
  imports.line(`from .${names.configModule} import ${names.config}`);
  for (const l of torchCustomOpImports(em.customOps)) imports.line(l);
  const constants = new PyWriter();
  if (em.ropeScaling !== undefined) assignLiteral(constants, ROPE_SCALING_CONST, em.ropeScaling as PyJson);
  const lib = [...orderedTorchHelpers(em.helpers).map((h) => TORCH_HELPERS[h].source), ...orderedBlocks(em.blocks).map((b) => RUNTIME_BLOCKS[b].source)].map(
    (src) => {
      const pw = new PyWriter();
      for (const l of src) pw.line(l);
      return pw;
    },
  );
  const source = `${header.toString()}\n${[imports, ...(em.ropeScaling !== undefined ? [constants] : []), ...lib, ...sections].map((s) => s.toString()).join("\n\n")}`;
  return { source, configFields: plan.configFields, files: torchCustomOpFiles(em.customOps) };
}

/** The parameter names the emitted ForCausalLM registers (state_dict keys), in creation order. */
export function expectedHfParameterNames(plan: TorchPlan): string[] {
  const hp = headParams(plan);
  return [
    ...treeParamNames(plan.pre.root, "transformer."),
    ...Array.from({ length: plan.layers.length }, (_, l) => treeParamNames(plan.layers[0]!.tree.root, `transformer.layers.${l}.`)).flat(),
    ...treeParamNames(plan.post.root, "transformer."),
    hp.weight,
    ...(hp.bias ? [hp.bias] : []),
  ];
}
