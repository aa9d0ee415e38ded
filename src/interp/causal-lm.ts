// Running a traced causal LM in the interpreter: logits for a prompt (all positions) and greedy generation.
// Generation recomputes the whole sequence each step (no KV cache): simple and exact, fine for small models.

import type { Graph } from "../ir/graph.ts";
import { runGraph } from "./run.ts";
import { i32, type RTensor } from "./tensor.ts";

export interface LogitsResult {
  /** [T, vocab] row-major. */
  readonly logits: Float32Array;
  readonly vocab: number;
}

/** The causal-LM inputs for one prompt: ids and positions 0..T-1, batch of one. */
export function causalInputs(ids: readonly number[]): Map<string, RTensor> {
  const T = ids.length;
  if (T === 0) throw new Error("the prompt is empty: give at least one token id");
  return new Map([
    ["input_ids", i32([1, T], Int32Array.from(ids))],
    ["position_ids", i32([1, T], Int32Array.from({ length: T }, (_, i) => i))],
  ]);
}

export function causalLMLogits(g: Graph, params: ReadonlyMap<string, RTensor>, ids: readonly number[]): LogitsResult {
  const out = runGraph(g, causalInputs(ids), params).get("logits");
  if (!out) throw new Error(`graph '${g.name}' has no 'logits' output`);
  return { logits: out.data as Float32Array, vocab: out.shape[out.shape.length - 1]! };
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export function greedyGenerate(g: Graph, params: ReadonlyMap<string, RTensor>, prompt: readonly number[], maxNewTokens: number, eos?: number): number[] {
  const seq = [...prompt];
  const generated: number[] = [];
  for (let step = 0; step < maxNewTokens; step++) {
    const { logits, vocab } = causalLMLogits(g, params, seq);
    const next = argmax(logits.subarray((seq.length - 1) * vocab, seq.length * vocab));
    generated.push(next);
    seq.push(next);
    if (next === eos) break;
  }
  return generated;
}
