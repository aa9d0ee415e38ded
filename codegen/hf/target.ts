// The Hugging Face remote-code target: a directory that
// `transformers.AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)` loads — config.json with
// auto_map, configuration_kiln_<name>.py, modeling_kiln_<name>.py (plain PyTorch, generated from the lowered graph,
// KV cache for generate()) and model.safetensors holding the lowered graph's parameters (fused QKV, TensorRT-LLM
// module names) under exactly the names the generated modules register.
// Invariants: one device, no parallelism (tp = pp = 1); the weight plan lists every graph parameter once, in graph
// order.

import { pyString } from "../python/identifiers.ts";
import type { JsonValue } from "../../src/ir/attrs.ts";
import { SAFETENSORS_DTYPE } from "../common/checkpoint-plan.ts";
import { hfStandardConfig } from "../pytorch/hf-config.ts";
import { type Emission, HF_SIDE_FILES, type Target, TargetError, type TargetOptions } from "../common/target.ts";
import { configJson, emitConfiguration } from "../pytorch/configuration.ts";
import { emitHfModeling, planHfModel } from "./modeling.ts";
import { torchNames } from "../pytorch/names.ts";

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

export const hfTarget = {
  name: "hf",
  description: "Hugging Face remote-code model (plain PyTorch; AutoModelForCausalLM with trust_remote_code=True)",
  capabilities: { quantization: false, customCode: false },
  emit(lowered, o: TargetOptions): Emission {
    if (o.mapping.tp !== 1 || o.mapping.pp !== 1)
      throw new TargetError(
        `--tp/--pp: the hf target writes a single-device model (got tp=${o.mapping.tp}, pp=${o.mapping.pp}); shard it with transformers' own tools instead`,
      );
    if (o.customCode) throw new TargetError("--custom-code applies to the trtllm-engine target only");
    const names = torchNames(o.modelName);
    const std = hfStandardConfig(lowered, o.hf, o.dtype);
    const plan = planHfModel(lowered, Object.keys(std));
    const modeling = emitHfModeling(plan, names, std, o.modelName);
    const config = configJson(names, { ...std, ...modeling.configFields }, true);
    const dtype = SAFETENSORS_DTYPE[o.dtype];
    const tensors = lowered.graph.params.map((p) => ({ name: p.name, dtype, expr: lowered.weights[p.name]! }));
    const load = (dir: string) => `AutoModelForCausalLM.from_pretrained(${pyString(dir)}, trust_remote_code=True)`;
    return {
      graph: lowered.graph,
      architecture: names.causalLm,
      files: {
        "config.json": json(config),
        [`${names.configModule}.py`]: emitConfiguration(names, config, o.modelName),
        [`${names.modelingModule}.py`]: modeling.source,
        ...modeling.files,
      },
      plans: [{ file: "model.safetensors", tensors, metadata: { format: "pt", ...(o.metadata ?? {}) } }],
      copyFromSource: HF_SIDE_FILES,
      summary: `Hugging Face remote-code model ${names.causalLm} (model_type ${names.modelType}, ${tensors.length} tensors, ${o.dtype})`,
      usage: (outDir) => [
        "Load it with transformers (trust_remote_code runs the generated modeling file):",
        `  from transformers import AutoModelForCausalLM`,
        `  model = ${load(outDir)}`,
      ],
      info: () => ({ model_type: names.modelType, config_class: names.config }) satisfies Record<string, JsonValue>,
    };
  },
} satisfies Target;
