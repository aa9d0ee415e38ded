// `kiln compile <model.ts> --hf DIR --out DIR [--dtype] [--tp N] [--pp N] [--custom-code]`: write a TensorRT-LLM
// 1.2.1 checkpoint (config.json, rank files, build_config.json, weights.map.json, model.py for custom
// architectures) and print the trtllm-build command that turns it into engines.

import { conversionProgress, formatBytes } from "../../weights/progress.ts";
import { compileModel } from "../../pipeline/compile.ts";
import { loadModelFile } from "../../pipeline/load-model-file.ts";
import { parseCount } from "../args.ts";
import { UsageError } from "../errors.ts";
import type { TrtDtype } from "../../../codegen/trtllm-engine/pretrained-config.ts";

export interface CompileFlags {
  readonly hf: string;
  readonly out: string;
  readonly dtype?: string;
  readonly tp: string;
  readonly pp: string;
  readonly customCode?: boolean;
  readonly json?: boolean;
  readonly typecheck: boolean;
}

const DTYPES = ["float32", "float16", "bfloat16"] as const;

export async function compileCommand(file: string, flags: CompileFlags, out: (s: string) => void): Promise<void> {
  if (flags.dtype !== undefined && !(DTYPES as readonly string[]).includes(flags.dtype)) throw new UsageError(`--dtype: expected one of ${DTYPES.join(", ")}, got '${flags.dtype}'`);
  const mapping = { tp: parseCount(flags.tp, "--tp", 1), pp: parseCount(flags.pp, "--pp", 1) };
  const def = await loadModelFile(file, { typecheck: flags.typecheck });
  const progress = flags.json ? undefined : conversionProgress();
  const r = await compileModel(def, {
    hfDir: flags.hf,
    outDir: flags.out,
    mapping,
    ...(flags.dtype && { dtype: flags.dtype as TrtDtype }),
    ...(flags.customCode && { customCode: true }),
    ...(progress && { onProgress: progress.onProgress }),
  }).finally(() => progress?.stop());
  const e = r.emission;
  const command = e.buildCommand(flags.out, `${flags.out.replace(/\/$/, "")}/engines`);
  const why = e.builtin ? `built-in TensorRT-LLM class (${e.builtin})` : e.detection.ok ? "custom code (--custom-code)" : `custom code: ${Object.entries(e.detection.reasons).map(([f, r]) => `not ${f}: ${r}`).join("; ")}`;
  if (flags.json) {
    out(`${JSON.stringify({ out: r.outDir, architecture: e.architecture, builtin: e.builtin ?? null, reason: why, files: [...Object.keys(e.files), ...e.plans.map((p) => p.file)].sort(), bytes: r.bytesWritten, seconds: Number(r.seconds.toFixed(3)), command })}\n`);
    return;
  }
  out(`kiln: wrote ${r.outDir} (${e.plans.length} rank file${e.plans.length > 1 ? "s" : ""}, ${formatBytes(r.bytesWritten)}, ${r.seconds.toFixed(2)} s)\n`);
  out(`  architecture ${e.architecture}: ${why}\n`);
  out(`Build the engines (TensorRT-LLM 1.2.1, on a GPU machine):\n  ${command}\n`);
}
