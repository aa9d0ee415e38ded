// The default pass list, in order: canonicalize, recognize primitives as the ops TensorRT-LLM has
// layers for, fuse, clean up. Every entry is a named pass; hints switch individual rewrites off per module.

import { CSE, DCE, FOLD_SHAPES } from "./cleanup.ts";
import { FUSE_QKV } from "./fuse-qkv.ts";
import type { Pass } from "./pass.ts";
import { rulePass } from "./rule.ts";
import { ATTENTION_RULES } from "./rules/attention.ts";
import { GATED_MLP_RULES } from "./rules/gated-mlp.ts";
import { FOLD_BIAS, MATMUL_TO_LINEAR } from "./rules/linear.ts";
import { MOE_RULES } from "./rules/moe.ts";
import { LAYER_NORM_RULES, RMS_NORM_RULES } from "./rules/norms.ts";

export const RECOGNIZE_LINEAR = rulePass("recognize-linear", "x @ W^T with a [out, in] parameter -> linear", [MATMUL_TO_LINEAR]);
export const FOLD_BIAS_ADD = rulePass("fold-bias", "linear(x, W) + b -> linear(x, W, b)", [FOLD_BIAS]);
// LayerNorm first: an RMSNorm of the centered input is a bias-free LayerNorm, and the larger pattern should win.
export const RECOGNIZE_NORMS = rulePass("recognize-norms", "RMSNorm and LayerNorm written from primitives -> rms_norm / layer_norm", [
  ...LAYER_NORM_RULES,
  ...RMS_NORM_RULES,
]);
export const RECOGNIZE_ATTENTION = rulePass("recognize-attention", "causal softmax(q k^T * scale) v from primitives -> attention", ATTENTION_RULES);
// Before gated-MLP fusion, which would otherwise fuse each expert's gate and up projections first.
export const RECOGNIZE_MOE = rulePass(
  "recognize-moe",
  "router softmax/sigmoid -> topk -> one-hot weighted sum of gated-MLP experts (+ shared expert) -> moe",
  MOE_RULES,
);
export const FUSE_GATED_MLP = rulePass(
  "fuse-gated-mlp",
  "act(x Wg^T) * (x Wu^T) -> one [up; gate] GEMM + gated_activation (TensorRT-LLM FusedGatedMLP)",
  GATED_MLP_RULES,
);

export const DEFAULT_PASSES: readonly Pass[] = [
  DCE,
  CSE,
  FOLD_SHAPES,
  RECOGNIZE_LINEAR,
  FOLD_BIAS_ADD,
  RECOGNIZE_NORMS,
  RECOGNIZE_ATTENTION,
  RECOGNIZE_MOE,
  FUSE_QKV,
  FUSE_GATED_MLP,
  CSE,
  DCE,
];

export const PASSES_BY_NAME: ReadonlyMap<string, Pass> = new Map(DEFAULT_PASSES.map((p) => [p.name, p]));
