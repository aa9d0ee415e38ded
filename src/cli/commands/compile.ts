// `kiln compile <model.ts> --hf DIR --out DIR [--target T] [--dtype] [--tp N] [--pp N] [--custom-code]`: write the
// output of one code-generation target (src/driver/targets.ts): a TensorRT-LLM 1.2.1 checkpoint for trtllm-build
// (default), a checkpoint + package for TensorRT-LLM's PyTorch backend, or a Hugging Face remote-code model; then
// print what the target says to do next. `--quant w8a16|w4a16|fp8` and `--kv-cache int8|fp8` quantize the engine
// checkpoint (docs/quantization.md), with `--calibration FILE` from kiln calibrate or `--prompts FILE...` to
// calibrate on (the built-in prompts otherwise). `--lora DIR --lora-merge` folds a PEFT LoRA adapter into the
// written weights; `--lora DIR[,DIR...]` converts adapters for TensorRT-LLM's runtime LoRA (docs/lora.md).

import { existsSync } from "node:fs";
import { conversionProgress, formatBytes } from "../../weights/progress.ts";
import { compileModel } from "../../driver/compile.ts";
import { chooseModel } from "../../driver/zoo.ts";
import { readPromptFiles } from "../../quant/prompts.ts";
import { parseMapping } from "../args.ts";
import { checkOutputDir } from "../../io/output-guard.ts";
import { UsageError } from "../errors.ts";
import { type LoraAdapter, readAdapter } from "../../lora/adapter.ts";
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
  readonly moeTp?: string;
  readonly moeEp?: string;
  readonly customCode?: boolean;
  readonly json?: boolean;
  readonly typecheck: boolean;
  readonly force?: boolean;
  readonly allowNonfinite?: boolean;
  readonly lora?: string;
  readonly loraMerge?: boolean;
}

const DTYPES = ["float32", "float16", "bfloat16"] as const;

export async function compileCommand(spec: string | undefined, flags: CompileFlags, out: (s: string) => void): Promise<void> {
  const target = flags.target ?? DEFAULT_TARGET;
  if (!isTargetName(target)) throw new UsageError(`--target: expected one of ${TARGET_NAMES.join(", ")}, got '${target}'`);
  if (flags.dtype !== undefined && !(DTYPES as readonly string[]).includes(flags.dtype))
    throw new UsageError(`--dtype: expected one of ${DTYPES.join(", ")}, got '${flags.dtype}'`);
  const mapping = parseMapping(flags);
  const inputs = [...(spec !== undefined && existsSync(spec) ? [spec] : []), ...(flags.calibration ? [flags.calibration] : []), ...(flags.prompts ?? [])];
  const guard = { flag: "--out", inputs: [flags.hf, ...inputs], ...(flags.force && { force: true }) };
  checkOutputDir(flags.out, guard);
  const quant = await parseQuantFlags(flags);
  const calibrationPrompts = flags.prompts?.length ? await readPromptFiles(flags.prompts) : undefined;
  const { loraMerge, loraRuntime } = await parseLoraFlags(flags);
  const { def } = await chooseModel(spec, flags, { typecheck: flags.typecheck });
  const progress = flags.json ? undefined : conversionProgress();
  const r = await compileModel(def, {
    hfDir: flags.hf,
    outDir: flags.out,
    inputs,
    ...(flags.force && { force: true }),
    ...(flags.allowNonfinite && { allowNonFinite: true }),
    mapping,
    target,
    ...(flags.dtype && { dtype: flags.dtype as OutputDtype }),
    ...(flags.customCode && { customCode: true }),
    quant,
    ...(calibrationPrompts && { calibrationPrompts }),
    ...(loraMerge && { loraMerge }),
    ...(loraRuntime && { loraRuntime }),
    ...(progress && { onProgress: progress.onProgress }),
  }).finally(() => progress?.stop());
  const e = r.emission;
  for (const w of [...r.numerics.nonFinite.map((p) => `written as asked (--allow-nonfinite): ${p}`), ...r.numerics.underflow])
    process.stderr.write(`kiln: warning: ${w}\n`);
  const files = [...Object.keys(e.files), ...e.plans.map((p) => p.file)].sort();
  if (flags.json) {
    out(
      `${JSON.stringify({ out: r.outDir, target, architecture: e.architecture, summary: e.summary, files, bytes: r.bytesWritten, nativeCopiedBytes: r.nativeCopiedBytes, nativeCastBytes: r.nativeCastBytes, seconds: Number(r.seconds.toFixed(3)), quant: quant.weight ?? null, kvCache: quant.kv ?? null, ...(loraMerge && { loraMerged: loraMerge.dir }), usage: e.usage(flags.out), numerics: r.numerics, ...e.info(flags.out) })}\n`,
    );
    return;
  }
  out(`kiln: wrote ${r.outDir} (target ${target}, ${formatBytes(r.bytesWritten)} of weights${nativeNote(r)}, ${r.seconds.toFixed(2)} s)\n`);
  out(`  ${e.summary}\n`);
  if (loraRuntime)
    out(
      `  runtime LoRA: ${loraRuntime.map((a, i) => `task ${i + 1} = ${a.dir}`).join(", ")} (lora/<task>/model.lora_{weights,config}.npy; build_config.json lora_config)\n`,
    );
  if (loraMerge) out(`  LoRA merged: ${loraMerge.dir} (${loraMerge.modules.length} modules folded into the weights; weights.map.json "lora")\n`);
  if (quant.weight || quant.kv) out(`  quantized: ${describeQuant(quant)} (config.json "quantization"; kiln eval shows the accuracy cost)\n`);
  for (const line of e.usage(flags.out)) out(`${line}\n`);
}

/** --lora DIR[,DIR...] [--lora-merge]: one adapter to merge, or the adapters for runtime LoRA (task ids 1, 2, ...). */
async function parseLoraFlags(flags: CompileFlags): Promise<{ loraMerge?: LoraAdapter; loraRuntime?: LoraAdapter[] }> {
  if (flags.lora === undefined) {
    if (flags.loraMerge) throw new UsageError("--lora-merge needs --lora DIR");
    return {};
  }
  const dirs = flags.lora.split(",").filter((d) => d !== "");
  if (!dirs.length) throw new UsageError("--lora: give an adapter directory");
  if (flags.loraMerge && dirs.length > 1) throw new UsageError(`--lora-merge folds one adapter into the weights, got ${dirs.length} (${dirs.join(", ")})`);
  const adapters = [];
  for (const d of dirs) adapters.push(await readAdapter(d));
  return flags.loraMerge ? { loraMerge: adapters[0]! } : { loraRuntime: adapters };
}

/** ", 2.1 GB copied file to file by the native helper" and/or cast by it; empty without the helper. */
function nativeNote(r: { nativeCopiedBytes: number; nativeCastBytes: number }): string {
  const parts = [
    r.nativeCopiedBytes && `${formatBytes(r.nativeCopiedBytes)} copied file to file by the native helper`,
    r.nativeCastBytes && `${formatBytes(r.nativeCastBytes)} cast by the native helper`,
  ];
  return parts
    .filter(Boolean)
    .map((p) => `, ${p}`)
    .join("");
}
