// The four model configs: backend parameters, option handling, schema round trip,
// and the ensemble-wiring checker (clean on our configs, loud on broken ones).

import { describe, expect, it } from "vitest";
import { tritonConfigs } from "./configs.ts";
import type { TritonConfigs } from "./configs.ts";
import type { ModelConfig } from "./model-config.ts";
import { modelConfigType } from "./model-config.ts";
import { TritonOptionError } from "./options.ts";
import type { TritonRepoOptions } from "./options.ts";
import { parseTextFormat, printTextFormat } from "./pbtxt.ts";
import { repoProblems } from "./repo-check.ts";

const BASE: TritonRepoOptions = { repo: "/out/repo", engineDir: "/engines/llama-tp2", tokenizerDir: "/hf/llama" };
const params = (c: ModelConfig) => Object.fromEntries(Object.entries(c.parameters ?? {}).map(([k, v]) => [k, v.string_value]));
const names = (list: { name: string }[]) => list.map((t) => t.name);

describe("tritonConfigs", () => {
  it("sets the tensorrt_llm backend parameters from defaults", () => {
    const c = tritonConfigs(BASE);
    expect(c.tensorrt_llm.backend).toBe("tensorrtllm");
    expect(c.tensorrt_llm.max_batch_size).toBe(64);
    expect(c.tensorrt_llm.model_transaction_policy).toEqual({ decoupled: false });
    expect(c.tensorrt_llm.instance_group).toEqual([{ count: 1, kind: "KIND_CPU" }]);
    expect(c.tensorrt_llm.dynamic_batching).toEqual({
      preferred_batch_size: [64],
      max_queue_delay_microseconds: 0,
      default_queue_policy: { max_queue_size: 0 },
    });
    expect(params(c.tensorrt_llm)).toEqual({
      gpt_model_type: "inflight_fused_batching",
      gpt_model_path: "/engines/llama-tp2",
      max_beam_width: "1",
      batch_scheduler_policy: "guaranteed_no_evict",
      kv_cache_free_gpu_mem_fraction: "0.9",
      enable_kv_cache_reuse: "false",
      enable_chunked_context: "false",
      exclude_input_in_output: "true",
      FORCE_CPU_ONLY_INPUT_TENSORS: "no",
    });
  });

  it("takes every flag from the options", () => {
    const c = tritonConfigs({
      ...BASE,
      maxBatchSize: 8,
      decoupled: true,
      kvCacheFreeGpuMemFraction: 0.35,
      maxTokensInPagedKvCache: 16384,
      batchSchedulerPolicy: "max_utilization",
      enableKvCacheReuse: true,
      enableChunkedContext: true,
      maxQueueDelayMicroseconds: 250,
      maxQueueSize: 32,
      maxBeamWidth: 4,
      excludeInputInOutput: false,
      logitsDatatype: "TYPE_FP16",
      preprocessingInstances: 3,
      postprocessingInstances: 2,
      addSpecialTokens: false,
      skipSpecialTokens: false,
    });
    expect(c.tensorrt_llm.model_transaction_policy).toEqual({ decoupled: true });
    expect(params(c.tensorrt_llm)).toMatchObject({
      kv_cache_free_gpu_mem_fraction: "0.35",
      max_tokens_in_paged_kv_cache: "16384",
      batch_scheduler_policy: "max_utilization",
      enable_kv_cache_reuse: "true",
      enable_chunked_context: "true",
      max_beam_width: "4",
      exclude_input_in_output: "false",
    });
    for (const name of ["ensemble", "preprocessing", "tensorrt_llm", "postprocessing"] as const) {
      expect(c[name].max_batch_size, name).toBe(8);
    }
    expect(c.preprocessing.dynamic_batching).toEqual({
      preferred_batch_size: [8],
      max_queue_delay_microseconds: 250,
      default_queue_policy: { max_queue_size: 32 },
    });
    expect(c.preprocessing.instance_group).toEqual([{ count: 3, kind: "KIND_CPU" }]);
    expect(c.postprocessing.instance_group).toEqual([{ count: 2, kind: "KIND_CPU" }]);
    expect(params(c.preprocessing)).toEqual({ tokenizer_dir: "/hf/llama", add_special_tokens: "false" });
    expect(params(c.postprocessing)).toEqual({ tokenizer_dir: "/hf/llama", skip_special_tokens: "false" });
    const logits = (m: ModelConfig) => m.output.filter((t) => t.name.endsWith("_logits")).map((t) => t.data_type);
    expect(logits(c.tensorrt_llm)).toEqual(["TYPE_FP16", "TYPE_FP16"]);
    expect(logits(c.ensemble)).toEqual(["TYPE_FP16", "TYPE_FP16"]);
  });

  it("omits max_tokens_in_paged_kv_cache unless given (the backend then sizes by the fraction)", () => {
    expect(params(tritonConfigs(BASE).tensorrt_llm)).not.toHaveProperty("max_tokens_in_paged_kv_cache");
  });

  it("gives the pre/post-processing models the tokenizer and the python backend", () => {
    const c = tritonConfigs(BASE);
    for (const m of [c.preprocessing, c.postprocessing]) {
      expect(m.backend).toBe("python");
      expect(m.parameters?.tokenizer_dir).toEqual({ string_value: "/hf/llama" });
    }
    expect(c.postprocessing.dynamic_batching).toEqual({});
  });

  it("declares the ensemble's client-facing tensors", () => {
    const c = tritonConfigs(BASE);
    expect(c.ensemble.platform).toBe("ensemble");
    expect(c.ensemble.backend).toBeUndefined();
    expect(names(c.ensemble.input)).toEqual([
      "text_input",
      "max_tokens",
      "bad_words",
      "stop_words",
      "end_id",
      "pad_id",
      "beam_width",
      "temperature",
      "top_k",
      "top_p",
      "length_penalty",
      "repetition_penalty",
      "min_tokens",
      "presence_penalty",
      "frequency_penalty",
      "seed",
      "return_log_probs",
      "return_context_logits",
      "return_generation_logits",
      "exclude_input_in_output",
      "stream",
    ]);
    const required = c.ensemble.input.filter((t) => !t.optional).map((t) => t.name);
    expect(required).toEqual(["text_input", "max_tokens"]);
    expect(c.ensemble.input.find((t) => t.name === "text_input")).toEqual({ name: "text_input", data_type: "TYPE_STRING", dims: [1] });
    expect(c.ensemble.output[0]).toEqual({ name: "text_output", data_type: "TYPE_STRING", dims: [-1] });
    expect(c.ensemble.ensemble_scheduling?.step.map((s) => [s.model_name, s.model_version])).toEqual([
      ["preprocessing", -1],
      ["tensorrt_llm", -1],
      ["postprocessing", -1],
    ]);
  });

  it("reshapes scalar request inputs of tensorrt_llm to [] and marks input_ids ragged", () => {
    const inputs = tritonConfigs(BASE).tensorrt_llm.input;
    expect(inputs.find((t) => t.name === "input_ids")).toEqual({ name: "input_ids", data_type: "TYPE_INT32", dims: [-1], allow_ragged_batch: true });
    expect(inputs.find((t) => t.name === "input_lengths")).toEqual({
      name: "input_lengths",
      data_type: "TYPE_INT32",
      dims: [1],
      reshape: { shape: [] },
    });
    expect(inputs.find((t) => t.name === "seed")).toMatchObject({ data_type: "TYPE_UINT64", optional: true, reshape: { shape: [] } });
  });

  it("prints every config through the schema and parses it back unchanged", () => {
    const type = modelConfigType();
    const c = tritonConfigs({ ...BASE, decoupled: true, maxTokensInPagedKvCache: 4096, tokenizerDir: '/hf/we"ird\\dir\té' });
    for (const [name, config] of Object.entries(c)) {
      const text = printTextFormat(type, config);
      expect(parseTextFormat(type, text, `${name}/config.pbtxt`), name).toEqual(config);
    }
    expect(printTextFormat(type, c.preprocessing)).toContain(String.raw`string_value: "/hf/we\"ird\\dir\t\303\251"`);
  });
});

describe("option validation", () => {
  const rejects: [Partial<TritonRepoOptions>, RegExp][] = [
    [{ kvCacheFreeGpuMemFraction: 0 }, /kvCacheFreeGpuMemFraction=0: must be a number in \(0, 1\]/],
    [{ kvCacheFreeGpuMemFraction: 1.01 }, /kvCacheFreeGpuMemFraction=1.01/],
    [{ kvCacheFreeGpuMemFraction: Number.NaN }, /kvCacheFreeGpuMemFraction/],
    [{ tp: 0 }, /tp=0: must be an integer in \[1, 1024\]/],
    [{ pp: 1.5 }, /pp=1.5/],
    [{ maxBatchSize: 0 }, /maxBatchSize=0/],
    [{ maxBeamWidth: 0 }, /maxBeamWidth=0/],
    [{ maxQueueSize: -1 }, /maxQueueSize=-1/],
    [{ maxTokensInPagedKvCache: 0 }, /maxTokensInPagedKvCache=0/],
    [{ batchSchedulerPolicy: "fifo" as never }, /batchSchedulerPolicy="fifo": must be one of guaranteed_no_evict, max_utilization/],
    [{ logitsDatatype: "TYPE_INT8" as never }, /logitsDatatype="TYPE_INT8"/],
    [{ decoupled: "yes" as never }, /decoupled="yes": must be true or false/],
    [{ engineDir: "" }, /engineDir="": must be a non-empty path/],
    [{ tokenizerDir: "a\nb" }, /tokenizerDir=.*NUL or newline/],
  ];
  it.each(rejects)("rejects %o", (bad, re) => {
    expect(() => tritonConfigs({ ...BASE, ...bad })).toThrow(TritonOptionError);
    expect(() => tritonConfigs({ ...BASE, ...bad })).toThrow(re);
  });

  it("accepts the boundary fraction 1 and ignores explicitly undefined options", () => {
    const c = tritonConfigs({ ...BASE, kvCacheFreeGpuMemFraction: 1, maxBatchSize: undefined });
    expect(c.tensorrt_llm.parameters?.kv_cache_free_gpu_mem_fraction).toEqual({ string_value: "1" });
    expect(c.tensorrt_llm.max_batch_size).toBe(64);
  });
});

describe("repoProblems", () => {
  const fresh = (): TritonConfigs => structuredClone(tritonConfigs(BASE));

  it("finds nothing wrong with the generated repository", () => {
    expect(repoProblems(fresh())).toEqual([]);
  });

  it("checks every step tensor against the step model and the ensemble", () => {
    const c = fresh();
    for (const step of c.ensemble.ensemble_scheduling!.step) {
      const model = c[step.model_name as keyof TritonConfigs];
      for (const key of Object.keys(step.input_map)) expect(names(model.input), step.model_name).toContain(key);
      for (const key of Object.keys(step.output_map)) expect(names(model.output), step.model_name).toContain(key);
    }
  });

  const broken: [string, (c: TritonConfigs) => void, string][] = [
    [
      "unknown step input",
      (c) => {
        c.ensemble.ensemble_scheduling!.step[1]!.input_map.no_such = "_INPUT_ID";
      },
      'ensemble step tensorrt_llm: input_map key "no_such" is not an input of tensorrt_llm',
    ],
    [
      "unproduced source",
      (c) => {
        c.ensemble.ensemble_scheduling!.step[2]!.input_map.TOKENS_BATCH = "_NOWHERE";
      },
      'ensemble step postprocessing: input_map value "_NOWHERE" is neither an ensemble input nor an earlier step output',
    ],
    [
      "unknown step output",
      (c) => {
        c.ensemble.ensemble_scheduling!.step[0]!.output_map.GHOST = "_GHOST";
      },
      'ensemble step preprocessing: output_map key "GHOST" is not an output of preprocessing',
    ],
    [
      "tensor produced twice",
      (c) => {
        c.ensemble.ensemble_scheduling!.step[1]!.output_map.batch_index = "_INPUT_ID";
      },
      'ensemble step tensorrt_llm: output_map value "_INPUT_ID" is already produced elsewhere',
    ],
    [
      "dtype mismatch",
      (c) => {
        c.tensorrt_llm.input.find((t) => t.name === "input_ids")!.data_type = "TYPE_INT64";
      },
      'ensemble step tensorrt_llm: "_INPUT_ID" → input_ids: TYPE_INT32[-1] vs TYPE_INT64[-1]',
    ],
    [
      "rank mismatch",
      (c) => {
        c.postprocessing.input[0]!.dims = [-1];
      },
      'ensemble step postprocessing: "_TOKENS_BATCH" → TOKENS_BATCH: TYPE_INT32[-1,-1] vs TYPE_INT32[-1]',
    ],
    [
      "required input unfed",
      (c) => {
        delete c.ensemble.ensemble_scheduling!.step[1]!.input_map.input_lengths;
      },
      "ensemble step tensorrt_llm: required input input_lengths is not in input_map",
    ],
    [
      "optional feeds required",
      (c) => {
        c.tensorrt_llm.input.find((t) => t.name === "temperature")!.optional = false;
      },
      'ensemble step tensorrt_llm: optional "temperature" feeds required input temperature',
    ],
    [
      "ensemble output unproduced",
      (c) => {
        c.ensemble.output.push({ name: "extra", data_type: "TYPE_INT32", dims: [1] });
      },
      "ensemble: output extra is not produced by any step",
    ],
    [
      "missing step model",
      (c) => {
        c.ensemble.ensemble_scheduling!.step[2]!.model_name = "detok";
      },
      'ensemble: step model "detok" is not in the repository',
    ],
    [
      "small step batch",
      (c) => {
        c.postprocessing.max_batch_size = 1;
      },
      "ensemble step postprocessing: max_batch_size 1 < ensemble's 64",
    ],
    [
      "missing engine path",
      (c) => {
        delete c.tensorrt_llm.parameters!.gpt_model_path;
      },
      "tensorrt_llm: parameter gpt_model_path is missing or empty",
    ],
    [
      "template left in",
      (c) => {
        c.preprocessing.parameters!.tokenizer_dir = { string_value: "${tokenizer_dir}" };
      },
      "preprocessing: parameter tokenizer_dir holds an unfilled template ${tokenizer_dir}",
    ],
    [
      "wrong backend",
      (c) => {
        c.tensorrt_llm.backend = "python";
      },
      'tensorrt_llm: backend is "python", expected "tensorrtllm"',
    ],
  ];
  it.each(broken)("reports %s", (_, breakIt, problem) => {
    const c = fresh();
    breakIt(c);
    expect(repoProblems(c)).toContain(problem);
  });
});
