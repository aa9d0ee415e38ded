// Accuracy of a quantized model against the unquantized one, from all-position logits ([T, vocab] row-major):
// relative logit error ||q - r|| / ||r||, top-1 agreement (share of positions whose argmax is the same) and the
// mean over positions of KL(p_ref || p_quant) in nats, softmax taken in float64 with the max subtracted.
// Invariants: both logit arrays have the same length, a multiple of vocab; metrics over several prompts pool
// positions (a long prompt weighs more than a short one); KL >= 0 and 0 exactly when the rows agree.

import { argmax } from "../interp/causal-lm.ts";
import { QuantError } from "../numerics/quant-error.ts";

export interface QuantAccuracy {
  /** ||q - r||_2 / ||r||_2 over every logit. */
  readonly relLogitError: number;
  /** Fraction of positions whose top-1 token agrees. */
  readonly top1Agreement: number;
  /** Mean KL(p_ref || p_quant) per position, in nats. */
  readonly klDivergence: number;
  readonly positions: number;
}

/** log(sum(exp(row))) computed stably in float64. */
function logSumExp(row: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) m = Math.max(m, row[i]!);
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - m);
  return m + Math.log(s);
}

/** KL(softmax(ref) || softmax(q)) of one row. */
export function klRow(ref: ArrayLike<number>, q: ArrayLike<number>): number {
  const lr = logSumExp(ref);
  const lq = logSumExp(q);
  let kl = 0;
  for (let i = 0; i < ref.length; i++) {
    const logP = ref[i]! - lr;
    kl += Math.exp(logP) * (logP - (q[i]! - lq));
  }
  return Math.max(0, kl); // rounding can leave -1e-17 for identical rows
}

/** Metrics pooled over prompts: `pairs` are [reference logits, quantized logits] of each prompt. */
export function quantAccuracy(pairs: readonly (readonly [Float32Array, Float32Array])[], vocab: number): QuantAccuracy {
  let num = 0;
  let den = 0;
  let agree = 0;
  let kl = 0;
  let positions = 0;
  for (const [ref, q] of pairs) {
    if (ref.length !== q.length || ref.length % vocab !== 0)
      throw new QuantError(`logits of ${ref.length} and ${q.length} values do not form matching [T, ${vocab}] rows`);
    for (let i = 0; i < ref.length; i++) {
      num += (q[i]! - ref[i]!) ** 2;
      den += ref[i]! ** 2;
    }
    for (let t = 0; t < ref.length / vocab; t++) {
      const r = ref.subarray(t * vocab, (t + 1) * vocab);
      const s = q.subarray(t * vocab, (t + 1) * vocab);
      if (argmax(r) === argmax(s)) agree++;
      kl += klRow(r, s);
      positions++;
    }
  }
  if (positions === 0) throw new QuantError("no positions to compare: give at least one non-empty prompt");
  return { relLogitError: Math.sqrt(num) / Math.sqrt(den || 1), top1Agreement: agree / positions, klDivergence: kl / positions, positions };
}
