// Recognizing causal scaled-dot-product attention written from primitives:
//   softmax(causal_mask((q^T @ k^TT) * scale)) @ v^T, transposed back to [batch, seq, heads, head_dim],
// with the scale as a multiplication or a division, and with or without grouped-query heads expanded by
// repeat_interleave on k and v. The result is one `attention` op on the un-expanded k and v, which TensorRT-LLM runs
// as its GPT attention plugin. Without the causal mask nothing matches: a causal op must not replace a non-causal
// computation. Transposes are matched in canonical (folded) form, so run fold-shapes first. The GQA variants come
// first: the plain variant would also match (on the expanded heads) but keep the repeats.

import { attention } from "../../dsl/functional.ts";
import type { Tensor } from "../../dsl/tensor.ts";
import { ANY, pattern } from "../pattern.ts";
import { rule } from "../rule.ts";

const HEADS_FIRST = [0, 2, 1, 3]; // [b, s, h, d] <-> [b, h, s, d]
const KEYS_TRANSPOSED = [0, 2, 3, 1]; // [b, s, h, d] -> [b, h, d, s]

type Scale = (scores: Tensor, c: Tensor) => Tensor;
const SCALES: [string, Scale, (c: number) => number][] = [
  ["mul", (s, c) => s.mul(c), (c) => c],
  ["div", (s, c) => s.div(c), (c) => 1 / c],
];

export const ATTENTION_RULES = [true, false].flatMap((gqa) =>
  SCALES.map(([how, scale, toScale]) =>
    rule({
      name: `causal-attention(scale=${how}${gqa ? ",gqa" : ""})`,
      pattern: pattern("causal attention", { q: "value", k: "value", v: "value", c: "constant" }, ({ q, k, v, c }) => {
        const expand = (x: Tensor) => (gqa ? x.repeatInterleave(ANY, 2) : x);
        const scores = scale(q.transpose(HEADS_FIRST).matmul(expand(k).transpose(KEYS_TRANSPOSED)), c);
        return scores.causalMask().softmax(-1).matmul(expand(v).transpose(HEADS_FIRST)).transpose(HEADS_FIRST);
      }),
      check: (m, g) => {
        if (!gqa) return undefined;
        const reps = m.nodes.filter((n) => n.op === "repeat_interleave").map((n) => n.attrs.repeats);
        const q = g.values.get(m.values.q)!.shape;
        const k = g.values.get(m.values.k)!.shape;
        if (reps.some((r) => r !== reps[0])) return `k and v are repeated differently (${reps.join(" vs ")})`;
        return q[2] === (k[2] as number) * (reps[0] as number) ? undefined : `repeating ${k[2]} key heads ${reps[0]} times does not give ${q[2]} query heads`;
      },
      rewrite: ({ t, constants }) => attention(t.q, t.k, t.v, { causal: true, scale: toScale(constants.c!) }),
      hint: "attention",
      enables: "Attention (gpt_attention plugin)",
    }),
  ),
);
