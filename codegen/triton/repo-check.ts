// Cross-model checks of a Triton repository that the protobuf schema cannot see:
// ensemble wiring (every mapped tensor exists with a compatible type and shape,
// internal tensors are produced before use and only once, every required step
// input and every ensemble output is fed) and the parameters each backend needs.
// Invariant: repoProblems returns [] exactly when none of these rules is broken;
// each problem is one line naming the model and tensor/parameter at fault.

import type { ModelConfig, ModelInput, ModelOutput } from "./model-config.ts";

type Tensor = { data_type: string; dims: number[]; optional?: boolean };

/** Parameters the backend reads with no default (tensorrtllm) or that our model.py requires. */
const REQUIRED_PARAMETERS: Record<string, { backend: string; params: string[] }> = {
  tensorrt_llm: {
    backend: "tensorrtllm",
    params: ["gpt_model_type", "gpt_model_path", "batch_scheduler_policy", "kv_cache_free_gpu_mem_fraction", "max_beam_width"],
  },
  preprocessing: { backend: "python", params: ["tokenizer_dir"] },
  postprocessing: { backend: "python", params: ["tokenizer_dir"] },
};

const dimsCompatible = (a: number[], b: number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i] || d === -1 || b[i] === -1);

const shapeText = (t: Tensor): string => `${t.data_type}[${t.dims.join(",")}]`;

function mismatch(a: Tensor, b: Tensor): string | null {
  if (a.data_type !== b.data_type || !dimsCompatible(a.dims, b.dims)) return `${shapeText(a)} vs ${shapeText(b)}`;
  return null;
}

function parameterProblems(config: ModelConfig): string[] {
  const rule = REQUIRED_PARAMETERS[config.name];
  if (!rule) return [];
  const problems: string[] = [];
  if (config.backend !== rule.backend) problems.push(`${config.name}: backend is "${config.backend}", expected "${rule.backend}"`);
  for (const key of rule.params) {
    const value = config.parameters?.[key]?.string_value;
    if (!value) problems.push(`${config.name}: parameter ${key} is missing or empty`);
    else if (value.includes("${")) problems.push(`${config.name}: parameter ${key} holds an unfilled template ${value}`);
  }
  return problems;
}

function wiringProblems(ensemble: ModelConfig, models: Record<string, ModelConfig>): string[] {
  const problems: string[] = [];
  const steps = ensemble.ensemble_scheduling?.step ?? [];
  if (ensemble.platform !== "ensemble") problems.push(`${ensemble.name}: platform must be "ensemble"`);
  if (steps.length === 0) problems.push(`${ensemble.name}: ensemble_scheduling has no steps`);
  // Tensors visible to the next step: ensemble inputs, then each step's outputs.
  const available = new Map<string, Tensor>(ensemble.input.map((t) => [t.name, t]));
  const byName = <T extends { name: string }>(list: T[]) => new Map(list.map((t) => [t.name, t]));

  for (const step of steps) {
    const model = models[step.model_name];
    if (!model) {
      problems.push(`${ensemble.name}: step model "${step.model_name}" is not in the repository`);
      continue;
    }
    const at = `${ensemble.name} step ${step.model_name}`;
    if (model.max_batch_size < ensemble.max_batch_size) {
      problems.push(`${at}: max_batch_size ${model.max_batch_size} < ensemble's ${ensemble.max_batch_size}`);
    }
    const inputs = byName<ModelInput>(model.input);
    for (const [modelTensor, source] of Object.entries(step.input_map)) {
      const target = inputs.get(modelTensor);
      const from = available.get(source);
      if (!target) problems.push(`${at}: input_map key "${modelTensor}" is not an input of ${model.name}`);
      if (!from) problems.push(`${at}: input_map value "${source}" is neither an ensemble input nor an earlier step output`);
      if (!target || !from) continue;
      const bad = mismatch(from, target);
      if (bad) problems.push(`${at}: "${source}" → ${modelTensor}: ${bad}`);
      if (from.optional && !target.optional) problems.push(`${at}: optional "${source}" feeds required input ${modelTensor}`);
    }
    const fed = new Set(Object.keys(step.input_map));
    for (const input of model.input) {
      if (!input.optional && !fed.has(input.name)) problems.push(`${at}: required input ${input.name} is not in input_map`);
    }
    const outputs = byName<ModelOutput>(model.output);
    for (const [modelTensor, target] of Object.entries(step.output_map)) {
      const out = outputs.get(modelTensor);
      if (!out) problems.push(`${at}: output_map key "${modelTensor}" is not an output of ${model.name}`);
      else if (available.has(target)) problems.push(`${at}: output_map value "${target}" is already produced elsewhere`);
      else available.set(target, out);
    }
  }
  for (const out of ensemble.output) {
    const produced = available.get(out.name);
    const fromInput = ensemble.input.some((t) => t.name === out.name);
    if (!produced || fromInput) problems.push(`${ensemble.name}: output ${out.name} is not produced by any step`);
    else {
      const bad = mismatch(produced, out);
      if (bad) problems.push(`${ensemble.name}: output ${out.name}: ${bad}`);
    }
  }
  return problems;
}

/** Every wiring and parameter problem of a repository whose ensemble is named `ensembleName`. */
export function repoProblems(configs: Record<string, ModelConfig>, ensembleName = "ensemble"): string[] {
  const ensemble = configs[ensembleName];
  const problems = Object.values(configs).flatMap(parameterProblems);
  if (!ensemble) return [...problems, `no model named ${ensembleName}`];
  return [...problems, ...wiringProblems(ensemble, configs)];
}
