// The TensorRT-LLM engine target: from a lowered model, everything `trtllm-build` needs in one directory —
// config.json (PretrainedConfig), rank{r}.safetensors, build_config.json, weights.map.json, model.py when the
// architecture is not one of TensorRT-LLM's own, and the exact build command. Built-in detection decides between a
// built-in class and custom code; `customCode` forces custom code.

import type { JsonValue } from "../../src/ir/attrs.ts";
import type { Graph, ValueId } from "../../src/ir/graph.ts";
import { moeSizes } from "../../src/lower/mapping.ts";
import { lowerMoeToTrtllm } from "../../src/lower/moe-lowering.ts";
import { shardWeights } from "../../src/lower/shard.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import type { PlanTensor, RankFilePlan } from "../../src/weights/convert.ts";
import { isBytesTensor, isConstTensor, isFp8Tensor, isScaleTensor } from "../../src/weights/fp8-plan.ts";
import { concat, formatExpr, type WeightExpr } from "../../src/weights/weight-map.ts";
import { maxAttentionWindow } from "../common/attention-windows.ts";
import { shellQuote } from "../../src/io/shell.ts";
import { type BuiltinFamily, type Detection, detectForEngine } from "./builtin.ts";
import { buildConfig } from "./build-config.ts";
import { rankFilePlans } from "../common/checkpoint-plan.ts";
import { customOpFiles, PLUGIN_PACKAGE, pluginPythonPath } from "./custom-ops.ts";
import { shellCommand } from "../../src/io/shell.ts";
import { emitModelPy } from "./model-py.ts";
import type { TargetOptions } from "../common/target.ts";
import { pretrainedConfig, quantizationConfig } from "./pretrained-config.ts";

/** The engine target takes exactly the options every target does (codegen/common/target.ts). */
export type EngineEmitOptions = TargetOptions;

export interface EngineEmission {
  /** The lowered graph as emitted (GPT-J's built-in class reduces once per layer, which changes bias placement). */
  readonly graph: Graph;
  readonly architecture: string;
  readonly builtin?: BuiltinFamily;
  readonly detection: Detection;
  /** Small text files to write (name -> content). */
  readonly files: Record<string, string>;
  readonly plans: RankFilePlan<PlanTensor>[];
  readonly buildCommand: (outDir: string, engineDir: string) => string;
  /** Per-layer attention windows (sliding-window models only), also in config.json's runtime_defaults. */
  readonly maxAttentionWindow?: number[];
  /** How to run the engines with TensorRT-LLM's examples/run.py (carries the per-layer windows). */
  readonly runCommand: (engineDir: string) => string;
}

/** GPT-NeoX's class names the MLP's norm post_attention_layernorm (examples/models/contrib/gptneox/convert_checkpoint.py
 *  @ 2a9abd95); every other built-in says post_layernorm. */
function withNeoxNames(low: LoweredModel): LoweredModel {
  const rename = (n: string) => n.replace(/^(transformer\.layers\.\d+)\.post_layernorm\./, "$1.post_attention_layernorm.");
  return {
    ...low,
    graph: { ...low.graph, params: low.graph.params.map((p) => ({ ...p, name: rename(p.name) })) },
    weights: Object.fromEntries(Object.entries(low.weights).map(([n, e]) => [rename(n), e])),
  };
}

/** Phi-3's class runs its MLP as one swiglu fc (models/phi3/model.py @ c4dc529f): every gated MLP becomes a plain
 *  one whose fc stacks [up; gate] (convert.py @ 89fd9b74 swaps gate_up_proj's halves into that order), split per
 *  rank half by half (shard.ts column_halves), as MLP's per-rank swiglu needs. */
function withSwigluFc(low: LoweredModel): LoweredModel {
  const g = low.graph;
  const nameOf = new Map(g.params.map((p) => [p.value, p.name]));
  const values = new Map(g.values);
  let next = Math.max(...values.keys()) + 1;
  const fused = new Map<string, ValueId>();
  const weights: Record<string, WeightExpr> = { ...low.weights };
  const nodes = g.nodes.map((n) => {
    if (n.op !== "trtllm.gated_mlp") return n;
    const [x, fc, gate, proj] = n.inputs as [ValueId, ValueId, ValueId, ValueId];
    const [fcName, gateName] = [nameOf.get(fc)!, nameOf.get(gate)!];
    const t = values.get(fc)!;
    const v = next++;
    values.set(v, { ...t, shape: [2 * (t.shape[0] as number), t.shape[1]!] });
    fused.set(fcName, v);
    weights[fcName] = concat(0, low.weights[gateName]!, low.weights[fcName]!);
    delete weights[gateName];
    return { ...n, op: "trtllm.mlp", inputs: [x, v, proj], attrs: { ...n.attrs, act: "swiglu" }, meta: { trtllm: "MLP(swiglu)" } };
  });
  const gates = new Set(g.nodes.filter((n) => n.op === "trtllm.gated_mlp").map((n) => n.inputs[2]!));
  const params = g.params.filter((p) => !gates.has(p.value)).map((p) => (fused.has(p.name) ? { ...p, value: fused.get(p.name)! } : p));
  return { ...low, graph: { ...g, nodes, params, values }, weights };
}

/** GPT-J's TensorRT-LLM layer sums attention and MLP before one all-reduce: biases live on rank 0 only. */
function withLayerReduce(g: Graph): Graph {
  return { ...g, nodes: g.nodes.map((n) => (n.op === "trtllm.attention" || n.op === "trtllm.mlp" ? { ...n, attrs: { ...n.attrs, reduce: "layer" } } : n)) };
}

/** weights.map.json's entry for a rank-file tensor: its source expression, or how Kiln computes it. */
function weightsMapEntry(t: PlanTensor): JsonValue {
  if (isScaleTensor(t)) return { dtype: t.dtype, from: `amax(${t.scaleOf} on this rank) / 448` };
  if (isConstTensor(t)) return { dtype: t.dtype, from: t.origin ?? "calibration", values: [...t.values] };
  if (isBytesTensor(t)) return { dtype: t.dtype, from: t.origin, shape: [...t.shape] };
  return {
    dtype: t.dtype,
    from: isFp8Tensor(t) ? `e4m3(${formatExpr(t.expr)} / ${t.scale ?? `scale(${t.scaleGroup})`})` : formatExpr(t.expr),
    expr: t.expr as unknown as JsonValue,
  };
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

export function emitEngineTarget(lowered0: LoweredModel, o: EngineEmitOptions): EngineEmission {
  // Mixture-of-experts blocks become TensorRT-LLM's own MOE / SharedMoE (engine only; other targets run the core op).
  const low = lowerMoeToTrtllm(lowered0, o.shapeOf);
  const engine = detectForEngine(low, { pp: o.mapping.pp, quantized: Boolean(o.quant?.weight) });
  const detection = engine.detection;
  const builtin = !o.customCode && detection.ok ? detection.match.family : undefined;
  // Custom code keeps the graph as lowered; a built-in class gets its own form of it (folded norms, names, reduce).
  const form = builtin ? engine.lowered : low;
  const renamed = builtin === "gptneox" ? withNeoxNames(form) : builtin === "phi3" ? withSwigluFc(form) : form;
  const graph = builtin === "gptj" ? withLayerReduce(renamed.graph) : renamed.graph;
  const lowered = { ...renamed, graph };
  const custom = builtin ? undefined : emitModelPy(lowered, { modelName: o.modelName });
  const architecture = builtin && detection.ok ? detection.match.architecture : custom!.architecture;
  const base = {
    ...pretrainedConfig(lowered, architecture, builtin, { ...o, quantization: quantizationConfig(o.quant, lowered, o.mapping.pp) }),
    ...(custom?.configFields ?? {}),
  };
  // Sliding windows are a runtime setting in TensorRT-LLM 1.2.1: PretrainedConfig.runtime_defaults becomes
  // RuntimeDefaults(max_attention_window=[...]) (models/modeling_utils.py create_runtime_defaults), which the
  // executor uses when the run does not set KvCacheConfig.max_attention_window itself.
  const windows = maxAttentionWindow(graph, base.max_position_embeddings as number);
  const config: Record<string, JsonValue> = windows ? { ...base, runtime_defaults: { max_attention_window: windows } } : base;
  // GemmaConfig sets use_parallel_embedding = tp_size > 1 whatever the checkpoint says: vocab rows per rank.
  const gemma = builtin === "gemma" || builtin === "gemma2";
  const shards = shardWeights(lowered, o.mapping.tp, o.shapeOf, { parallelEmbedding: gemma && o.mapping.tp > 1, moeEp: moeSizes(o.mapping).moeEp });
  const plans = rankFilePlans(lowered, shards, o.mapping, o.dtype, o.metadata, o.quant, o.shapeOf);
  const build = buildConfig(o.hints, { dtype: o.dtype, maxSeqLen: config.max_position_embeddings as number });
  const weightsMap = {
    format: "kiln.weights-map/1",
    dtype: o.dtype,
    mapping: config.mapping,
    files: Object.fromEntries(plans.map((p) => [p.file, Object.fromEntries(p.tensors.map((t) => [t.name, weightsMapEntry(t)]))])),
  };
  const files: Record<string, string> = { "config.json": json(config), "build_config.json": json(build), "weights.map.json": json(weightsMap) };
  if (custom) files["model.py"] = custom.source;
  // Python plugins of custom ops: a kiln_plugins/ package that must be importable when building and when loading.
  Object.assign(files, customOpFiles(graph));
  const needsPlugins = Object.keys(files).some((f) => f.startsWith(`${PLUGIN_PACKAGE}/`));
  const workers = Math.min(o.mapping.tp * o.mapping.pp, 8);
  // Printed for pasting into a shell: every argument quoted (src/io/shell.ts), so a path cannot run anything.
  const buildCommand = (outDir: string, engineDir: string) =>
    [
      ...(needsPlugins ? [pluginPythonPath(outDir)] : []),
      shellCommand([
        "trtllm-build",
        "--checkpoint_dir",
        outDir,
        "--output_dir",
        engineDir,
        "--build_config",
        `${outDir}/build_config.json`,
        ...(custom ? ["--model_cls_file", `${outDir}/model.py`, "--model_cls_name", custom.className] : []),
        ...(workers > 1 ? ["--workers", String(workers)] : []),
      ]),
    ].join(" ");
  // examples/run.py takes the per-layer list through add_common_args' --max_attention_window_size (nargs="+";
  // examples/utils.py of the 1.x line).
  const runCommand = (engineDir: string) =>
    [
      ...(o.mapping.tp * o.mapping.pp > 1 ? [`mpirun -n ${o.mapping.tp * o.mapping.pp} --allow-run-as-root`] : []),
      "python3 examples/run.py",
      `--engine_dir ${shellQuote(engineDir)}`,
      "--tokenizer_dir HF_DIR",
      "--max_output_len 32",
      ...(windows ? [`--max_attention_window_size ${windows.join(" ")}`] : []),
    ].join(" ");
  return {
    graph,
    architecture,
    ...(builtin && { builtin }),
    detection,
    files,
    plans,
    buildCommand,
    ...(windows && { maxAttentionWindow: windows }),
    runCommand,
  };
}
