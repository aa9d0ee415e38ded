// `kiln inspect <model.ts> --hf DIR|--config FILE [--json]`: parameter counts per module, op counts per stage
// (traced, fused, trtllm), hints in effect, and the TensorRT-LLM class the model compiles to, with the reason.

import { loadModelFile } from "../../driver/load-model-file.ts";
import { formatInspect, inspectModel } from "../../views/inspect.ts";
import { loadModelStages } from "../../views/model-stages.ts";
import { modelSource } from "./model-source.ts";

export interface InspectFlags {
  readonly hf?: string;
  readonly config?: string;
  readonly json?: boolean;
  readonly typecheck: boolean;
}

export async function inspectCommand(file: string, flags: InspectFlags, out: (s: string) => void): Promise<void> {
  const source = modelSource(flags);
  const def = await loadModelFile(file, { typecheck: flags.typecheck });
  const report = inspectModel(await loadModelStages(def, source));
  out(flags.json ? `${JSON.stringify(report)}\n` : formatInspect(report));
}
