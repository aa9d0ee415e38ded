// Reading Hugging Face config.json files: the fields every causal-LM config shares, and rotary settings in both
// transformers 4.x form (`rope_theta` + `rope_scaling`) and 5.x form (`rope_parameters`). Errors name config.json
// and the field (zod's messages, one line).

import { existsSync, readFileSync } from "node:fs";
import { checkInputDir, checkInputFile } from "../io/input-file.ts";
import { join } from "node:path";
import { z } from "zod";

export class ConfigError extends Error {}

export function readHFConfigJson(dir: string): unknown {
  if (existsSync(dir)) checkInputDir(dir, "the Hugging Face checkpoint (--hf)");
  const path = join(dir, "config.json");
  if (existsSync(path)) checkInputFile(path, "the Hugging Face config");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new ConfigError(`${path}: cannot read the Hugging Face config (is --hf a checkpoint directory?)`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`);
  throw new ConfigError(`${what}: ${issues.join("; ")}`);
}

const RopeScaling4 = z.looseObject({
  type: z.string().optional(),
  rope_type: z.string().optional(),
  factor: z.number().positive().optional(),
  low_freq_factor: z.number().optional(),
  high_freq_factor: z.number().optional(),
  original_max_position_embeddings: z.number().int().optional(),
  // yarn
  beta_fast: z.number().nullish(),
  beta_slow: z.number().nullish(),
  mscale: z.number().nullish(),
  mscale_all_dim: z.number().nullish(),
  attention_factor: z.number().nullish(),
  truncate: z.boolean().nullish(),
  // longrope
  short_factor: z.array(z.number()).nullish(),
  long_factor: z.array(z.number()).nullish(),
});

/** The rope fields of a HF config; pass through `ropeFromHF`. */
export const HFRopeFields = {
  rope_theta: z.number().positive().optional(),
  rope_scaling: RopeScaling4.nullable().optional(),
  rope_parameters: RopeScaling4.extend({ rope_theta: z.number().positive().optional(), partial_rotary_factor: z.number().positive().max(1).optional() })
    .nullable()
    .optional(),
  /** Partial rotary in its several spellings (transformers 4.x `rotary_pct` / `partial_rotary_factor` / `rotary_dim`). */
  partial_rotary_factor: z.number().positive().max(1).optional(),
  rotary_pct: z.number().positive().max(1).optional(),
  rotary_dim: z.number().int().positive().nullish(),
  original_max_position_embeddings: z.number().int().positive().optional(),
};

/** Rotary scaling, the types transformers' modeling_rope_utils.py has (5.17), with every derived number resolved. */
export type KilnRopeScaling =
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number }
  /** Dynamic NTK: the base grows when a call's positions reach past maxPositions (max_position_embeddings). */
  | { type: "dynamic"; factor: number; maxPositions: number }
  /** YaRN: per-frequency blend of interpolation and extrapolation; cos/sin scaled by attentionFactor. */
  | {
      type: "yarn";
      factor: number;
      originalMaxPositionEmbeddings: number;
      betaFast: number;
      betaSlow: number;
      truncate: boolean;
      attentionFactor: number;
      /** The config's own mscale / mscale_all_dim (0 when absent), for targets that derive the factor themselves. */
      mscale: number;
      mscaleAllDim: number;
    }
  /** LongRoPE (Phi-3 su): per-frequency divisors, long ones once a call's positions pass originalMaxPositionEmbeddings. */
  | { type: "longrope"; shortFactor: number[]; longFactor: number[]; originalMaxPositionEmbeddings: number; attentionFactor: number };

export interface KilnRope {
  readonly theta: number;
  readonly scaling: null | KilnRopeScaling;
}

type RopeInput = {
  rope_theta?: number | undefined;
  rope_scaling?: z.infer<typeof RopeScaling4> | null | undefined;
  rope_parameters?: (z.infer<typeof RopeScaling4> & { rope_theta?: number | undefined }) | null | undefined;
  max_position_embeddings?: number | undefined;
  /** Top-level in Phi-3 configs; transformers copies it into the rope parameters (standardize_rope_params). */
  original_max_position_embeddings?: number | undefined;
};

/** YaRN's get_mscale (modeling_rope_utils.py _compute_yarn_parameters @ transformers 5.17). */
const yarnMscale = (scale: number, mscale = 1) => (scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1);

/** Rotary theta and scaling from either config form; an unsupported scaling type is a one-line ConfigError. `aliases`
 *  renames types first (Phi-3 reads "su" and "yarn" as longrope, configuration_phi3.py @ transformers 5.17). */
export function ropeFromHF(c: RopeInput, defaultTheta = 10000, aliases: Readonly<Record<string, string>> = {}): KilnRope {
  const p = c.rope_parameters ?? c.rope_scaling ?? undefined;
  const theta = c.rope_parameters?.rope_theta ?? c.rope_theta ?? defaultTheta;
  const given = p?.rope_type ?? p?.type ?? "default";
  const type = aliases[given] ?? given;
  const need = <T>(v: T | undefined | null, field: string): T => {
    if (v === undefined || v === null) throw new ConfigError(`config.json: rope scaling '${type}' needs '${field}'`);
    return v;
  };
  // standardize_rope_params: a top-level original_max_position_embeddings wins, else the rope dict's, else
  // max_position_embeddings (for llama3, yarn and longrope).
  const originalMax = () =>
    c.original_max_position_embeddings ?? p?.original_max_position_embeddings ?? need(c.max_position_embeddings, "max_position_embeddings");
  if (type === "default") return { theta, scaling: null };
  if (type === "dynamic")
    return { theta, scaling: { type: "dynamic", factor: need(p?.factor, "factor"), maxPositions: need(c.max_position_embeddings, "max_position_embeddings") } };
  if (type === "yarn") {
    const orig = originalMax();
    const factor = p?.factor ?? need(c.max_position_embeddings, "max_position_embeddings") / orig;
    const attentionFactor =
      p?.attention_factor ?? (p?.mscale && p?.mscale_all_dim ? yarnMscale(factor, p.mscale) / yarnMscale(factor, p.mscale_all_dim) : yarnMscale(factor));
    return {
      theta,
      scaling: {
        type: "yarn",
        factor,
        originalMaxPositionEmbeddings: orig,
        betaFast: p?.beta_fast || 32,
        betaSlow: p?.beta_slow || 1,
        truncate: p?.truncate ?? true,
        attentionFactor,
        mscale: p?.mscale ?? 0,
        mscaleAllDim: p?.mscale_all_dim ?? 0,
      },
    };
  }
  if (type === "longrope") {
    const orig = originalMax();
    const factor = p?.factor ?? need(c.max_position_embeddings, "max_position_embeddings") / orig;
    // _compute_longrope_parameters: sqrt(1 + log(factor) / log(original_max_position_embeddings)) when factor > 1.
    const attentionFactor = p?.attention_factor ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(orig)));
    return {
      theta,
      scaling: {
        type: "longrope",
        shortFactor: need(p?.short_factor, "short_factor"),
        longFactor: need(p?.long_factor, "long_factor"),
        originalMaxPositionEmbeddings: orig,
        attentionFactor,
      },
    };
  }
  if (type === "linear") return { theta, scaling: { type: "linear", factor: need(p?.factor, "factor") } };
  if (type === "llama3")
    return {
      theta,
      scaling: {
        type: "llama3",
        factor: need(p?.factor, "factor"),
        lowFreqFactor: need(p?.low_freq_factor, "low_freq_factor"),
        highFreqFactor: need(p?.high_freq_factor, "high_freq_factor"),
        originalMaxPositionEmbeddings: need(p?.original_max_position_embeddings, "original_max_position_embeddings"),
      },
    };
  throw new ConfigError(`config.json: rope scaling type '${given}' is not supported (supported: default, linear, llama3, dynamic, yarn, longrope)`);
}

type PartialRotaryInput = {
  rope_parameters?: { partial_rotary_factor?: number | undefined } | null | undefined;
  partial_rotary_factor?: number | undefined;
  rotary_pct?: number | undefined;
  rotary_dim?: number | null | undefined;
};

/**
 * Rotary channels per head for partial rotary: an explicit `rotary_dim` wins, else int(head_dim * factor) with the
 * factor from `rope_parameters.partial_rotary_factor` (transformers 5.x), `partial_rotary_factor` or `rotary_pct`
 * (4.x; GPT-NeoX, Phi, StableLM), else `defaultFactor` (transformers computes `int(head_dim * partial_rotary_factor)`,
 * modeling_rope_utils.py @ 5.17). The result must be even (rotate-half pairs channels).
 */
export function rotaryDimFromHF(c: PartialRotaryInput, headDim: number, defaultFactor = 1): number {
  const factor = c.rope_parameters?.partial_rotary_factor ?? c.partial_rotary_factor ?? c.rotary_pct ?? defaultFactor;
  const dim = c.rotary_dim ?? Math.trunc(headDim * factor);
  if (dim <= 0 || dim > headDim || dim % 2 !== 0)
    throw new ConfigError(`config.json: partial rotary gives ${dim} rotary channels of head_dim ${headDim}; it must be even and in (0, head_dim]`);
  return dim;
}

/** The sliding-window fields of a HF config (Mistral, Qwen2, Gemma 2/3, ...); pass through `slidingWindowsFromHF`. */
export const HFSlidingWindowFields = {
  sliding_window: z.number().int().positive().nullish(),
  use_sliding_window: z.boolean().optional(),
  max_window_layers: z.number().int().nonnegative().optional(),
  layer_types: z.array(z.string()).nullish(),
};

type SlidingInput = {
  sliding_window?: number | null | undefined;
  use_sliding_window?: boolean | undefined;
  max_window_layers?: number | undefined;
  layer_types?: string[] | null | undefined;
};

/**
 * Per-layer attention window in tokens (0 = global), as transformers decides it: an explicit `layer_types` list
 * ("sliding_attention" | "full_attention") wins (transformers 5.x writes it for Qwen2, Gemma 2/3, ...); otherwise
 * `use_sliding_window: false` turns the window off (Qwen2), `max_window_layers` keeps layers below it global
 * (Qwen2: `i >= max_window_layers` slide, configuration_qwen2.py @ transformers 5.17), and a plain `sliding_window`
 * applies to every layer (Mistral).
 */
export function slidingWindowsFromHF(c: SlidingInput, layers: number): number[] {
  const w = c.sliding_window ?? 0;
  if (c.layer_types) {
    if (c.layer_types.length !== layers) throw new ConfigError(`config.json: layer_types has ${c.layer_types.length} entries for ${layers} layers`);
    return c.layer_types.map((t, i) => {
      if (t === "full_attention") return 0;
      if (t !== "sliding_attention")
        throw new ConfigError(`config.json: layer_types[${i}] '${t}' is not supported (supported: full_attention, sliding_attention)`);
      if (!w) throw new ConfigError(`config.json: layer_types[${i}] is sliding_attention but sliding_window is not set`);
      return w;
    });
  }
  if (!w || c.use_sliding_window === false) return Array.from({ length: layers }, () => 0);
  return Array.from({ length: layers }, (_, i) => (c.max_window_layers !== undefined && c.use_sliding_window !== undefined && i < c.max_window_layers ? 0 : w));
}
