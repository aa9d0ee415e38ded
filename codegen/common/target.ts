// The code-generation target interface. Every target turns the same lowered model (src/lower/to-trtllm.ts) into a
// set of small text files and weight-file plans; the compile pipeline writes them and streams the weights, so a
// target never touches the disk or the checkpoint. Targets live in their own folder under codegen/ and are listed
// once in src/driver/targets.ts.
// Invariants: emit() is pure (same input, same output); file paths are relative, "/"-separated, without "." or ".."
// segments; a target rejects options it cannot honour with a one-line TargetError naming the option.

import type { Hints } from "../../src/dsl/hints.ts";
import type { JsonValue } from "../../src/ir/attrs.ts";
import type { Graph } from "../../src/ir/graph.ts";
import type { Mapping } from "../../src/lower/mapping.ts";
import type { LoweredModel } from "../../src/lower/to-trtllm.ts";
import type { QuantSpec } from "../../src/quant/spec.ts";
import type { PlanTensor, RankFilePlan } from "../../src/weights/convert.ts";

export type OutputDtype = "float32" | "float16" | "bfloat16";

export class TargetError extends Error {
  override name = "TargetError";
}

export interface TargetOptions {
  /** The DSL model's name (user input; class and file names derive from it through codegen/python). */
  readonly modelName: string;
  readonly dtype: OutputDtype;
  readonly mapping: Mapping;
  /** The Hugging Face config.json the model was instantiated from. */
  readonly hf: Readonly<Record<string, unknown>>;
  readonly hints: Hints;
  /** Engine target only: emit model.py even for a built-in architecture. */
  readonly customCode?: boolean;
  /** Shapes of the source checkpoint's tensors (for weight-expression simplification). */
  readonly shapeOf: (name: string) => readonly number[] | undefined;
  /** safetensors metadata for written weight files. */
  readonly metadata?: Record<string, string>;
  /** Engine target only (compileModel rejects it elsewhere): quantized Linears and KV cache, resolved and calibrated. */
  readonly quant?: QuantSpec;
}

export interface Emission {
  /** The lowered graph as this target emits it. */
  readonly graph: Graph;
  /** The architecture / class name the output declares. */
  readonly architecture: string;
  /** Small text files: relative path -> content. */
  readonly files: Readonly<Record<string, string>>;
  /** Weight files to stream from the source checkpoint. */
  readonly plans: RankFilePlan<PlanTensor>[];
  /** Files of the source checkpoint directory to copy unchanged when present (tokenizer, generation config). */
  readonly copyFromSource?: readonly string[];
  /** One line on what was emitted and why (shown after "wrote DIR"). */
  readonly summary: string;
  /** What to do next with the output directory (commands, Python), one line each. */
  readonly usage: (outDir: string) => string[];
  /** Target-specific fields for `kiln compile --json`. */
  readonly info: (outDir: string) => Readonly<Record<string, JsonValue>>;
}

/** Tokenizer and generation files a Hugging Face-style output directory should carry along. */
export const HF_SIDE_FILES = [
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "tokenizer.model",
  "vocab.json",
  "merges.txt",
  "added_tokens.json",
] as const;

/** What a target can honour beyond the plain model; the driver and the CLI read these instead of target names. */
export interface TargetCapabilities {
  /** `--quant` / `--kv-cache`: quantized Linear weights and KV cache (calibrated where the scheme needs it). */
  readonly quantization: boolean;
  /** `--custom-code`: generated model code even for an architecture the runtime has built in. */
  readonly customCode: boolean;
}

export interface Target {
  readonly name: string;
  readonly description: string;
  readonly capabilities: TargetCapabilities;
  emit(lowered: LoweredModel, o: TargetOptions): Emission;
}

/** Relative output paths must stay inside the output directory. */
export function checkRelativePath(path: string): void {
  const parts = path.split("/");
  if (path.startsWith("/") || parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\\")))
    throw new TargetError(`output file path '${path}' must be relative and stay inside the output directory`);
}
