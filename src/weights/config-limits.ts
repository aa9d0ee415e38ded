// Sizes in a Hugging Face config.json that no model can have, checked before anything is traced or allocated: a
// config alone (`kiln plan --config`) must not be able to exhaust memory or time. Reads the standard field names
// of every family (llama/gpt2/gptj spellings); missing fields are not checked here (the model's schema does that).
// Invariants: pure; one ConfigError listing every problem (capped), naming the file and field.

import { capList } from "../io/kiln-error.ts";
import { ConfigError } from "./hf-config.ts";

/** Upper bounds far above any real model, low enough that tracing or planning stays bounded. */
export const CONFIG_LIMITS = {
  layers: 100_000,
  heads: 100_000,
  hidden: 10_000_000,
  vocab: 100_000_000,
  intermediate: 100_000_000,
  positions: 1_000_000_000,
  parameters: 1e13,
} as const;

const FIELDS = {
  layers: ["num_hidden_layers", "n_layer", "num_layers"],
  heads: ["num_attention_heads", "n_head"],
  kvHeads: ["num_key_value_heads", "num_kv_heads"],
  hidden: ["hidden_size", "n_embd", "d_model"],
  vocab: ["vocab_size"],
  intermediate: ["intermediate_size", "n_inner", "ffn_dim"],
  positions: ["max_position_embeddings", "n_positions", "n_ctx"],
  headDim: ["head_dim"],
} as const;

type Dim = keyof typeof FIELDS;

function read(hf: Readonly<Record<string, unknown>>, dim: Dim): { field: string; value: number } | undefined {
  for (const field of FIELDS[dim]) {
    const v = hf[field];
    if (typeof v === "number") return { field, value: v };
  }
  return undefined;
}

/** Every impossible size in `hf`; empty when the sizes are plausible. */
export function configSizeProblems(hf: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  const get = (d: Dim) => read(hf, d);
  for (const d of ["layers", "heads", "hidden", "vocab", "intermediate", "positions"] as const) {
    const f = get(d);
    if (f && Number.isFinite(f.value) && f.value > CONFIG_LIMITS[d])
      problems.push(`${f.field} = ${f.value} is more than Kiln accepts (${CONFIG_LIMITS[d].toLocaleString("en-US")})`);
  }
  const [heads, kv, hidden, headDim] = [get("heads"), get("kvHeads"), get("hidden"), get("headDim")];
  if (heads && hidden && !headDim && heads.value > 0 && Number.isInteger(hidden.value) && hidden.value % heads.value !== 0)
    problems.push(`${hidden.field} = ${hidden.value} is not divisible by ${heads.field} = ${heads.value} (and no head_dim is given)`);
  if (heads && kv && kv.value > 0 && heads.value % kv.value !== 0)
    problems.push(`${heads.field} = ${heads.value} is not a multiple of ${kv.field} = ${kv.value}`);
  const [layers, vocab, inter] = [get("layers"), get("vocab"), get("intermediate")];
  if (layers && hidden) {
    const h = hidden.value;
    const i = inter?.value ?? 4 * h;
    const estimate = layers.value * (4 * h * h + 3 * h * i) + 2 * (vocab?.value ?? 0) * h;
    if (estimate > CONFIG_LIMITS.parameters) problems.push(`the sizes make about ${estimate.toExponential(1)} parameters, more than Kiln accepts (1e13)`);
  }
  return problems;
}

export function checkConfigSizes(hf: unknown, configPath: string): void {
  if (hf === null || typeof hf !== "object") return;
  const problems = configSizeProblems(hf as Record<string, unknown>);
  if (problems.length) throw new ConfigError(`${configPath}: ${problems.length === 1 ? problems[0] : `impossible sizes: ${capList(problems, 10, "; ")}`}`);
}
