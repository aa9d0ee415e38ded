// kiln_<name>/__init__.py: importing the package registers the generated model class with TensorRT-LLM
// (register_auto_model runs when the modeling module is imported) and the config class with transformers'
// AutoConfig, so `LLM(model=dir)` and `trtllm-serve dir --custom_module_dirs dir/kiln_<name>` resolve both without
// trust_remote_code.

import { pyString } from "../python/identifiers.ts";
import { PyWriter } from "../python/writer.ts";
import type { TorchNames } from "../pytorch/names.ts";

export function emitPackageInit(names: TorchNames, modelName: string): string {
  const w = new PyWriter();
  w.docstring([
    `Kiln-generated TensorRT-LLM PyTorch-backend model ${pyString(modelName).slice(1, -1)}.`,
    "",
    `Importing this package registers ${names.causalLm} (register_auto_model)`,
    `and ${names.config} (transformers AutoConfig).`,
  ]);
  w.line("from transformers import AutoConfig");
  w.line();
  w.line(`from .${names.configModule} import ${names.config}`);
  w.line(`from .${names.modelingModule} import ${names.causalLm}`);
  w.line();
  w.line(`AutoConfig.register(${names.config}.model_type, ${names.config}, exist_ok=True)`);
  w.line();
  w.line(`__all__ = [${pyString(names.config)}, ${pyString(names.causalLm)}]`);
  return w.toString();
}
