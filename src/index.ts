// Kiln's public API: what model files (in models/ or a user's own file) import as "kiln".
export { z } from "zod";
export { defineModel, type ModelDefinition, type CausalLMModule } from "./dsl/define-model.ts";
export * as F from "./dsl/functional.ts";
export { ACTIVATION_NAMES, type Activation, type MoeSpec, type MoeWeights, type RopeSpec } from "./dsl/functional.ts";
export type { Hints } from "./dsl/hints.ts";
export { Module } from "./dsl/module.ts";
export { Parameter } from "./dsl/parameter.ts";
export { Tensor, type Operand } from "./dsl/tensor.ts";
export { Attention, type AttentionConfig } from "./dsl/modules/attention.ts";
export { CausalLM, type DecoderLayer } from "./dsl/modules/causal-lm.ts";
export { Embedding } from "./dsl/modules/embedding.ts";
export { Linear } from "./dsl/modules/linear.ts";
export { GatedMLP, MLP } from "./dsl/modules/mlp.ts";
export { Experts, MoE, type MoEConfig } from "./dsl/modules/moe.ts";
export { LayerNorm, RMSNorm } from "./dsl/modules/norms.ts";
export { HFRopeFields, HFSlidingWindowFields, type KilnRope, ropeFromHF, rotaryDimFromHF, slidingWindowsFromHF } from "./weights/hf-config.ts";
export {
  concat,
  pad,
  perLayer,
  repeatInterleave,
  reshape,
  slice,
  src,
  transpose,
  type WeightExpr,
  type WeightMap,
  type WeightMapSpec,
  zeros,
} from "./weights/weight-map.ts";
export type { DType } from "./ir/dtype.ts";
// Graph transformations: patterns, rules, passes, and the GPU-free equivalence check.
export { ANY, pattern, type Match, type Pattern } from "./passes/pattern.ts";
export { rule, rulePass, type Rule, type RewriteArgs } from "./passes/rule.ts";
export type { Pass, PassResult, NearMiss } from "./passes/pass.ts";
export { runPasses } from "./passes/manager.ts";
export { DEFAULT_PASSES } from "./passes/default-passes.ts";
export { structuralSignature } from "./passes/signature.ts";
export { checkEquivalence, type EquivalenceOptions, type EquivalenceReport } from "./interp/equivalence.ts";
// Custom ops: declaration (shape rule, TypeScript reference, TensorRT-LLM lowering), multi-output fusions, and what
// references and shape rules work with.
export {
  customOp,
  defineOp,
  OpDeclError,
  type ArgSource,
  type CustomOp,
  type OpDecl,
  type OpLowering,
  type PythonPluginLowering,
  type TrtllmCallLowering,
  type VerifySpec,
} from "./custom-ops/custom-op.ts";
export { fusionPass, fusionRule, type FusionArgs, type FusionRule } from "./custom-ops/fusion.ts";
export { type RTensor, tensor as rtensor } from "./interp/tensor.ts";
export { ShapeError, type ValueType } from "./ir/ops.ts";
export { layerRootOf } from "./lower/to-trtllm.ts";
