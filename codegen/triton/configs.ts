// The four model configs of a TensorRT-LLM in-flight-batching Triton repository
// (preprocessing → tensorrt_llm → postprocessing, chained by an ensemble), built as
// plain ModelConfig objects from tensor tables and resolved options.
// Invariants: tensor names/types follow tensorrtllm_backend's inflight_batcher_llm
// models; the ensemble's own inputs and outputs are derived from the step maps, so
// an ensemble tensor always has the type and shape of the step tensor it feeds or
// comes from; every backend parameter value is a string (Triton ModelParameter).

import type { DataType, EnsembleStep, ModelConfig, ModelInput, ModelOutput, ModelParameter } from "./model-config.ts";
import { resolveTritonOptions } from "./options.ts";
import type { ResolvedTritonOptions, TritonRepoOptions } from "./options.ts";

export class TritonConfigError extends Error {
  override name = "TritonConfigError";
}

export const MODEL_NAMES = ["ensemble", "preprocessing", "tensorrt_llm", "postprocessing"] as const;
export type ModelName = (typeof MODEL_NAMES)[number];
export type TritonConfigs = Record<ModelName, ModelConfig>;

/** `optional`: may be absent from a request; `ragged`: batched across requests of different lengths;
 *  `scalar`: declared [1] for the client, handed to the backend reshaped to [] (as the C++ backend expects). */
type Flag = "optional" | "ragged" | "scalar";
/** "LOGITS" stands for the logitsDatatype option. */
type Tensor = [name: string, type: DataType | "LOGITS", dims: number[], ...flags: Flag[]];

const PREPROCESSING_INPUTS: Tensor[] = [
  ["QUERY", "TYPE_STRING", [1]],
  ["REQUEST_OUTPUT_LEN", "TYPE_INT32", [1]],
  ["BAD_WORDS_DICT", "TYPE_STRING", [-1], "optional"],
  ["STOP_WORDS_DICT", "TYPE_STRING", [-1], "optional"],
  ["END_ID", "TYPE_INT32", [1], "optional"],
  ["PAD_ID", "TYPE_INT32", [1], "optional"],
];

const PREPROCESSING_OUTPUTS: Tensor[] = [
  ["INPUT_ID", "TYPE_INT32", [-1]],
  ["REQUEST_INPUT_LEN", "TYPE_INT32", [1]],
  ["REQUEST_OUTPUT_LEN", "TYPE_INT32", [1]],
  // Word lists in TensorRT-LLM's [2, n] layout: row 0 token ids, row 1 end offsets (-1 padded).
  ["BAD_WORDS_IDS", "TYPE_INT32", [2, -1]],
  ["STOP_WORDS_IDS", "TYPE_INT32", [2, -1]],
  ["OUT_END_ID", "TYPE_INT32", [1]],
  ["OUT_PAD_ID", "TYPE_INT32", [1]],
];

const SCALAR_INPUT = ["scalar", "optional"] as const;
const TRTLLM_INPUTS: Tensor[] = [
  ["input_ids", "TYPE_INT32", [-1], "ragged"],
  ["input_lengths", "TYPE_INT32", [1], "scalar"],
  ["request_output_len", "TYPE_INT32", [1], "scalar"],
  ["end_id", "TYPE_INT32", [1], ...SCALAR_INPUT],
  ["pad_id", "TYPE_INT32", [1], ...SCALAR_INPUT],
  ["stop_words_list", "TYPE_INT32", [2, -1], "optional", "ragged"],
  ["bad_words_list", "TYPE_INT32", [2, -1], "optional", "ragged"],
  ["beam_width", "TYPE_INT32", [1], ...SCALAR_INPUT],
  ["temperature", "TYPE_FP32", [1], ...SCALAR_INPUT],
  ["runtime_top_k", "TYPE_INT32", [1], ...SCALAR_INPUT],
  ["runtime_top_p", "TYPE_FP32", [1], ...SCALAR_INPUT],
  ["len_penalty", "TYPE_FP32", [1], ...SCALAR_INPUT],
  ["repetition_penalty", "TYPE_FP32", [1], ...SCALAR_INPUT],
  ["min_tokens", "TYPE_INT32", [1], ...SCALAR_INPUT],
  ["presence_penalty", "TYPE_FP32", [1], ...SCALAR_INPUT],
  ["frequency_penalty", "TYPE_FP32", [1], ...SCALAR_INPUT],
  ["seed", "TYPE_UINT64", [1], ...SCALAR_INPUT],
  ["return_log_probs", "TYPE_BOOL", [1], ...SCALAR_INPUT],
  ["return_context_logits", "TYPE_BOOL", [1], ...SCALAR_INPUT],
  ["return_generation_logits", "TYPE_BOOL", [1], ...SCALAR_INPUT],
  ["exclude_input_in_output", "TYPE_BOOL", [1], ...SCALAR_INPUT],
  ["streaming", "TYPE_BOOL", [1], ...SCALAR_INPUT],
];

/** Runtime LoRA inputs (tensorrt_llm/config.pbtxt @ 2a9abd95): the task id, and on a task's first request its
 * weights [rows, r*(in+out)] and config [rows, 3] (module id, layer, rank); "LORA" stands for the engine's dtype. */
const LORA_INPUTS: [name: string, type: DataType | "LORA", dims: number[], ...flags: Flag[]][] = [
  ["lora_task_id", "TYPE_UINT64", [1], ...SCALAR_INPUT],
  ["lora_weights", "LORA", [-1, -1], "optional", "ragged"],
  ["lora_config", "TYPE_INT32", [-1, 3], "optional", "ragged"],
];
const LORA_ENSEMBLE_MAP = { lora_task_id: "lora_task_id", lora_weights: "lora_weights", lora_config: "lora_config" };

const TRTLLM_OUTPUTS: Tensor[] = [
  ["output_ids", "TYPE_INT32", [-1, -1]], // [beam, seq] per request
  ["sequence_length", "TYPE_INT32", [-1]], // [beam]
  ["cum_log_probs", "TYPE_FP32", [-1]],
  ["output_log_probs", "TYPE_FP32", [-1, -1]],
  ["context_logits", "LOGITS", [-1, -1]],
  ["generation_logits", "LOGITS", [-1, -1, -1]],
  ["batch_index", "TYPE_INT32", [1]],
];

const POSTPROCESSING_INPUTS: Tensor[] = [
  ["TOKENS_BATCH", "TYPE_INT32", [-1, -1]],
  ["SEQUENCE_LENGTH", "TYPE_INT32", [-1]],
];

const POSTPROCESSING_OUTPUTS: Tensor[] = [["OUTPUT", "TYPE_STRING", [-1]]];

/** Ensemble steps. Names starting with "_" are internal tensors; any other name is an ensemble input/output. */
const STEPS: { model: Exclude<ModelName, "ensemble">; inputs: Record<string, string>; outputs: Record<string, string> }[] = [
  {
    model: "preprocessing",
    inputs: {
      QUERY: "text_input",
      REQUEST_OUTPUT_LEN: "max_tokens",
      BAD_WORDS_DICT: "bad_words",
      STOP_WORDS_DICT: "stop_words",
      END_ID: "end_id",
      PAD_ID: "pad_id",
    },
    outputs: {
      INPUT_ID: "_INPUT_ID",
      REQUEST_INPUT_LEN: "_REQUEST_INPUT_LEN",
      REQUEST_OUTPUT_LEN: "_REQUEST_OUTPUT_LEN",
      BAD_WORDS_IDS: "_BAD_WORDS_IDS",
      STOP_WORDS_IDS: "_STOP_WORDS_IDS",
      OUT_END_ID: "_PREPROCESSOR_END_ID",
      OUT_PAD_ID: "_PREPROCESSOR_PAD_ID",
    },
  },
  {
    model: "tensorrt_llm",
    inputs: {
      input_ids: "_INPUT_ID",
      input_lengths: "_REQUEST_INPUT_LEN",
      request_output_len: "_REQUEST_OUTPUT_LEN",
      end_id: "_PREPROCESSOR_END_ID",
      pad_id: "_PREPROCESSOR_PAD_ID",
      stop_words_list: "_STOP_WORDS_IDS",
      bad_words_list: "_BAD_WORDS_IDS",
      beam_width: "beam_width",
      temperature: "temperature",
      runtime_top_k: "top_k",
      runtime_top_p: "top_p",
      len_penalty: "length_penalty",
      repetition_penalty: "repetition_penalty",
      min_tokens: "min_tokens",
      presence_penalty: "presence_penalty",
      frequency_penalty: "frequency_penalty",
      seed: "seed",
      return_log_probs: "return_log_probs",
      return_context_logits: "return_context_logits",
      return_generation_logits: "return_generation_logits",
      exclude_input_in_output: "exclude_input_in_output",
      streaming: "stream",
    },
    outputs: {
      output_ids: "_TOKENS_BATCH",
      sequence_length: "_SEQUENCE_LENGTH",
      cum_log_probs: "cum_log_probs",
      output_log_probs: "output_log_probs",
      context_logits: "context_logits",
      generation_logits: "generation_logits",
      batch_index: "batch_index",
    },
  },
  {
    model: "postprocessing",
    inputs: { TOKENS_BATCH: "_TOKENS_BATCH", SEQUENCE_LENGTH: "_SEQUENCE_LENGTH" },
    outputs: { OUTPUT: "text_output" },
  },
];

const isInternal = (tensor: string): boolean => tensor.startsWith("_");
const str = (v: string | number | boolean): ModelParameter => ({ string_value: String(v) });

function modelInput([name, type, dims, ...flags]: Tensor, logits: DataType): ModelInput {
  const input: ModelInput = { name, data_type: type === "LOGITS" ? logits : type, dims };
  if (flags.includes("scalar")) input.reshape = { shape: [] };
  if (flags.includes("ragged")) input.allow_ragged_batch = true;
  if (flags.includes("optional")) input.optional = true;
  return input;
}

function modelOutput([name, type, dims]: Tensor, logits: DataType): ModelOutput {
  return { name, data_type: type === "LOGITS" ? logits : type, dims };
}

function queueBatching(o: ResolvedTritonOptions): ModelConfig["dynamic_batching"] {
  return {
    preferred_batch_size: [o.maxBatchSize],
    max_queue_delay_microseconds: o.maxQueueDelayMicroseconds,
    default_queue_policy: { max_queue_size: o.maxQueueSize },
  };
}

const cpuInstances = (count: number): ModelConfig["instance_group"] => [{ count, kind: "KIND_CPU" }];

function tensorrtLlmParameters(o: ResolvedTritonOptions): Record<string, ModelParameter> {
  const params: Record<string, ModelParameter> = {
    gpt_model_type: str("inflight_fused_batching"),
    gpt_model_path: str(o.engineDir),
    max_beam_width: str(o.maxBeamWidth),
    batch_scheduler_policy: str(o.batchSchedulerPolicy),
    kv_cache_free_gpu_mem_fraction: str(o.kvCacheFreeGpuMemFraction),
    enable_kv_cache_reuse: str(o.enableKvCacheReuse),
    enable_chunked_context: str(o.enableChunkedContext),
    exclude_input_in_output: str(o.excludeInputInOutput),
    // Lets Triton hand GPU-resident inputs to the backend without a host copy (upstream's setting).
    FORCE_CPU_ONLY_INPUT_TENSORS: str("no"),
  };
  if (o.maxTokensInPagedKvCache !== undefined) params.max_tokens_in_paged_kv_cache = str(o.maxTokensInPagedKvCache);
  // Per-layer list, comma-separated: the backend reads GetParameter<std::vector<int32_t>>("max_attention_window_size").
  if (o.maxAttentionWindow !== undefined) params.max_attention_window_size = str(o.maxAttentionWindow.join(","));
  return params;
}

function stepModels(o: ResolvedTritonOptions): Record<Exclude<ModelName, "ensemble">, ModelConfig> {
  const L = o.logitsDatatype;
  return {
    preprocessing: {
      name: "preprocessing",
      backend: "python",
      max_batch_size: o.maxBatchSize,
      input: PREPROCESSING_INPUTS.map((t) => modelInput(t, L)),
      output: PREPROCESSING_OUTPUTS.map((t) => modelOutput(t, L)),
      instance_group: cpuInstances(o.preprocessingInstances),
      dynamic_batching: queueBatching(o),
      parameters: { tokenizer_dir: str(o.tokenizerDir), add_special_tokens: str(o.addSpecialTokens) },
    },
    tensorrt_llm: {
      name: "tensorrt_llm",
      backend: "tensorrtllm", // the C++ executor backend; it places its own ranks on GPUs, hence KIND_CPU
      max_batch_size: o.maxBatchSize,
      input: [
        ...TRTLLM_INPUTS.map((t) => modelInput(t, L)),
        ...(o.lora ? LORA_INPUTS.map(([n, t, d, ...f]) => modelInput([n, t === "LORA" ? o.lora!.weightsDatatype : t, d, ...f], L)) : []),
      ],
      output: TRTLLM_OUTPUTS.map((t) => modelOutput(t, L)),
      instance_group: cpuInstances(1),
      dynamic_batching: queueBatching(o),
      parameters: tensorrtLlmParameters(o),
      model_transaction_policy: { decoupled: o.decoupled },
    },
    postprocessing: {
      name: "postprocessing",
      backend: "python",
      max_batch_size: o.maxBatchSize,
      input: POSTPROCESSING_INPUTS.map((t) => modelInput(t, L)),
      output: POSTPROCESSING_OUTPUTS.map((t) => modelOutput(t, L)),
      instance_group: cpuInstances(o.postprocessingInstances),
      dynamic_batching: {},
      parameters: { tokenizer_dir: str(o.tokenizerDir), skip_special_tokens: str(o.skipSpecialTokens) },
    },
  };
}

function findTensor<T extends { name: string }>(tensors: T[], name: string, where: string): T {
  const found = tensors.find((t) => t.name === name);
  if (!found) throw new TritonConfigError(`ensemble step ${where} maps "${name}", which that model does not declare`);
  return found;
}

function ensembleConfig(models: ReturnType<typeof stepModels>, maxBatchSize: number, lora: boolean): ModelConfig {
  const input: ModelInput[] = [];
  const output: ModelOutput[] = [];
  const steps = lora ? STEPS.map((s) => (s.model === "tensorrt_llm" ? { ...s, inputs: { ...s.inputs, ...LORA_ENSEMBLE_MAP } } : s)) : STEPS;
  const step: EnsembleStep[] = steps.map(({ model, inputs, outputs }) => {
    for (const [modelTensor, ensembleTensor] of Object.entries(inputs)) {
      if (isInternal(ensembleTensor)) continue;
      const src = findTensor(models[model].input, modelTensor, `${model} input_map`);
      input.push({ name: ensembleTensor, data_type: src.data_type, dims: src.dims, ...(src.optional ? { optional: true } : {}) });
    }
    for (const [modelTensor, ensembleTensor] of Object.entries(outputs)) {
      if (isInternal(ensembleTensor)) continue;
      const src = findTensor(models[model].output, modelTensor, `${model} output_map`);
      output.push({ name: ensembleTensor, data_type: src.data_type, dims: src.dims });
    }
    return { model_name: model, model_version: -1, input_map: { ...inputs }, output_map: { ...outputs } };
  });
  // Clients read text_output first; keep it at the head of the output list.
  output.sort((a, b) => Number(b.name === "text_output") - Number(a.name === "text_output"));
  return { name: "ensemble", platform: "ensemble", max_batch_size: maxBatchSize, input, output, ensemble_scheduling: { step } };
}

/** The four model configs for `opts` (validated; throws TritonOptionError on bad options). Pure. */
export function tritonConfigs(opts: TritonRepoOptions): TritonConfigs {
  const o = resolveTritonOptions(opts);
  const models = stepModels(o);
  return { ensemble: ensembleConfig(models, o.maxBatchSize, o.lora !== undefined), ...models };
}
