// Running a traced causal LM in the interpreter: logits for a prompt (all positions) and greedy generation.
// Generation runs the prompt once and then one token per step through a KV cache (kv-cache.ts) where the graph
// allows it, with logits bit-identical to recomputing the whole sequence; other graphs recompute every step.

import type { Graph } from "../ir/graph.ts";
import { KvCacheSession, kvCacheSupport } from "./kv-cache.ts";
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
    [
      "position_ids",
      i32(
        [1, T],
        Int32Array.from({ length: T }, (_, i) => i),
      ),
    ],
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

export interface Generation extends LogitsResult {
  /** The generated token ids (stops after `eos` when given; eos included). */
  readonly tokens: number[];
  /** For each generated token, the logits row it was chosen from. */
  readonly stepLogits: Float32Array[];
  /** Whether the KV cache was used (else every step recomputed the whole sequence). */
  readonly cached: boolean;
}

export interface GenerateOptions {
  readonly eos?: number;
  /** "off": recompute the whole sequence every step (the reference the cache is tested against). */
  readonly cache?: "auto" | "off";
}

/** Prompt logits (all positions) and greedy generation of up to `maxNewTokens`, in one pass over the prompt. */
export function generate(
  g: Graph,
  params: ReadonlyMap<string, RTensor>,
  prompt: readonly number[],
  maxNewTokens: number,
  opts: GenerateOptions = {},
): Generation {
  if (prompt.length === 0) throw new Error("the prompt is empty: give at least one token id");
  const cached = opts.cache !== "off" && kvCacheSupport(g).ok;
  const session = cached ? new KvCacheSession(g, params) : undefined;
  const first = session ? session.feed(prompt) : undefined;
  const { logits, vocab } = first ? { logits: first.data as Float32Array, vocab: first.shape.at(-1)! } : causalLMLogits(g, params, prompt);
  const seq = [...prompt];
  const tokens: number[] = [];
  const stepLogits: Float32Array[] = [];
  let row = logits.subarray((seq.length - 1) * vocab, seq.length * vocab);
  for (let step = 0; step < maxNewTokens; step++) {
    const next = argmax(row);
    tokens.push(next);
    stepLogits.push(row);
    seq.push(next);
    if (next === opts.eos || step + 1 === maxNewTokens) break;
    if (session) row = session.feed([next]).data as Float32Array;
    else {
      const all = causalLMLogits(g, params, seq).logits;
      row = all.slice((seq.length - 1) * vocab, seq.length * vocab); // a copy: stepLogits must not pin every step's [T, vocab]
    }
  }
  return { logits, vocab, tokens, stepLogits, cached };
}

export function greedyGenerate(g: Graph, params: ReadonlyMap<string, RTensor>, prompt: readonly number[], maxNewTokens: number, eos?: number): number[] {
  return generate(g, params, prompt, maxNewTokens, { eos }).tokens;
}
