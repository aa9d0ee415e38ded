// `kiln triton OUT --engine-dir ENG --tokenizer DIR --repo REPO`: write a Triton model repository for TensorRT-LLM's
// in-flight batching backend (ensemble, preprocessing, tensorrt_llm, postprocessing). tp and pp come from the Kiln
// checkpoint OUT (config.json's mapping), so the launch command starts the right number of ranks. A checkpoint
// compiled with runtime LoRA (lora/adapters.json) gets the LoRA inputs and an example request (lora_request.py).

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeTritonRepo } from "../../../codegen/triton/repo.ts";
import { UsageError } from "../errors.ts";
import type { TritonLoraOptions } from "../../../codegen/triton/options.ts";

export interface TritonFlags {
  readonly engineDir: string;
  readonly tokenizer: string;
  readonly repo: string;
  readonly maxBatchSize?: string;
  readonly streaming?: boolean;
  readonly kvCacheFreeGpuMemFraction?: string;
  readonly maxTokensInPagedKvCache?: string;
  readonly batchSchedulerPolicy?: string;
  readonly enableKvCacheReuse?: boolean;
  readonly force?: boolean;
}

/** tp/pp and, for sliding-window models, the per-layer attention windows, from the checkpoint's config.json. */
function mappingOf(ckpt: string): { tp: number; pp: number; maxAttentionWindow?: number[] } {
  let cfg: { mapping?: { tp_size?: number; pp_size?: number }; runtime_defaults?: { max_attention_window?: number[] } };
  try {
    cfg = JSON.parse(readFileSync(join(ckpt, "config.json"), "utf8"));
  } catch {
    throw new UsageError(`${ckpt}/config.json: not a checkpoint written by 'kiln compile'`);
  }
  const windows = cfg.runtime_defaults?.max_attention_window;
  return { tp: cfg.mapping?.tp_size ?? 1, pp: cfg.mapping?.pp_size ?? 1, ...(windows && { maxAttentionWindow: windows }) };
}

const LORA_WIRE: Record<string, TritonLoraOptions["weightsDatatype"]> = { float32: "TYPE_FP32", float16: "TYPE_FP16", bfloat16: "TYPE_BF16" };

/** Runtime LoRA adapters `kiln compile --lora` wrote into the checkpoint (lora/adapters.json), if any. */
function loraOf(ckpt: string): TritonLoraOptions | undefined {
  const manifest = join(ckpt, "lora", "adapters.json");
  if (!existsSync(manifest)) return undefined;
  const m = JSON.parse(readFileSync(manifest, "utf8")) as { dtype: string; adapters: { task_id: number }[] };
  const weightsDatatype = LORA_WIRE[m.dtype];
  if (!weightsDatatype) throw new UsageError(`${manifest}: dtype '${m.dtype}' is not one Triton's lora_weights can take`);
  return { weightsDatatype, adaptersDir: join(ckpt, "lora"), taskIds: m.adapters.map((a) => a.task_id) };
}

const num = (v: string | undefined, flag: string) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${flag}: expected a number, got '${v}'`);
  return n;
};

export function tritonCommand(ckpt: string, f: TritonFlags, out: (s: string) => void): void {
  const lora = loraOf(ckpt);
  const summary = writeTritonRepo({
    ...(lora && { lora }),
    repo: f.repo,
    engineDir: f.engineDir,
    tokenizerDir: f.tokenizer,
    ...mappingOf(ckpt),
    ...(f.maxBatchSize !== undefined && { maxBatchSize: num(f.maxBatchSize, "--max-batch-size")! }),
    ...(f.streaming && { decoupled: true }),
    ...(f.kvCacheFreeGpuMemFraction !== undefined && { kvCacheFreeGpuMemFraction: num(f.kvCacheFreeGpuMemFraction, "--kv-cache-free-gpu-mem-fraction")! }),
    ...(f.maxTokensInPagedKvCache !== undefined && { maxTokensInPagedKvCache: num(f.maxTokensInPagedKvCache, "--max-tokens-in-paged-kv-cache")! }),
    ...(f.batchSchedulerPolicy !== undefined && { batchSchedulerPolicy: f.batchSchedulerPolicy as "guaranteed_no_evict" | "max_utilization" }),
    ...(f.enableKvCacheReuse && { enableKvCacheReuse: true }),
    ...(f.force && { force: true }),
    inputs: [ckpt],
  });
  out(summary.text.endsWith("\n") ? summary.text : `${summary.text}\n`);
  if (lora) out(`runtime LoRA: tasks ${lora.taskIds.join(", ")} from ${lora.adaptersDir}; example request: ${join(f.repo, "lora_request.py")}\n`);
}
