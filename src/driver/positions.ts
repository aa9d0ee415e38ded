// How many positions a traced causal LM can take, read from its graph (not from model code): an `embedding` whose
// ids are the `position_ids` input is a learned position table, whose rows are a hard limit; a `rope` node means
// rotary positions, where the config's max_position_embeddings (or n_positions / n_ctx) is the trained length,
// past which results degrade but still compute. `kiln run` errors past a learned limit and warns past a RoPE one.

import type { Graph } from "../ir/graph.ts";
import { KilnError } from "../io/kiln-error.ts";

export class PositionLimitError extends KilnError {}

export interface PositionLimit {
  readonly kind: "learned" | "rope" | "none";
  /** Positions the model was built or trained for (undefined: unknown). */
  readonly max?: number;
}

export function positionLimit(g: Graph, hf: Readonly<Record<string, unknown>>): PositionLimit {
  const positionIds = g.inputs.find((i) => i.name === "position_ids")?.value;
  const learned = g.nodes.find((n) => n.op === "embedding" && positionIds !== undefined && n.inputs.includes(positionIds));
  if (learned) {
    const table = learned.inputs.find((v) => v !== positionIds)!;
    return { kind: "learned", max: g.values.get(table)!.shape[0] as number };
  }
  if (!g.nodes.some((n) => n.op === "rope")) return { kind: "none" };
  const max = [hf.max_position_embeddings, hf.n_positions, hf.n_ctx].find((v): v is number => typeof v === "number" && Number.isInteger(v) && v > 0);
  return { kind: "rope", ...(max !== undefined && { max }) };
}

/** Throws past a learned table, returns a warning past a RoPE model's trained length, else undefined. */
export function checkPromptLength(limit: PositionLimit, promptTokens: number, newTokens: number): string | undefined {
  // The last generated token is never fed back, so N new tokens use N - 1 positions past the prompt.
  const total = promptTokens + Math.max(newTokens - 1, 0);
  if (limit.max === undefined || total <= limit.max) return undefined;
  const what = `the prompt (${promptTokens} tokens) with --max-new-tokens ${newTokens} needs ${total} positions`;
  if (limit.kind === "learned")
    throw new PositionLimitError(`${what}, but the model's learned position table has ${limit.max} rows; shorten the prompt or lower --max-new-tokens`);
  return `${what}, past the ${limit.max} the model was trained for (max_position_embeddings); rotary positions still compute, but quality usually degrades`;
}
