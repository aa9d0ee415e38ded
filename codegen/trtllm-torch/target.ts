// The TensorRT-LLM 1.2.1 PyTorch-backend target: an HF-style checkpoint directory (config.json with standard keys and
// `architectures` naming the generated class, model.safetensors with q/k/v and gate/up as separate tensors, the
// configuration file for `auto_map`) plus an importable package kiln_<name>/ whose modeling file registers the class
// with register_auto_model. No rank files: TensorRT-LLM slices the checkpoint per rank at load time, so one output
// serves every tp/pp (the given tp is checked against the model's sizes and used in the printed commands).
// Invariants: the checkpoint's tensor names are exactly what the generated module tree loads (checkpoint-names.ts), each
// lowered parameter is covered once.

import type { JsonValue } from "../../src/ir/attrs.ts";
import { simplifyExpr } from "../../src/weights/simplify.ts";
import { slice } from "../../src/weights/weight-map.ts";
import { configJson, emitConfiguration } from "../pytorch/configuration.ts";
import { hfStandardConfig } from "../pytorch/hf-config.ts";
import { torchNames } from "../pytorch/names.ts";
import { type Emission, HF_SIDE_FILES, type Target, TargetError, type TargetOptions } from "../common/target.ts";
import { SAFETENSORS_DTYPE } from "../common/checkpoint-plan.ts";
import { emitTorchModeling, planTorchBackendModel } from "./modeling.ts";
import { moduleTensors, type TorchTensor, torchPath } from "./checkpoint-names.ts";
import { emitPackageInit } from "./package.ts";
import { pyString } from "../python/identifiers.ts";
import { shellAssign, shellCommand } from "../../src/io/shell.ts";

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** Sizes TensorRT-LLM's column/row-parallel layers must split evenly at this tp. */
function checkTp(std: Readonly<Record<string, JsonValue>>, tp: number): void {
  const need: [string, number][] = [
    ["num_attention_heads", std.num_attention_heads as number],
    ["intermediate_size", std.intermediate_size as number],
  ];
  const bad = need.find(([, v]) => v % tp !== 0);
  if (bad) throw new TargetError(`--tp ${tp}: ${bad[0]} = ${bad[1]} is not divisible by tp=${tp}`);
  const kv = std.num_key_value_heads as number;
  if (kv % tp !== 0 && tp % kv !== 0) throw new TargetError(`--tp ${tp}: ${kv} key/value heads can be neither split nor duplicated evenly over tp=${tp}`);
}

export const torchTarget = {
  name: "trtllm-torch",
  description: "TensorRT-LLM 1.2.1 PyTorch backend: HF-style checkpoint + importable modeling package",
  capabilities: { quantization: false, customCode: false },
  emit(lowered, o: TargetOptions): Emission {
    if (o.customCode) throw new TargetError("--custom-code applies to the trtllm-engine target only");
    const names = torchNames(o.modelName);
    const std = hfStandardConfig(lowered, o.hf, o.dtype);
    checkTp(std, o.mapping.tp);
    if (lowered.numLayers < o.mapping.pp) throw new TargetError(`--pp ${o.mapping.pp}: the model has only ${lowered.numLayers} decoder layers`);
    const plan = planTorchBackendModel(lowered, Object.keys(std));
    const modeling = emitTorchModeling(plan, names, std, o.modelName);
    const config = configJson(names, { ...std, ...plan.configFields }, false);
    const configuration = emitConfiguration(names, config, o.modelName);
    // Module parameters get the backend's names (split q/k/v); every other parameter keeps its path, renamed.
    const fromModules = new Map<string, TorchTensor[]>();
    for (const n of plan.g.nodes)
      if (n.op === "trtllm.attention" || n.op === "trtllm.mlp" || n.op === "trtllm.gated_mlp")
        for (const t of moduleTensors(n)) fromModules.set(t.param, [...(fromModules.get(t.param) ?? []), t]);
    const rename = (name: string): TorchTensor[] =>
      fromModules.get(name) ?? [{ name: name === "lm_head.bias" ? "output_bias.bias" : torchPath(name), param: name }];
    const dtype = SAFETENSORS_DTYPE[o.dtype];
    const tensors = lowered.graph.params.flatMap((p) =>
      rename(p.name).map((t) => {
        const e =
          lowered.weights[t.param] ??
          (() => {
            throw new TargetError(`parameter '${t.param}' has no weight expression`);
          })();
        return { name: t.name, dtype, expr: t.rows ? simplifyExpr(slice(e, 0, t.rows[0], t.rows[1]), o.shapeOf) : e };
      }),
    );
    const pkg = names.modelType;
    const mapArgs = [o.mapping.tp > 1 && `tensor_parallel_size=${o.mapping.tp}`, o.mapping.pp > 1 && `pipeline_parallel_size=${o.mapping.pp}`].filter(Boolean);
    const serveArgs = [...(o.mapping.tp > 1 ? ["--tp_size", String(o.mapping.tp)] : []), ...(o.mapping.pp > 1 ? ["--pp_size", String(o.mapping.pp)] : [])];
    return {
      graph: plan.g,
      architecture: names.causalLm,
      files: {
        "config.json": json(config),
        [`${names.configModule}.py`]: configuration,
        [`${pkg}/__init__.py`]: emitPackageInit(names, o.modelName),
        [`${pkg}/${names.configModule}.py`]: configuration,
        [`${pkg}/${names.modelingModule}.py`]: modeling.source,
        ...Object.fromEntries(Object.entries(modeling.files).map(([f, src]) => [`${pkg}/${f}`, src])),
      },
      plans: [{ file: "model.safetensors", tensors, metadata: { format: "pt", ...(o.metadata ?? {}) } }],
      copyFromSource: HF_SIDE_FILES,
      summary: `TensorRT-LLM PyTorch-backend checkpoint + package ${pkg}/ (architecture ${names.causalLm}, ${tensors.length} tensors, ${o.dtype})`,
      usage: (outDir) => {
        const dir = outDir.replace(/(.)\/$/, "$1");
        // Printed for pasting: the path is a Python string literal inside one shell-quoted -c argument.
        const script = `import ${pkg}; from tensorrt_llm import LLM; print(LLM(model=${pyString(dir)}${mapArgs.map((a) => `, ${a}`).join("")}).generate(["Hello"]))`;
        return [
          "Run it with TensorRT-LLM 1.2.1 (PyTorch backend, on a GPU machine); the package must be importable in every rank:",
          `  ${shellAssign("PYTHONPATH", dir)} ${shellCommand(["python3", "-c", script])}`,
          `  ${shellAssign("PYTHONPATH", dir)} ${shellCommand(["trtllm-serve", dir, "--custom_module_dirs", `${dir}/${pkg}`, ...serveArgs])}`,
          "  (no tokenizer files in the directory? pass tokenizer=<HF dir> to LLM / --tokenizer <HF dir> to trtllm-serve)",
        ];
      },
      info: () => ({ package: pkg, config_class: names.config }),
    };
  },
} satisfies Target;
