// Options of `kiln triton`: their defaults and their validation.
// Invariant: resolveTritonOptions returns a fully-populated, checked record or
// throws TritonOptionError naming the offending option; nothing downstream
// re-validates or invents defaults.

import type { DataType } from "./model-config.ts";

export class TritonOptionError extends Error {
  override name = "TritonOptionError";
}

export type BatchSchedulerPolicy = "guaranteed_no_evict" | "max_utilization";

export interface TritonRepoOptions {
  /** Output model-repository directory. */
  repo: string;
  /** Engine directory as seen by tritonserver (config.json + rank*.engine); written verbatim as gpt_model_path. */
  engineDir: string;
  /** Hugging Face tokenizer directory as seen by tritonserver (pre/post-processing). */
  tokenizerDir: string;
  /** Tensor / pipeline parallel sizes of the engine; the server runs tp*pp MPI ranks. */
  tp?: number;
  pp?: number;
  /** Triton max_batch_size of every model (the executor may batch more at run time). */
  maxBatchSize?: number;
  /** Streaming: sets model_transaction_policy.decoupled on tensorrt_llm (required for stream=true). */
  decoupled?: boolean;
  /** Fraction of free GPU memory (after weights) given to the paged KV cache, in (0, 1]. */
  kvCacheFreeGpuMemFraction?: number;
  /** Upper bound on tokens in the paged KV cache; unset means bounded by the fraction only. */
  maxTokensInPagedKvCache?: number;
  /** Per-layer attention window (sliding-window models): the backend's max_attention_window_size, comma-separated. */
  maxAttentionWindow?: number[];
  batchSchedulerPolicy?: BatchSchedulerPolicy;
  enableKvCacheReuse?: boolean;
  enableChunkedContext?: boolean;
  maxQueueDelayMicroseconds?: number;
  /** Requests allowed to wait in Triton's queue; 0 means unbounded. */
  maxQueueSize?: number;
  maxBeamWidth?: number;
  /** Return only generated tokens (true) or prompt + generated tokens (false); a request may override. */
  excludeInputInOutput?: boolean;
  /** Data type of context/generation logits outputs. */
  logitsDatatype?: "TYPE_FP32" | "TYPE_FP16" | "TYPE_BF16";
  preprocessingInstances?: number;
  postprocessingInstances?: number;
  addSpecialTokens?: boolean;
  skipSpecialTokens?: boolean;
  /** Replace an existing `repo` directory instead of refusing. */
  force?: boolean;
  /** Runtime LoRA (kiln compile --lora): the tensorrt_llm model and the ensemble take lora_task_id, lora_weights and
   * lora_config, and the repository gets an example request (lora_request.py). */
  lora?: TritonLoraOptions;
}

export interface TritonLoraOptions {
  /** lora_weights' type: the engine's dtype (upstream's template says TYPE_FP16, for fp16 engines). */
  weightsDatatype: "TYPE_FP32" | "TYPE_FP16" | "TYPE_BF16";
  /** The compiled checkpoint's lora/ folder as the client sees it (lora/<task id>/model.lora_*.npy). */
  adaptersDir: string;
  taskIds: number[];
}

export type ResolvedTritonOptions = Required<Omit<TritonRepoOptions, "maxTokensInPagedKvCache" | "maxAttentionWindow" | "lora">> & {
  maxTokensInPagedKvCache: number | undefined;
  maxAttentionWindow: number[] | undefined;
  lora: TritonLoraOptions | undefined;
  logitsDatatype: DataType;
};

/** Defaults, chosen to match the tensorrtllm_backend's documented defaults where it has one. */
export const TRITON_DEFAULTS = {
  tp: 1,
  pp: 1,
  maxBatchSize: 64, // the backend docs' own examples use triton_max_batch_size:64
  decoupled: false,
  kvCacheFreeGpuMemFraction: 0.9, // backend default
  batchSchedulerPolicy: "guaranteed_no_evict", // backend default: a started request is never paused
  enableKvCacheReuse: false,
  enableChunkedContext: false,
  maxQueueDelayMicroseconds: 0,
  maxQueueSize: 0,
  maxBeamWidth: 1,
  excludeInputInOutput: true, // completion text only, what a serving client expects
  logitsDatatype: "TYPE_FP32",
  preprocessingInstances: 1,
  postprocessingInstances: 1,
  addSpecialTokens: true,
  skipSpecialTokens: true,
  force: false,
} as const satisfies Partial<TritonRepoOptions>;

const SCHEDULER_POLICIES: readonly string[] = ["guaranteed_no_evict", "max_utilization"];
const LOGITS_TYPES: readonly string[] = ["TYPE_FP32", "TYPE_FP16", "TYPE_BF16"];

const INT_LIMITS: [keyof TritonRepoOptions, number, number][] = [
  ["tp", 1, 1024],
  ["pp", 1, 1024],
  ["maxBatchSize", 1, 2 ** 31 - 1],
  ["maxQueueDelayMicroseconds", 0, Number.MAX_SAFE_INTEGER],
  ["maxQueueSize", 0, 2 ** 32 - 1],
  ["maxBeamWidth", 1, 1024],
  ["preprocessingInstances", 1, 1024],
  ["postprocessingInstances", 1, 1024],
  ["maxTokensInPagedKvCache", 1, Number.MAX_SAFE_INTEGER],
];

const BOOL_OPTIONS: (keyof TritonRepoOptions)[] = [
  "decoupled",
  "enableKvCacheReuse",
  "enableChunkedContext",
  "excludeInputInOutput",
  "addSpecialTokens",
  "skipSpecialTokens",
  "force",
];

function fail(option: string, value: unknown, why: string): never {
  throw new TritonOptionError(`triton option ${option}=${JSON.stringify(value)}: ${why}`);
}

/** Fills defaults and checks every option; throws TritonOptionError on the first bad one. */
export function resolveTritonOptions(opts: TritonRepoOptions): ResolvedTritonOptions {
  const r = { ...TRITON_DEFAULTS, ...stripUndefined(opts) } as ResolvedTritonOptions;
  for (const key of ["repo", "engineDir", "tokenizerDir"] as const) {
    if (typeof r[key] !== "string" || r[key].trim() === "") fail(key, r[key], "must be a non-empty path");
    if (/[\0\n]/.test(r[key])) fail(key, r[key], "must not contain NUL or newline characters");
  }
  for (const [key, lo, hi] of INT_LIMITS) {
    const v = r[key];
    if (v === undefined && key === "maxTokensInPagedKvCache") continue;
    if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) fail(key, v, `must be an integer in [${lo}, ${hi}]`);
  }
  const w = r.maxAttentionWindow;
  if (w !== undefined && (!Array.isArray(w) || w.length === 0 || !w.every((x) => Number.isInteger(x) && x > 0)))
    fail("maxAttentionWindow", w, "must be a non-empty list of positive integers (one per layer)");
  const f = r.kvCacheFreeGpuMemFraction;
  if (typeof f !== "number" || !(f > 0 && f <= 1)) fail("kvCacheFreeGpuMemFraction", f, "must be a number in (0, 1]");
  for (const key of BOOL_OPTIONS) if (typeof r[key] !== "boolean") fail(key, r[key], "must be true or false");
  if (!SCHEDULER_POLICIES.includes(r.batchSchedulerPolicy))
    fail("batchSchedulerPolicy", r.batchSchedulerPolicy, `must be one of ${SCHEDULER_POLICIES.join(", ")}`);
  if (!LOGITS_TYPES.includes(r.logitsDatatype)) fail("logitsDatatype", r.logitsDatatype, `must be one of ${LOGITS_TYPES.join(", ")}`);
  if (r.lora !== undefined) {
    if (!LOGITS_TYPES.includes(r.lora.weightsDatatype)) fail("lora.weightsDatatype", r.lora.weightsDatatype, `must be one of ${LOGITS_TYPES.join(", ")}`);
    if (!r.lora.taskIds.length || r.lora.taskIds.some((t) => !Number.isInteger(t) || t < 1)) fail("lora.taskIds", r.lora.taskIds, "must be positive integers");
  }
  return { ...r, lora: r.lora };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
