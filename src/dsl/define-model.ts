// The contract of a model file: a name, a zod schema that turns a Hugging Face config.json into the model's own
// config, a factory for the module tree, and the weight map from HF tensor names to parameters. A model file's
// default export is one of these; `kiln` loads user files that follow the same contract.

import type { z } from "zod";
import type { Pass } from "../passes/pass.ts";
import type { WeightMapSpec } from "../weights/weight-map.ts";
import type { Module } from "./module.ts";
import type { Tensor } from "./tensor.ts";

export interface CausalLMModule extends Module {
  forward(inputIds: Tensor, positionIds: Tensor): Tensor;
}

export interface ModelDefinition<C = unknown> {
  readonly kind: "kiln.model";
  readonly name: string;
  /** Hugging Face `architectures` values this definition reads (informational and for checks). */
  readonly architectures: readonly string[];
  /** Parses config.json (HF form) into the model config. */
  readonly config: z.ZodType<C>;
  readonly create: (config: C) => CausalLMModule;
  readonly weights: (config: C) => WeightMapSpec;
  /** The model's own passes (e.g. fusions into its custom ops), run after Kiln's default pipeline. */
  readonly passes?: readonly Pass[];
}

export function defineModel<C>(def: Omit<ModelDefinition<C>, "kind">): ModelDefinition<C> {
  if (!/^[A-Za-z][\w-]*$/.test(def.name)) throw new Error(`model name '${def.name}' must start with a letter and hold only letters, digits, '_' and '-'`);
  return { kind: "kiln.model", ...def };
}

export function isModelDefinition(x: unknown): x is ModelDefinition {
  return typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "kiln.model";
}
