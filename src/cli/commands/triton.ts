// `kiln triton OUT --engine-dir ENG --tokenizer DIR --repo REPO`: write a Triton model repository for TensorRT-LLM's
// in-flight batching backend (ensemble, preprocessing, tensorrt_llm, postprocessing). tp and pp come from the Kiln
// checkpoint OUT (config.json's mapping), so the launch command starts the right number of ranks.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeTritonRepo } from "../../../codegen/triton/repo.ts";
import { UsageError } from "../errors.ts";

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

const num = (v: string | undefined, flag: string) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${flag}: expected a number, got '${v}'`);
  return n;
};

export function tritonCommand(ckpt: string, f: TritonFlags, out: (s: string) => void): void {
  const summary = writeTritonRepo({
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
  });
  out(summary.text.endsWith("\n") ? summary.text : `${summary.text}\n`);
}
