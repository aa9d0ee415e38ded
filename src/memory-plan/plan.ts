// The memory planner: per GPU, the bytes of the weights Kiln's checkpoint puts there, an activation workspace
// estimate, the KV cache bytes per token, and how many tokens of paged KV cache TensorRT-LLM allocates with its
// default kv_cache_free_gpu_mem_fraction (0.9 of the memory left after weights and activations). Every pipeline
// stage is planned; TensorRT-LLM takes the minimum token count over ranks, so the tightest stage decides.
// The model as computed here (all numbers exact integers except the documented estimate):
//   weights(stage)   = Σ over the stage's parameters of their per-rank shape × element bytes; --quant stores
//                      quantizable Linear weights as the scheme's engine tensors (int8/int4 + per-channel scale,
//                      fp8 + two f32 scales, or group-wise int4 + a scale and a zero per group and output);
//                      lm_head, embeddings and norms keep the model dtype;
//                      --kv-cache adds one f32 scale per attention layer.
//   kv per token     = 2 (K and V) × kv heads per rank (replicated when fewer than tp) × head_dim × kv bytes,
//                      per layer; × the stage's layers per GPU.
//   activations      = ESTIMATE: min(max_batch × max_seq, max_num_tokens) tokens × model bytes × (2 hidden +
//                      per-rank q/k/v width + per-rank attention output + 3 (gated) or 2 per-rank MLP widths), plus
//                      float32 logits for max_batch rows of the padded vocabulary on the last stage.
//   KV tokens        = floor(0.9 × (GPU bytes − weights − activations) / kv bytes per token per GPU), in blocks of
//                      tokens_per_block (32) rounded up as TensorRT-LLM does.
//   mixture of experts: each GPU holds E / moe_ep experts, each 1 / moe_tp of its width (moe_tp × moe_ep = tp;
//                      TensorRT-LLM's Mapping), the router whole in float32; the MLP term of the activation estimate
//                      is top_k experts' per-rank width (+ the shared expert's); active parameters per token =
//                      all parameters − the routed experts' × (1 − top_k / E).
// Not counted: the CUDA context and library workspaces (about 0.5 GiB, measured with torch on H100/H200), which
// TensorRT-LLM's free-memory query sees as already used.

import type { TrtDtype } from "../../codegen/trtllm-engine/pretrained-config.ts";
import { placeParam, stageLayers } from "../lower/mapping.ts";
import { ShardError } from "../lower/shard.ts";
import type { LoweredModel } from "../lower/to-trtllm.ts";
import { type KvCacheQuant, type TensorSpec, type WeightQuant, WEIGHT_SCHEMES } from "../quant/schemes.ts";
import { dtypeBytes } from "../weights/dtypes.ts";
import type { Gpu } from "./gpus.ts";
import { isExpertParam, kvHeadsPerRank, type ModelDims, modelDims, rankShape, tpProblem } from "./model-dims.ts";

export const KV_CACHE_FREE_GPU_MEM_FRACTION = 0.9;
export const TOKENS_PER_BLOCK = 32;
export const DEFAULT_MAX_NUM_TOKENS = 8192;

const MODEL_BYTES: Readonly<Record<TrtDtype, number>> = { float32: 4, float16: 2, bfloat16: 2 };
const KV_BYTES: Readonly<Record<KvCacheQuant, number>> = { int8: 1, fp8: 1 };
const LOGITS_BYTES = 4;

export interface PlanOptions {
  readonly dtype: TrtDtype;
  readonly quant?: WeightQuant;
  /** Group size of a group-wise INT4 scheme (a pre-quantized AWQ/GPTQ checkpoint's; default 128). */
  readonly groupSize?: number;
  readonly kvCache?: KvCacheQuant;
  readonly tp: number;
  readonly pp: number;
  readonly gpu: Gpu;
  readonly maxBatch: number;
  readonly maxSeq: number;
  readonly maxNumTokens?: number;
  /** Expert-parallel size (moe_tp = tp / moeEp); 1 by default, as TensorRT-LLM's Mapping. */
  readonly moeEp?: number;
}

export interface MoePlan {
  readonly numExperts: number;
  readonly topK: number;
  readonly moeTp: number;
  readonly moeEp: number;
  readonly expertsPerGpu: number;
  /** Parameters one token passes through: everything but the routed experts it is not sent to. */
  readonly activeParamsPerToken: number;
}

export interface StagePlan {
  readonly stage: number;
  readonly layers: number;
  readonly weightBytes: number;
  readonly activationBytes: number;
  readonly freeBytes: number;
  readonly kvBytesPerToken: number;
  readonly kvTokens: number;
}

export interface MemoryPlan {
  readonly options: PlanOptions;
  readonly dims: Omit<ModelDims, "params">;
  readonly paramCount: number;
  /** Largest over stages (the GPUs of one stage hold the same amount). */
  readonly weightsPerGpu: number;
  /** Summed over every GPU (tp × pp ranks). */
  readonly weightsAllGpus: number;
  readonly activationTokens: number;
  readonly activationBytesPerToken: number;
  readonly logitsBytes: number;
  readonly activationsPerGpu: number;
  readonly kvBytesPerTokenPerLayer: number;
  readonly kvBytesPerTokenPerGpu: number;
  /** One token's K/V over the whole model, every rank (replicated key/value heads counted on each rank). */
  readonly kvBytesPerTokenAllGpus: number;
  readonly kvBudgetBytes: number;
  readonly kvTokens: number;
  readonly kvBlocks: number;
  /** Full --max-seq sequences the KV cache holds at once. */
  readonly fullSequences: number;
  readonly stages: readonly StagePlan[];
  readonly moe?: MoePlan;
  readonly fits: boolean;
  /** Why it does not fit (empty when it fits). */
  readonly problems: readonly string[];
  /** Things to know even when it fits. */
  readonly warnings: readonly string[];
}

const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/** Symbolic TensorSpec dims of a Linear [out, in] (group-wise schemes need the group size). */
const SYMBOLIC_DIM: Readonly<Record<Exclude<TensorSpec["shape"][number], number>, (out: number, inF: number, group: number) => number>> = {
  out: (out) => out,
  in: (_o, inF) => inF,
  "out/2": (out) => out / 2,
  "out/4": (out) => out / 4,
  "in/group": (_o, inF, group) => Math.ceil(inF / group),
};

function specBytes(spec: TensorSpec, out: number, inF: number, modelBytes: number, group: number): number {
  const dims = spec.shape.map((d) => (typeof d === "number" ? d : SYMBOLIC_DIM[d](out, inF, group)));
  return product(dims) * (spec.dtype === "model" ? modelBytes : dtypeBytes(spec.dtype));
}

function paramBytes(shape: readonly number[], quantizable: boolean, o: PlanOptions, float32 = false): number {
  const modelBytes = float32 ? 4 : MODEL_BYTES[o.dtype];
  if (!o.quant || !quantizable) return product(shape) * modelBytes;
  const scheme = WEIGHT_SCHEMES[o.quant];
  const tensors = scheme.engineTensors.length ? scheme.engineTensors : scheme.checkpointTensors;
  return tensors.reduce((s, t) => s + specBytes(t, shape[0]!, shape[1]!, modelBytes, o.groupSize ?? 128), 0);
}

export function planFromDims(dims: ModelDims, o: PlanOptions): MemoryPlan {
  const moeEp = o.moeEp ?? 1;
  const whyTp = tpProblem(dims, o.tp, moeEp);
  if (whyTp) throw new ShardError(whyTp);
  if (!Number.isInteger(o.pp) || o.pp < 1 || o.pp > dims.numLayers)
    throw new ShardError(`pp=${o.pp} must be between 1 and the model's ${dims.numLayers} layers`);
  const { tp, pp } = o;
  const modelBytes = MODEL_BYTES[o.dtype];
  const kvElemBytes = o.kvCache ? KV_BYTES[o.kvCache] : modelBytes;

  const stageWeights = new Array<number>(pp).fill(0);
  const isRouter = (name: string) => name.endsWith(".mlp.router.weight");
  for (const p of dims.params)
    stageWeights[placeParam(p.name, dims.numLayers, pp).stage]! += paramBytes(rankShape(p, dims, tp, moeEp), p.quantizable, o, isRouter(p.name));
  const layersPer = stageLayers(dims.numLayers, pp).map(([a, b]) => b - a);
  if (o.kvCache) layersPer.forEach((l, s) => (stageWeights[s]! += l * 4));

  const activationTokens = Math.min(o.maxBatch * o.maxSeq, o.maxNumTokens ?? DEFAULT_MAX_NUM_TOKENS);
  const kvh = kvHeadsPerRank(dims, tp);
  const qkvWidth = (dims.heads / tp + 2 * kvh) * dims.headDim;
  const ffnLocal = dims.moe ? (dims.moe.topK * dims.moe.expertInter) / (tp / moeEp) + dims.moe.sharedInter / tp : dims.ffn / tp;
  const activationBytesPerToken = modelBytes * (2 * dims.hidden + qkvWidth + (dims.heads / tp) * dims.headDim + (dims.gatedMlp || dims.moe ? 3 : 2) * ffnLocal);
  const logitsBytes = o.maxBatch * Math.ceil(dims.vocab / tp) * tp * LOGITS_BYTES;
  const kvBytesPerTokenPerLayer = 2 * kvh * dims.headDim * kvElemBytes;

  const stages: StagePlan[] = layersPer.map((layers, stage) => {
    const activationBytes = activationTokens * activationBytesPerToken + (stage === pp - 1 ? logitsBytes : 0);
    const freeBytes = o.gpu.bytes - stageWeights[stage]! - activationBytes;
    const kvBytesPerToken = kvBytesPerTokenPerLayer * layers;
    const kvTokens = freeBytes > 0 ? Math.floor((KV_CACHE_FREE_GPU_MEM_FRACTION * freeBytes) / kvBytesPerToken) : 0;
    return { stage, layers, weightBytes: stageWeights[stage]!, activationBytes, freeBytes, kvBytesPerToken, kvTokens };
  });
  const tight = stages.reduce((a, b) => (b.kvTokens < a.kvTokens ? b : a));
  const kvTokens = tight.kvTokens;
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const s of stages)
    if (s.freeBytes <= 0)
      problems.push(
        `${pp > 1 ? `stage ${s.stage}: ` : ""}weights (${gib(s.weightBytes)}) and activations (${gib(s.activationBytes)}) exceed the ${gib(o.gpu.bytes)} of one ${o.gpu.name}`,
      );
  if (!problems.length && kvTokens < o.maxSeq) problems.push(`the KV cache holds ${kvTokens} tokens, less than one sequence of --max-seq ${o.maxSeq}`);
  const fullSequences = Math.floor(kvTokens / o.maxSeq);
  if (!problems.length && fullSequences < o.maxBatch)
    warnings.push(
      `the KV cache holds ${fullSequences} full-length sequences at once, fewer than --max-batch ${o.maxBatch}; TensorRT-LLM schedules fewer requests`,
    );
  const { params, ...shape } = dims;
  const paramCount = params.reduce((s, p) => s + product(p.shape), 0);
  const expertParams = params.filter(isExpertParam).reduce((s, p) => s + product(p.shape), 0);
  const moe: MoePlan | undefined = dims.moe && {
    numExperts: dims.moe.numExperts,
    topK: dims.moe.topK,
    moeTp: tp / moeEp,
    moeEp,
    expertsPerGpu: dims.moe.numExperts / moeEp,
    activeParamsPerToken: paramCount - expertParams + (expertParams * dims.moe.topK) / dims.moe.numExperts,
  };
  return {
    options: o,
    dims: shape,
    paramCount,
    weightsPerGpu: Math.max(...stageWeights),
    weightsAllGpus: stageWeights.reduce((a, b) => a + b, 0) * tp,
    activationTokens,
    activationBytesPerToken,
    logitsBytes,
    activationsPerGpu: Math.max(...stages.map((s) => s.activationBytes)),
    kvBytesPerTokenPerLayer,
    kvBytesPerTokenPerGpu: tight.kvBytesPerToken,
    kvBytesPerTokenAllGpus: kvBytesPerTokenPerLayer * dims.numLayers * tp,
    kvBudgetBytes: Math.max(0, KV_CACHE_FREE_GPU_MEM_FRACTION * tight.freeBytes),
    kvTokens,
    kvBlocks: Math.ceil(kvTokens / TOKENS_PER_BLOCK),
    fullSequences,
    stages,
    ...(moe && { moe }),
    fits: problems.length === 0,
    problems,
    warnings,
  };
}

/** The smallest tensor-parallel size above the planned one that fits (same pp and GPU), if any up to the head count. */
export function smallestFittingTp(dims: ModelDims, o: PlanOptions): number | undefined {
  for (let tp = o.tp + 1; tp <= dims.heads; tp++) if (!tpProblem(dims, tp, o.moeEp) && planFromDims(dims, { ...o, tp }).fits) return tp;
  return undefined;
}

export function planMemory(lowered: LoweredModel, o: PlanOptions): MemoryPlan & { readonly suggestedTp?: number } {
  const dims = modelDims(lowered);
  const plan = planFromDims(dims, o);
  if (plan.fits) return plan;
  const tp = smallestFittingTp(dims, o);
  return tp === undefined ? plan : { ...plan, suggestedTp: tp };
}

export const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
