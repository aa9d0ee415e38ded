// The registry of code-generation targets: `kiln compile --target NAME`. Adding a target is its own folder under
// codegen/ plus one line here.

import { hfTarget } from "../../codegen/hf/target.ts";
import type { Target, TargetCapabilities } from "../../codegen/common/target.ts";
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

/** The targets that have a capability, e.g. for "--quant applies to the trtllm-engine target only". */
export const targetsWith = (capability: keyof TargetCapabilities): TargetName[] => TARGET_NAMES.filter((n) => TARGETS[n].capabilities[capability]);

/** "a", "a and b", "a, b and c". */
const listWords = (words: readonly string[]): string => (words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words[words.length - 1]}`);

/** "the trtllm-engine target only" / "the a and b targets only": where a capability is available. */
export const onlyTargetsWith = (capability: keyof TargetCapabilities): string => {
  const names = targetsWith(capability);
  return `the ${listWords(names)} target${names.length === 1 ? "" : "s"} only`;
};

/** Help text for --target, from the registry. */
export const targetHelp = (): string => TARGET_NAMES.join(" | ");
