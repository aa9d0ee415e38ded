// The registry of code-generation targets: `kiln compile --target NAME`. Adding a target is its own folder under
// codegen/ plus one line here.

import { hfTarget } from "../../codegen/hf/target.ts";
import type { Target } from "../../codegen/common/target.ts";
import { engineTarget } from "../../codegen/trtllm-engine/target.ts";
import { torchTarget } from "../../codegen/trtllm-torch/target.ts";

export const TARGETS = {
  "trtllm-engine": engineTarget,
  "trtllm-torch": torchTarget,
  hf: hfTarget,
} as const satisfies Record<string, Target>;

export type TargetName = keyof typeof TARGETS;

export const DEFAULT_TARGET: TargetName = "trtllm-engine";

export const TARGET_NAMES = Object.keys(TARGETS) as TargetName[];

export const isTargetName = (s: string): s is TargetName => Object.hasOwn(TARGETS, s);
