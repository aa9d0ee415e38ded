// Names of the generated files and classes of the PyTorch-based targets, all derived from the DSL model name through
// codegen/python/identifiers: `kiln_<name>` (model_type, package and file stems, lower-case snake) and
// `Kiln<Name>...` classes.

import { pascalCase, sanitizeIdentifier } from "../python/identifiers.ts";

export interface TorchNames {
  readonly modelType: string;
  readonly configModule: string;
  readonly modelingModule: string;
  readonly config: string;
  readonly layer: string;
  readonly pretrained: string;
  readonly model: string;
  readonly causalLm: string;
}

/** "Llama-3 8B" -> "llama_3_8b": a lower-case Python module stem. */
export function snakeName(modelName: string): string {
  return sanitizeIdentifier(modelName).toLowerCase().replace(/_+/g, "_").replace(/^_|_$/g, "") || "custom";
}

export function torchNames(modelName: string): TorchNames {
  const snake = `kiln_${snakeName(modelName)}`;
  const stem = `Kiln${pascalCase(modelName)}`;
  return {
    modelType: snake,
    configModule: `configuration_${snake}`,
    modelingModule: `modeling_${snake}`,
    config: `${stem}Config`,
    layer: `${stem}DecoderLayer`,
    pretrained: `${stem}PreTrainedModel`,
    model: `${stem}Model`,
    causalLm: `${stem}ForCausalLM`,
  };
}
