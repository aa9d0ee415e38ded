// The `--hf DIR | --config FILE` choice shared by `kiln graph`, `kiln plan` and `kiln inspect`: exactly one, so a
// model is sized either by a checkpoint directory or by a bare config.json.

import type { ModelSource } from "../../views/model-stages.ts";
import { UsageError } from "../errors.ts";

export function modelSource(flags: { readonly hf?: string; readonly config?: string }): ModelSource {
  if (flags.hf !== undefined && flags.config !== undefined) throw new UsageError("give either --hf DIR or --config FILE, not both");
  if (flags.hf !== undefined) return { hfDir: flags.hf };
  if (flags.config !== undefined) return { configFile: flags.config };
  throw new UsageError("give --hf DIR (a Hugging Face checkpoint) or --config FILE (its config.json) to size the model");
}
