// Colours of drawn nodes by what they do, shared by the Graphviz and HTML views so both read the same way. The
// first matching rule wins; anything unmatched is a neutral grey (custom ops included).

import type { ViewNodeKind } from "./view-graph.ts";

interface StyleRule {
  readonly test: RegExp;
  readonly fill: string;
  readonly stroke: string;
}

const OP_RULES: readonly StyleRule[] = [
  { test: /^trtllm\./, fill: "#e9ddff", stroke: "#7b5cc4" },
  { test: /attention|rope|causal_mask|softmax/, fill: "#ffe2c6", stroke: "#d9822b" },
  { test: /^(linear|matmul|embedding)$/, fill: "#d6e8ff", stroke: "#3d7cc9" },
  { test: /norm$/, fill: "#d7f2dc", stroke: "#3f9a55" },
  { test: /^(silu|gelu|relu|sigmoid|tanh|gated_activation|exp|erf)$/, fill: "#fff4bf", stroke: "#b89a1e" },
];

const KIND_STYLE: Readonly<Record<Exclude<ViewNodeKind, "op">, { fill: string; stroke: string }>> = {
  input: { fill: "#ffffff", stroke: "#555555" },
  output: { fill: "#ffffff", stroke: "#555555" },
  block: { fill: "#f1f1f1", stroke: "#444444" },
};

const NEUTRAL = { fill: "#eeeeee", stroke: "#8a8a8a" };

export function nodeStyle(kind: ViewNodeKind, op: string): { fill: string; stroke: string } {
  if (kind !== "op") return KIND_STYLE[kind];
  return OP_RULES.find((r) => r.test.test(op)) ?? NEUTRAL;
}
