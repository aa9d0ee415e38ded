// `kiln compile <model.ts> --hf DIR --out DIR [--target T] [--dtype] [--tp N] [--pp N] [--custom-code]`: write the
// output of one code-generation target (src/driver/targets.ts): a TensorRT-LLM 1.2.1 checkpoint for trtllm-build
// (default), a checkpoint + package for TensorRT-LLM's PyTorch backend, or a Hugging Face remote-code model; then
// print what the target says to do next. `--quant w8a16|w4a16|fp8` and `--kv-cache int8|fp8` quantize the engine
// checkpoint (docs/quantization.md), with `--calibration FILE` from kiln calibrate or `--prompts FILE...` to
// calibrate on (the built-in prompts otherwise).

import { conversionProgress, formatBytes } from "../../weights/progress.ts";
import { compileModel } from "../../driver/compile.ts";
import { loadModelFile } from "../../driver/load-model-file.ts";
import { readPromptFiles } from "../../quant/prompts.ts";
import { parseCount } from "../args.ts";
import { UsageError } from "../errors.ts";
import type { OutputDtype } from "../../../codegen/common/target.ts";
import { DEFAULT_TARGET, isTargetName, TARGET_NAMES } from "../../driver/targets.ts";
import { describeQuant, parseQuantFlags, type QuantFlags } from "./quant-flags.ts";

export interface CompileFlags extends QuantFlags {
  readonly hf: string;
  readonly out: string;
  readonly target?: string;
  readonly dtype?: string;
  readonly tp: string;
  readonly pp: string;
  readonly customCode?: boolean;
  readonly json?: boolean;
  readonly typecheck: boolean;
}

const DTYPES = ["float32", "float16", "bfloat16"] as const;

export async function compileCommand(file: string, flags: CompileFlags, out: (s: string) => void): Promise<void> {
  const target = flags.target ?? DEFAULT_TARGET;
  if (!isTargetName(target)) throw new UsageError(`--target: expected one of ${TARGET_NAMES.join(", ")}, got '${target}'`);
  if (flags.dtype !== undefined && !(DTYPES as readonly string[]).includes(flags.dtype)) throw new UsageError(`--dtype: expected one of ${DTYPES.join(", ")}, got '${flags.dtype}'`);
  const mapping = { tp: parseCount(flags.tp, "--tp", 1), pp: parseCount(flags.pp, "--pp", 1) };
  const quant = await parseQuantFlags(flags);
  const calibrationPrompts = flags.prompts?.length ? await readPromptFiles(flags.prompts) : undefined;
  const def = await loadModelFile(file, { typecheck: flags.typecheck });
  const progress = flags.json ? undefined : conversionProgress();
  const r = await compileModel(def, {
    hfDir: flags.hf,
    outDir: flags.out,
    mapping,
    target,
    ...(flags.dtype && { dtype: flags.dtype as OutputDtype }),
    ...(flags.customCode && { customCode: true }),
    quant,
    ...(calibrationPrompts && { calibrationPrompts }),
    ...(progress && { onProgress: progress.onProgress }),
  }).finally(() => progress?.stop());
  const e = r.emission;
  const files = [...Object.keys(e.files), ...e.plans.map((p) => p.file)].sort();
  if (flags.json) {
    out(`${JSON.stringify({ out: r.outDir, target, architecture: e.architecture, summary: e.summary, files, bytes: r.bytesWritten, nativeCopiedBytes: r.nativeCopiedBytes, nativeCastBytes: r.nativeCastBytes, seconds: Number(r.seconds.toFixed(3)), quant: quant.weight ?? null, kvCache: quant.kv ?? null, usage: e.usage(flags.out), ...e.info(flags.out) })}\n`);
    return;
  }
  out(`kiln: wrote ${r.outDir} (target ${target}, ${formatBytes(r.bytesWritten)} of weights${nativeNote(r)}, ${r.seconds.toFixed(2)} s)\n`);
  out(`  ${e.summary}\n`);
  if (quant.weight || quant.kv) out(`  quantized: ${describeQuant(quant)} (config.json "quantization"; kiln eval shows the accuracy cost)\n`);
  for (const line of e.usage(flags.out)) out(`${line}\n`);
}

/** ", 2.1 GB copied file to file by the native helper" and/or cast by it; empty without the helper. */
function nativeNote(r: { nativeCopiedBytes: number; nativeCastBytes: number }): string {
  const parts = [r.nativeCopiedBytes && `${formatBytes(r.nativeCopiedBytes)} copied file to file by the native helper`, r.nativeCastBytes && `${formatBytes(r.nativeCastBytes)} cast by the native helper`];
  return parts.filter(Boolean).map((p) => `, ${p}`).join("");
}
