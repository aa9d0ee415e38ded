// modeling_kiln_<name>.py for TensorRT-LLM 1.2.1's PyTorch backend, generated from the lowered graph: a
// DecoderLayer subclass (Attention with the graph's RoPE settings, GatedMLP / MLP or a Linear-built gated MLP,
// RMSNorm / LayerNorm from tensorrt_llm._torch.modules; everything else glue statements from
// codegen/pytorch/glue-ops.ts on packed [num_tokens, ...] tensors), a DecoderModel subclass (embed_tokens, layers,
// norm: the names the backend's pipeline parallelism looks for) and a DecoderModelForCausalLM subclass registered
// with register_auto_model. Fused QKV and gate-up weights are filled by the backend's default load_weights from the
// separate q/k/v and gate/up tensors of the checkpoint (see checkpoint-names.ts).
// Runtime LoRA: `lora_params` (the executor's per-batch adapter table) is threaded as 1.2.1's own models do
// (models/modeling_llama.py @ 3a5901cd: DecoderModel.forward(..., lora_params=None, **kwargs) passes it to every
// decoder layer, the layer passes it to its Attention and MLP); the backend's Attention, GatedMLP and MLP apply it
// through their LoraLayers. The Linear-built KilnGatedMLP gives its Linears LoraLayers the way GatedMLP does
// (modules/gated_mlp.py @ 01503f55: gate = mlp_h_to_4h, up = mlp_gate, down = mlp_4h_to_h).
// Invariants: imports come from tensorrt_llm._torch.* and tensorrt_llm.functional only as listed in
// codegen/apicheck/trtllm-torch-1.2.json (the static check in the tests); output is byte-identical for the same
// input; every user string reaches Python through codegen/python/identifiers.

import { layerWindows } from "../common/attention-windows.ts";

const within = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.abs(b);
import type { JsonValue } from "../../src/ir/attrs.ts";
import type { Node } from "../../src/ir/graph.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import { pyFloat, pyInt, pyString } from "../python/identifiers.ts";
import { PyWriter } from "../python/writer.ts";
import { assignAttr, type Body, emitNodes, newBody, type Val } from "../pytorch/forward.ts";
import { torchCustomOpFiles, torchCustomOpImports, torchCustomOpNames } from "../pytorch/custom-ops.ts";
import { type CustomOp, customOps } from "../../src/custom-ops/custom-op.ts";
import { activationFn, orderedTorchHelpers, TORCH_HELPERS, type TorchHelper } from "../pytorch/glue-ops.ts";
import type { TorchNames } from "../pytorch/names.ts";
import { headParams, planTorchModel, type TorchPlan } from "../pytorch/plan.ts";
import { type ClassTree, fail, type Group, type ModuleLeaf } from "../common/model-py-plan.ts";
import { checkRenames, LAYER_RENAME, MODEL_RENAME, renameHead } from "./checkpoint-names.ts";

/** Attributes the backend's base classes or the generated classes set themselves. */
const LAYER_ATTRS = new Set(["layer_idx", "model_config", "config"]);
const MODEL_ATTRS = new Set(["layers", "model_config", "config", "dtype", "prologue", "epilogue", "keep_embed_tokens"]);

export function planTorchBackendModel(low: LoweredModel, configKeys: Iterable<string>): TorchPlan {
  const plan = planTorchModel(low, { layerAttrs: LAYER_ATTRS, modelAttrs: MODEL_ATTRS, configKeys });
  checkRenames([...plan.pre.root.children.keys(), ...plan.post.root.children.keys(), "layers"], MODEL_RENAME, "DecoderModel");
  checkRenames(plan.layers[0]!.tree.root.children.keys(), LAYER_RENAME, "DecoderLayer");
  return plan;
}

const ROPE_TYPES: Record<string, string> = { neox: "rope_gpt_neox", gptj: "rope_gptj" };
const SCALING_TYPES: Record<string, string> = { linear: "linear", llama3: "llama3" };

class Emitter {
  readonly helpers = new Set<TorchHelper>();
  readonly customOps = new Set<CustomOp>();
  readonly imports = new Map<string, Set<string>>();
  usesGatedLinear = false;
  usesBias = false;

  constructor(
    readonly plan: TorchPlan,
    readonly names: TorchNames,
    readonly std: Readonly<Record<string, unknown>>,
  ) {}

  use(module: string, name: string): string {
    const set = this.imports.get(module) ?? new Set<string>();
    set.add(name);
    this.imports.set(module, set);
    return name;
  }

  helper = (h: TorchHelper): string => {
    this.helpers.add(h);
    TORCH_HELPERS[h].deps.forEach(this.helper);
    return h;
  };

  /** config.json's rms_norm_eps (codegen/pytorch/hf-config.ts: the first norm's, when it is an RMSNorm), NaN without. */
  rmsNormEps(): number {
    const first = this.plan.g.nodes.find((n) => n.op === "rms_norm" || n.op === "layer_norm");
    return first?.op === "rms_norm" ? (first.attrs.eps as number) : Number.NaN;
  }

  size(n: number, key: string): string {
    return this.std[key] === n ? `config.${key}` : pyInt(n);
  }

  eps(n: Node): string {
    const use = this.plan.slotUse.get(n)?.get(-1);
    return use?.field ? `config.${use.field}[layer_idx]` : pyFloat(use?.uniform ?? (n.attrs.eps as number));
  }

  /** `pos_embd_params = ...` statements for a rotary attention (PositionalEmbeddingParams over RopeParams). */
  posEmbdParams(w: PyWriter, a: Readonly<Record<string, unknown>>): void {
    const s = (a.ropeScaling ?? null) as Record<string, JsonValue> | null;
    const scaleType = s ? (SCALING_TYPES[s.type as string] ?? fail(`rope scaling '${s.type}' has no TensorRT-LLM RotaryScalingType here`)) : "none";
    const T = this.use("tensorrt_llm.functional", "RotaryScalingType");
    const rope = [
      `dim=${pyInt(a.rotaryDim as number)}`,
      `theta=${pyFloat(a.ropeTheta as number)}`,
      `scale_type=${T}.${scaleType}`,
      ...(s ? [`scale=${pyFloat(s.factor as number)}`] : []),
      ...(s?.type === "llama3"
        ? [
            `low_freq_factor=${pyFloat(s.lowFreqFactor as number)}`,
            `high_freq_factor=${pyFloat(s.highFreqFactor as number)}`,
            `original_max_positions=${pyInt(s.originalMaxPositionEmbeddings as number)}`,
          ]
        : []),
      "max_positions=config.max_position_embeddings",
    ];
    w.call(`rope = ${this.use("tensorrt_llm._torch.attention_backend.interface", "RopeParams")}`, rope);
    w.call(`pos_embd_params = ${this.use("tensorrt_llm._torch.attention_backend.interface", "PositionalEmbeddingParams")}`, [
      `type=${this.use("tensorrt_llm.functional", "PositionEmbeddingType")}.${ROPE_TYPES[a.rope as string]}`,
      "rope=rope",
      `is_neox=${a.rope === "neox" ? "True" : "False"}`,
    ]);
  }

  moduleCtor(leaf: ModuleLeaf, inLayer: boolean): [string, string[]] {
    const n = leaf.node;
    const g = this.plan.g;
    const a = n.attrs;
    const dtype = "dtype=config.torch_dtype";
    switch (leaf.module) {
      case "moe":
        // Only the engine target lowers mixture-of-experts blocks to trtllm.moe; this target runs the core op.
        return fail(`${n.scope}: trtllm.moe is the engine target's TensorRT-LLM MoE layer, not this target's`);
      case "attention": {
        if (!inLayer) fail(`trtllm.attention in ${n.scope} is outside the decoder layers`);
        // QK-norm: the backend's QKNormRoPEAttention (modules/qk_norm_attention.py @ a98a9061), whose q_norm / k_norm
        // take their epsilon from the config's rms_norm_eps. fuse_qk_norm_rope=False keeps RoPE in the Attention
        // path, which takes every scaling type (the fused kernel knows rope.theta and yarn only).
        if (a.qkNorm && !within(a.qkNormEps as number, this.rmsNormEps()))
          fail(
            `${n.scope}: QK-norm epsilon ${a.qkNormEps} differs from the model's rms_norm_eps ${this.rmsNormEps()}, which QKNormRoPEAttention uses for both`,
          );
        // The backend's Attention in the 1.2.1 manifest takes no logit cap (no max_attn_value / softcap argument).
        if (a.softcap) fail(`${n.scope}: attention-logit soft-capping is not supported by --target trtllm-torch (use --target trtllm-engine or hf)`);
        const use = this.plan.slotUse.get(n)?.get(-1);
        const hidden = g.values.get(n.inputs[0]!)!.shape.at(-1) as number;
        return [
          a.qkNorm
            ? this.use("tensorrt_llm._torch.modules.qk_norm_attention", "QKNormRoPEAttention")
            : this.use("tensorrt_llm._torch.modules.attention", "Attention"),
          [
            `hidden_size=${this.size(hidden, "hidden_size")}`,
            `num_attention_heads=${this.size(a.heads as number, "num_attention_heads")}`,
            `num_key_value_heads=${this.size(a.kvHeads as number, "num_key_value_heads")}`,
            "max_position_embeddings=config.max_position_embeddings",
            `bias=${a.qkvBias ? "True" : "False"}`,
            `pos_embd_params=${a.rope === "none" ? "None" : "pos_embd_params"}`,
            "layer_idx=layer_idx",
            dtype,
            `dense_bias=${a.denseBias ? "True" : "False"}`,
            "config=model_config",
            `q_scaling=${use?.field ? `config.${use.field}[layer_idx]` : pyFloat(use?.uniform ?? 1)}`,
            ...(a.qkNorm ? ["fuse_qk_norm_rope=False", ...(a.rope === "none" ? ["skip_rope=True"] : [])] : []),
          ],
        ];
      }
      case "mlp": {
        if (!inLayer) fail(`${n.op} in ${n.scope} is outside the decoder layers`);
        const [ffn, hidden] = g.values.get(n.inputs[1]!)!.shape as [number, number];
        const sizes = [
          `hidden_size=${this.size(hidden, "hidden_size")}`,
          `intermediate_size=${this.size(ffn, "intermediate_size")}`,
          `bias=${a.bias ? "True" : "False"}`,
        ];
        const tail = [dtype, "config=model_config", "layer_idx=layer_idx"];
        if (n.op === "trtllm.mlp")
          return [this.use("tensorrt_llm._torch.modules.mlp", "MLP"), [...sizes, `activation=${activationFn(a.act as string, this.helper)}`, ...tail]];
        // TensorRT-LLM's GatedMLP runs SiLU only (a fused SwiGLU); other gates get separate column-parallel Linears.
        if (a.act === "silu") return [this.use("tensorrt_llm._torch.modules.gated_mlp", "GatedMLP"), [...sizes, "activation=F.silu", ...tail]];
        this.usesGatedLinear = true;
        this.use("tensorrt_llm._torch.modules.linear", "Linear");
        this.use("tensorrt_llm._torch.modules.linear", "TensorParallelMode");
        this.use("tensorrt_llm._torch.peft.lora.layer", "LoraLayer");
        this.use("tensorrt_llm._torch.peft.lora.layer", "LoraModuleType");
        return [
          "KilnGatedMLP",
          [...sizes, `activation=${activationFn(a.act as string, this.helper)}`, dtype, "model_config=model_config", "layer_idx=layer_idx"],
        ];
      }
      case "norm": {
        const dim = g.values.get(n.inputs[0]!)!.shape.at(-1) as number;
        const common = [`hidden_size=${this.size(dim, "hidden_size")}`, `eps=${this.eps(n)}`, dtype];
        if (n.op === "rms_norm")
          return [this.use("tensorrt_llm._torch.modules.rms_norm", "RMSNorm"), [...common, ...(n.inputs.length > 1 ? [] : ["has_weights=False"])]];
        return [
          this.use("tensorrt_llm._torch.modules.layer_norm", "LayerNorm"),
          [...common, ...(n.inputs.length > 1 ? [] : ["has_weights=False"]), ...(n.inputs.length > 2 ? [] : ["has_bias=False"])],
        ];
      }
      case "embedding": {
        const E = this.use("tensorrt_llm._torch.modules.embedding", "Embedding");
        const [rows, cols] = g.values.get(n.inputs[0]!)!.shape as [number, number];
        if (n.scope === "transformer.position_embedding") return [E, [this.size(rows, "max_position_embeddings"), this.size(cols, "hidden_size"), dtype]];
        const tp = this.use("tensorrt_llm._torch.modules.linear", "TensorParallelMode");
        return [
          E,
          [
            this.size(rows, "vocab_size"),
            this.size(cols, "hidden_size"),
            dtype,
            "mapping=model_config.mapping",
            `tensor_parallel_mode=${tp}.COLUMN`,
            "gather_output=True",
          ],
        ];
      }
    }
  }

  emitTree(w: PyWriter, root: Group, table: Readonly<Record<string, string>>, inLayer: boolean): void {
    const walk = (grp: Group, path: string[], top: boolean) => {
      for (const [name, e] of grp.children) {
        const here = top ? renameHead([name], table) : [...path, name];
        if (e.kind === "group") {
          assignAttr(w, here, "nn.Module", []);
          walk(e, here, false);
        } else if (e.kind === "param") {
          const shape = e.shape.length === 1 ? `(${e.shape[0]},)` : `(${e.shape.join(", ")})`;
          const float = e.dtype === "f32" || e.dtype === "f16" || e.dtype === "bf16";
          assignAttr(w, here, "nn.Parameter", [`torch.empty(${shape}, dtype=${float ? "config.torch_dtype" : "torch.int32"})`, "requires_grad=False"]);
        } else {
          if (e.module === "attention" && e.node.attrs.rope !== "none") this.posEmbdParams(w, e.node.attrs);
          const [callee, args] = this.moduleCtor(e, inLayer);
          assignAttr(w, here, callee, args);
        }
      }
    };
    walk(root, [], true);
  }

  body(w: PyWriter, tree: ClassTree, table: Readonly<Record<string, string>>, params: readonly string[], inLayer: boolean): Body {
    const reserved = [
      ...params.map((p) => p.split("=")[0]!.replace(/^\*+/, "").trim()),
      "self",
      "torch",
      "nn",
      "F",
      "config",
      "KilnGatedMLP",
      "KilnOutputBias",
      ...Object.keys(TORCH_HELPERS),
      ...Object.values(this.names),
      ...[...this.imports.values()].flatMap((s) => [...s]),
      ...customOps().map((op) => torchCustomOpNames(op).alias),
    ];
    return newBody(
      {
        plan: this.plan,
        w,
        tree,
        attrPath: (p) => renameHead(p, table),
        layerField: (f) => (inLayer ? `self.model_config.pretrained_config.${f}[self.layer_idx]` : fail(`per-layer value '${f}' outside the decoder layers`)),
        helper: this.helper,
        modelDtype: "self.model_config.pretrained_config.torch_dtype",
        target: "trtllm-torch",
        useCustomOp: (op) => void this.customOps.add(op),
        moduleCall: (b, n, mod, args, out) => this.moduleCall(b, n, mod, args, out),
      },
      reserved,
    );
  }

  moduleCall(b: Body, n: Node, mod: string, args: readonly Val[], out: string): void {
    if (n.op === "trtllm.mlp" || n.op === "trtllm.gated_mlp") {
      b.w.call(`${out} = ${mod}`, [args[0]!.expr, "lora_params=lora_params"]);
      return;
    }
    if (n.op !== "trtllm.attention") {
      b.w.call(`${out} = ${mod}`, [args[n.op === "embedding" ? 1 : 0]!.expr]);
      return;
    }
    // Models without RoPE pass no positions (as TensorRT-LLM's OPT does): unfused backends would rotate otherwise.
    const pos = n.attrs.rope === "none" ? "None" : args[1]!.expr === FLAT_POSITIONS ? "position_ids" : `${args[1]!.expr}.view(1, -1)`;
    // Sliding windows: Attention.forward's attention_window_size, per layer from the config (None = global).
    const window = layerWindows(this.plan.g) ? ["attention_window_size=self.attention_window_size"] : [];
    b.w.call(`${out} = ${mod}`, [`position_ids=${pos}`, `hidden_states=${args[0]!.expr}`, "attn_metadata=attn_metadata", ...window, "lora_params=lora_params"]);
  }
}

/** Glue reads positions flattened to [num_tokens]; the backend passes [1, num_tokens]. */
const FLAT_POSITIONS = "position_ids.view(-1)";

function emitGatedLinear(): PyWriter {
  const w = new PyWriter();
  // Each Linear applies its own LoraLayer inside (Linear(lora=...), modules/linear.py apply_linear: before the
  // row-parallel all-reduce), with the module types and local output sizes GatedMLP gives its LoRA layers.
  const linear = (name: string, io: [string, string], mode: string, lora: string, size: string) =>
    w.call(`self.${name} = Linear`, [
      io[0],
      io[1],
      "bias=bias",
      "dtype=dtype",
      "mapping=model_config.mapping",
      `tensor_parallel_mode=TensorParallelMode.${mode}`,
      "quant_config=model_config.get_quant_config()",
      "skip_create_weights_in_init=model_config.skip_create_weights_in_init",
      `lora=LoraLayer([LoraModuleType.${lora}], [${size}])`,
    ]);
  w.block("class KilnGatedMLP(nn.Module):", () => {
    w.docstring([
      "down(act(gate(x)) * up(x)) for gates other than SiLU.",
      "",
      "TensorRT-LLM's GatedMLP only runs SiLU (fused SwiGLU); this keeps its",
      "checkpoint names and tensor-parallel layout (gate/up column-parallel,",
      "down row-parallel, all-reduced) and its LoRA module types.",
    ]);
    w.blank();
    w.blockCall("def __init__", ["self", "*", "hidden_size", "intermediate_size", "bias", "activation", "dtype", "model_config", "layer_idx"], () => {
      w.line("super().__init__()");
      w.line("self.activation = activation");
      w.line("self.layer_idx = layer_idx");
      w.line("local_intermediate = intermediate_size // model_config.mapping.tp_size");
      linear("gate_proj", ["hidden_size", "intermediate_size"], "COLUMN", "MLP_H_TO_4H", "local_intermediate");
      linear("up_proj", ["hidden_size", "intermediate_size"], "COLUMN", "MLP_GATE", "local_intermediate");
      linear("down_proj", ["intermediate_size", "hidden_size"], "ROW", "MLP_4H_TO_H", "hidden_size");
    });
    w.blank();
    w.block("def forward(self, x, lora_params=None):", () => {
      w.line("gate = self.gate_proj(x, lora_params=lora_params, layer_idx=self.layer_idx)");
      w.line("up = self.up_proj(x, lora_params=lora_params, layer_idx=self.layer_idx)");
      w.line("return self.down_proj(self.activation(gate) * up, lora_params=lora_params, layer_idx=self.layer_idx)");
    });
  });
  return w;
}

function emitOutputBias(): PyWriter {
  const w = new PyWriter();
  w.block("class KilnOutputBias(nn.Module):", () => {
    w.docstring(["The lm_head bias. TensorRT-LLM's LMHead has none; logits come back", "gathered over the whole vocabulary, so the bias is replicated."]);
    w.blank();
    w.block("def __init__(self, vocab_size, dtype):", () => {
      w.line("super().__init__()");
      w.call("self.bias = nn.Parameter", ["torch.empty(vocab_size, dtype=dtype)", "requires_grad=False"]);
    });
    w.blank();
    w.block("def forward(self, logits):", () => w.line("return logits + self.bias.to(logits.dtype)"));
  });
  return w;
}

function emitLayer(em: Emitter): PyWriter {
  const { plan, names } = em;
  const l0 = plan.layers[0]!;
  const w = new PyWriter();
  const base = em.use("tensorrt_llm._torch.modules.decoder_layer", "DecoderLayer");
  const mc = em.use("tensorrt_llm._torch.model_config", "ModelConfig");
  w.block(`class ${names.layer}(${base}):`, () => {
    w.docstring(["One decoder layer; the model builds one per num_hidden_layers."]);
    w.blank();
    w.blockCall("def __init__", ["self", `model_config: ${mc}[${names.config}]`, "layer_idx: int"], () => {
      w.line("super().__init__()");
      w.line("config = model_config.pretrained_config");
      w.line("self.model_config = model_config");
      w.line("self.layer_idx = layer_idx");
      if (layerWindows(plan.g)) w.line("self.attention_window_size = config.kiln_attention_windows[layer_idx] or None");
      em.emitTree(w, l0.tree.root, LAYER_RENAME, true);
    });
    w.blank();
    const params = ["self", "position_ids", "hidden_states", "attn_metadata", "residual=None", "lora_params=None", "**kwargs"];
    w.blockCall("def forward", params, () => {
      w.comment("hidden_states: [num_tokens, hidden] (packed); residual is not used; lora_params: the batch's LoRA table");
      const b = em.body(w, l0.tree, LAYER_RENAME, params, true);
      b.env.set(plan.part.layerInput, { expr: "hidden_states", literal: false });
      if (plan.part.positionIds !== undefined) b.env.set(plan.part.positionIds, { expr: FLAT_POSITIONS, literal: false });
      emitNodes(b, l0.nodes);
      w.line(`return ${b.env.get(plan.part.layerOutputs[0]!)!.expr}`);
    });
  });
  return w;
}

function emitGlue(
  em: Emitter,
  w: PyWriter,
  tree: ClassTree,
  nodes: readonly Node[],
  params: readonly string[],
  bindIn: Map<number, string>,
  result: number,
): void {
  const b = em.body(w, tree, MODEL_RENAME, params, false);
  const { part } = em.plan;
  if (part.inputIds !== undefined) b.env.set(part.inputIds, { expr: "input_ids", literal: false });
  if (part.positionIds !== undefined) b.env.set(part.positionIds, { expr: FLAT_POSITIONS, literal: false });
  for (const [v, name] of bindIn) b.env.set(v, { expr: name, literal: false });
  const producer = nodes.find((n) => n.outputs.includes(result));
  if (producer && producer.outputs.length === 1) b.bindAs.set(result, "hidden_states");
  emitNodes(b, nodes);
  const h = b.env.get(result)?.expr ?? fail("the model's hidden state is not computed by the glue around the layers");
  if (h !== "hidden_states") w.assign("hidden_states", h);
}

function emitModel(em: Emitter): PyWriter {
  const { plan, names } = em;
  const { part } = plan;
  const w = new PyWriter();
  const base = em.use("tensorrt_llm._torch.models.modeling_utils", "DecoderModel");
  const mc = em.use("tensorrt_llm._torch.model_config", "ModelConfig");
  w.block(`class ${names.model}(${base}):`, () => {
    w.docstring(["embed_tokens, the decoder layers and norm (the names DecoderModel's", "pipeline parallelism looks for), plus any glue around them."]);
    w.blank();
    w.blockCall("def __init__", ["self", `model_config: ${mc}[${names.config}]`], () => {
      w.line("super().__init__(model_config)");
      w.line("config = model_config.pretrained_config");
      em.emitTree(w, plan.pre.root, MODEL_RENAME, false);
      w.line("self.layers = nn.ModuleList(");
      w.line(`    ${names.layer}(model_config, layer_idx)`);
      w.line("    for layer_idx in range(config.num_hidden_layers)");
      w.line(")");
      em.emitTree(w, plan.post.root, MODEL_RENAME, false);
    });
    w.blank();
    const params = ["self", "attn_metadata", "input_ids=None", "position_ids=None", "inputs_embeds=None", "lora_params=None", "**kwargs"];
    w.blockCall("def forward", params, () => {
      w.block("if input_ids is None:", () => w.line(`raise ValueError(${pyString(`${names.model} needs input_ids`)})`));
      const reserved = [...params, "hidden_states", "layer"];
      emitGlue(em, w, plan.pre, part.pre, reserved, new Map(), part.layerInput);
      w.block("for layer in self.layers:", () =>
        w.call("hidden_states = layer", ["position_ids=position_ids", "hidden_states=hidden_states", "attn_metadata=attn_metadata", "lora_params=lora_params"]),
      );
      const last = part.layerOutputs[part.layerOutputs.length - 1]!;
      if (part.transformerOutput !== last) emitGlue(em, w, plan.post, part.post, reserved, new Map([[last, "hidden_states"]]), part.transformerOutput);
      w.line("return hidden_states");
    });
  });
  return w;
}

function emitCausalLm(em: Emitter): PyWriter {
  const { plan, names } = em;
  const hp = headParams(plan);
  const head = plan.part.head;
  // DecoderModelForCausalLM computes the logits itself; its 1.2.1 forward (manifest) has no soft-capping hook.
  if (head.attrs.softcap) fail(`lm_head: final-logit soft-capping is not supported by --target trtllm-torch (use --target trtllm-engine or hf)`);
  const hidden = plan.g.values.get(head.inputs[1]!)!.shape[1] as number;
  const w = new PyWriter();
  const base = em.use("tensorrt_llm._torch.models.modeling_utils", "DecoderModelForCausalLM");
  const reg = em.use("tensorrt_llm._torch.models.modeling_utils", "register_auto_model");
  const mc = em.use("tensorrt_llm._torch.model_config", "ModelConfig");
  w.line(`@${reg}(${pyString(names.causalLm)})`);
  w.blockCall(`class ${names.causalLm}`, [`${base}[${names.model}, ${names.config}]`], () => {
    w.docstring(["The transformer and its lm_head (built by DecoderModelForCausalLM)."]);
    w.blank();
    w.blockCall("def __init__", ["self", `model_config: ${mc}[${names.config}]`], () => {
      w.line("config = model_config.pretrained_config");
      w.call("super().__init__", [
        `${names.model}(model_config)`,
        "config=model_config",
        `hidden_size=${em.size(hidden, "hidden_size")}`,
        `vocab_size=${em.size(head.attrs.vocab, "vocab_size")}`,
      ]);
      if (hp.bias) w.call("self.output_bias = KilnOutputBias", ["config.vocab_size", "config.torch_dtype"]);
    });
    if (hp.bias) {
      em.usesBias = true;
      w.blank();
      const params = ["self", "attn_metadata", "input_ids=None", "position_ids=None", "inputs_embeds=None", "return_context_logits=False", "**kwargs"];
      w.blockCall("def forward", params, () => {
        w.call("logits = super().forward", [
          "attn_metadata",
          "input_ids=input_ids",
          "position_ids=position_ids",
          "inputs_embeds=inputs_embeds",
          "return_context_logits=return_context_logits",
          "**kwargs",
        ]);
        w.line("return self.output_bias(logits)");
      });
    }
  });
  return w;
}

/** The modeling module's source, and the Python modules it imports (custom ops' PyTorch implementations). */
export function emitTorchModeling(
  plan: TorchPlan,
  names: TorchNames,
  std: Readonly<Record<string, unknown>>,
  modelName: string,
): { readonly source: string; readonly files: Readonly<Record<string, string>> } {
  const em = new Emitter(plan, names, std);
  const sections = [emitLayer(em), emitModel(em), emitCausalLm(em)];
  const header = new PyWriter();
  header.comment(`Generated by Kiln from model ${pyString(modelName)}: a TensorRT-LLM 1.2.1 PyTorch-backend model. Do not edit; regenerate with Kiln.`);
  header.comment(
    `Use: import ${names.modelType}; then LLM(model=<checkpoint directory>), or trtllm-serve <checkpoint directory> --custom_module_dirs <this package>`,
  );
  const imports = new PyWriter();
  imports.line("import torch");
  imports.line("import torch.nn.functional as F");
  imports.line("from torch import nn");
  imports.line();
  for (const mod of [...em.imports.keys()].sort()) {
    const list = [...em.imports.get(mod)!].sort();
    const one = `from ${mod} import ${list.join(", ")}`;
    if (one.length <= 79) imports.line(one);
    else {
      imports.line(`from ${mod} import (`);
      for (const n of list) imports.line(`    ${n},`);
      imports.line(")");
    }
  }
  imports.line();
  imports.line(`from .${names.configModule} import ${names.config}`);
  for (const l of torchCustomOpImports(em.customOps)) imports.line(l);
  const lib = orderedTorchHelpers(em.helpers).map((h) => {
    const pw = new PyWriter();
    for (const l of TORCH_HELPERS[h].source) pw.line(l);
    return pw;
  });
  const extra = [...(em.usesGatedLinear ? [emitGatedLinear()] : []), ...(em.usesBias ? [emitOutputBias()] : [])];
  const source = `${header.toString()}\n${[imports, ...lib, ...extra, ...sections].map((s) => s.toString()).join("\n\n")}`;
  return { source, files: torchCustomOpFiles(em.customOps) };
}
