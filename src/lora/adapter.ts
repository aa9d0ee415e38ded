// Reading a PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) into one record per adapted
// module: its A [r, in] and B [out, r] matrices, its rank, alpha and scale. Semantics follow peft 0.21.0:
//   - scale = alpha / r, or alpha / sqrt(r) with use_rslora (src/peft/tuners/lora/layer.py, LoraLayer.update_layer);
//   - rank_pattern / alpha_pattern: the first key K (in file order) whose regex `(.*\.)?(K)$` matches the module's
//     full name gives its r / alpha (src/peft/utils/other.py, get_pattern_key; src/peft/tuners/lora/model.py,
//     LoraModel._create_and_replace);
//   - saved tensors are `base_model.model.<module>.lora_A.weight` / `.lora_B.weight` (the adapter name dropped,
//     src/peft/utils/save_and_load.py, get_peft_model_state_dict);
//   - fan_in_fan_out: the base weight is stored [in, out] (GPT-2's Conv1D), A and B are not.
// Invariants: every tensor in the file is accounted for; anything Kiln cannot apply exactly (DoRA, trained biases,
// embedding LoRA, modules_to_save, ...) is a one-line LoraError naming the option or the tensor, never ignored.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { SafetensorsFile } from "../weights/safetensors.ts";
import type { Dense } from "../weights/weight-map.ts";

export class LoraError extends Error {
  override name = "LoraError";
}

const PatternMap = z.record(z.string(), z.number());
const AdapterConfig = z.looseObject({
  peft_type: z.string().optional(),
  r: z.number().int().positive(),
  lora_alpha: z.number(),
  use_rslora: z.boolean().default(false),
  target_modules: z.union([z.array(z.string()), z.string()]).nullish(),
  fan_in_fan_out: z.boolean().default(false),
  rank_pattern: PatternMap.nullish(),
  alpha_pattern: PatternMap.nullish(),
  bias: z.string().default("none"),
  use_dora: z.boolean().default(false),
  lora_bias: z.boolean().default(false),
  modules_to_save: z.array(z.string()).nullish(),
  trainable_token_indices: z.unknown().optional(),
  layer_replication: z.unknown().optional(),
  target_parameters: z.unknown().optional(),
  base_model_name_or_path: z.string().nullish(),
});
export type AdapterConfig = z.infer<typeof AdapterConfig>;

/** Config options Kiln does not apply, each with the reason given in the error. */
const UNSUPPORTED: readonly [keyof AdapterConfig, (c: AdapterConfig) => boolean, string][] = [
  ["peft_type", (c) => c.peft_type !== undefined && c.peft_type !== "LORA", "only LoRA adapters are supported"],
  ["use_dora", (c) => c.use_dora, "DoRA (weight-decomposed LoRA) is not supported"],
  ["bias", (c) => c.bias !== "none", 'trained biases are not supported (bias must be "none")'],
  ["lora_bias", (c) => c.lora_bias, "a bias on lora_B is not supported"],
  ["modules_to_save", (c) => !!c.modules_to_save?.length, "fully trained extra modules (modules_to_save) are not supported"],
  ["trainable_token_indices", (c) => c.trainable_token_indices != null, "trainable token embeddings are not supported"],
  ["layer_replication", (c) => c.layer_replication != null, "layer replication changes the model's depth and is not supported"],
  [
    "target_parameters",
    (c) => Array.isArray(c.target_parameters) && c.target_parameters.length > 0,
    "LoRA on bare parameters (target_parameters) is not supported",
  ],
];

export interface LoraModule {
  /** The adapted module's full name in the base model, e.g. `model.layers.0.self_attn.q_proj`. */
  readonly module: string;
  /** The adapter tensor names, for errors. */
  readonly tensorA: string;
  readonly tensorB: string;
  readonly rank: number;
  readonly alpha: number;
  /** alpha / r, or alpha / sqrt(r) with rsLoRA. */
  readonly scale: number;
  /** [r, in] */
  readonly A: Dense;
  /** [out, r] */
  readonly B: Dense;
}

export interface LoraAdapter {
  readonly dir: string;
  readonly config: AdapterConfig;
  /** The base weight is stored [in, out] (Conv1D) rather than [out, in]. */
  readonly fanInFanOut: boolean;
  /** In file order. */
  readonly modules: readonly LoraModule[];
}

const PREFIX = "base_model.model.";
const TENSOR = /^(.+)\.(lora_A|lora_B)\.weight$/;
/** Adapter tensors of kinds Kiln rejects, recognised by name so the error says what they are. */
const REJECTED_TENSORS: readonly [RegExp, string][] = [
  [/\.lora_embedding_[AB]$|\.lora_embedding_[AB]\./, "embedding LoRA is not supported"],
  [/\.lora_magnitude_vector(\.|$)/, "DoRA (a magnitude vector) is not supported"],
  [/\.lora_[AB]\.bias$/, "a LoRA bias is not supported"],
];

/** peft's check_target_module_exists: a regex string matches the whole name; a list entry equals it or its last
 * dotted components; "all-linear" matches every Linear (the weight map check in bind.ts catches the rest). */
export function isTargetModule(target: AdapterConfig["target_modules"], module: string): boolean {
  if (target == null || target === "all-linear") return true;
  if (typeof target === "string") return new RegExp(`^(?:${target})$`).test(module);
  return target.some((t) => module === t || module.endsWith(`.${t}`));
}

/** peft's get_pattern_key: the first pattern key whose `(.*\.)?(key)$` matches the whole module name. */
export function patternValue(patterns: Readonly<Record<string, number>> | null | undefined, module: string): number | undefined {
  for (const [key, value] of Object.entries(patterns ?? {})) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(${key})$`);
    } catch {
      throw new LoraError(`pattern '${key}' is not a valid regular expression`);
    }
    if (re.test(module)) return value;
  }
  return undefined;
}

export function loraScale(alpha: number, rank: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

function readConfig(dir: string): AdapterConfig {
  const path = join(dir, "adapter_config.json");
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new LoraError(
      `${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "not found (is --lora a PEFT adapter directory?)" : `not valid JSON (${(e as Error).message})`}`,
    );
  }
  const r = AdapterConfig.safeParse(json);
  if (!r.success) throw new LoraError(`${path}: ${r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  for (const [field, bad, why] of UNSUPPORTED) if (bad(r.data)) throw new LoraError(`${path}: ${String(field)} = ${JSON.stringify(r.data[field])}: ${why}`);
  return r.data;
}

export async function readAdapter(dir: string): Promise<LoraAdapter> {
  const config = readConfig(dir);
  const path = join(dir, "adapter_model.safetensors");
  const file = await SafetensorsFile.open(path).catch((e: NodeJS.ErrnoException) => {
    throw e.code === "ENOENT" ? new LoraError(`${path}: not found (Kiln reads safetensors adapters only)`) : e;
  });
  try {
    const pairs = new Map<string, { A?: string; B?: string }>();
    for (const t of file.tensors()) {
      const rejected = REJECTED_TENSORS.find(([re]) => re.test(t.name));
      if (rejected) throw new LoraError(`${path}: tensor '${t.name}': ${rejected[1]}`);
      const m = TENSOR.exec(t.name);
      if (!m) throw new LoraError(`${path}: tensor '${t.name}' is not a LoRA A or B matrix (expected <module>.lora_A.weight / .lora_B.weight)`);
      if (t.shape.length !== 2) throw new LoraError(`${path}: tensor '${t.name}' is [${t.shape}], LoRA matrices are 2-D`);
      const module = m[1]!.startsWith(PREFIX) ? m[1]!.slice(PREFIX.length) : m[1]!;
      const pair = pairs.get(module) ?? {};
      pair[m[2] === "lora_A" ? "A" : "B"] = t.name;
      pairs.set(module, pair);
    }
    if (pairs.size === 0) throw new LoraError(`${path}: holds no LoRA tensors`);
    const modules: LoraModule[] = [];
    for (const [module, { A, B }] of pairs) {
      if (!A || !B) throw new LoraError(`${path}: module '${module}' has ${A ? `'${A}' but no lora_B` : `'${B}' but no lora_A`}`);
      const [rank, fanIn] = file.info(A)!.shape as [number, number];
      const [fanOut, rankB] = file.info(B)!.shape as [number, number];
      if (rankB !== rank) throw new LoraError(`${path}: '${B}' is [${fanOut}, ${rankB}] but '${A}' has rank ${rank}`);
      if (!isTargetModule(config.target_modules, module))
        throw new LoraError(`${path}: '${A}' adapts module '${module}', which target_modules ${JSON.stringify(config.target_modules)} does not name`);
      const configRank = patternValue(config.rank_pattern, module) ?? config.r;
      if (configRank !== rank) throw new LoraError(`${path}: '${A}' has rank ${rank} but adapter_config.json gives module '${module}' r = ${configRank}`);
      const alpha = patternValue(config.alpha_pattern, module) ?? config.lora_alpha;
      modules.push({
        module,
        tensorA: A,
        tensorB: B,
        rank,
        alpha,
        scale: loraScale(alpha, rank, config.use_rslora),
        A: { shape: [rank, fanIn], data: await file.readF32(A) },
        B: { shape: [fanOut, rank], data: await file.readF32(B) },
      });
    }
    return { dir, config, fanInFanOut: config.fan_in_fan_out, modules };
  } finally {
    await file.close();
  }
}
