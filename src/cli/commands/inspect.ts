// `kiln inspect <model.ts> --hf DIR|--config FILE [--json]`: parameter counts per module, op counts per stage
// (traced, fused, trtllm), hints in effect, and the TensorRT-LLM class the model compiles to, with the reason.

import { chooseModel } from "../../driver/zoo.ts";
import { formatInspect, inspectModel } from "../../views/inspect.ts";
import { loadModelStages } from "../../views/model-stages.ts";
import { modelSource } from "./model-source.ts";

export interface InspectFlags {
  readonly hf?: string;
  readonly config?: string;
  readonly json?: boolean;
  readonly typecheck: boolean;
}

export async function inspectCommand(spec: string | undefined, flags: InspectFlags, out: (s: string) => void): Promise<void> {
  const source = modelSource(flags);
  const { def } = await chooseModel(spec, flags, { typecheck: flags.typecheck });
  const report = inspectModel(await loadModelStages(def, source));
  out(flags.json ? `${JSON.stringify(report)}\n` : formatInspect(report));
}
