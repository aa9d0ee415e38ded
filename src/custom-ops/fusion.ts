// Fusions for custom ops: rules in the model's vocabulary, rooted at the last node they cover, that may replace
// several values at once (e.g. a fused residual-add + RMSNorm that returns both the normalized value and the new
// residual). They run on the one rule engine (src/passes/rule.ts): `alsoReplaces` names the values besides the
// root's output that the replacement also provides, and `rewrite` returns one tensor per replaced value, the root's
// output first. A match whose extra values are read before the root is skipped (a near miss), so no half-fused graph
// is produced; parameters are untouched; dead code is removed afterwards.

import type { Pass } from "../passes/pass.ts";
import { type RewriteArgs, type Rule, rulePass } from "../passes/rule.ts";

export type FusionRule<V extends string = string> = Rule<V>;

/** What a fusion's rewrite receives (the rule engine's rewrite arguments). */
export type FusionArgs<V extends string> = RewriteArgs<V>;

export const fusionRule = <V extends string>(r: FusionRule<V>): FusionRule<V> => r;

/** A pass applying fusion rules until none fires (bounded). */
export const fusionPass = (name: string, description: string, rules: readonly FusionRule<any>[]): Pass => rulePass(name, description, rules);
