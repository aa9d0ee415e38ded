// `kiln compile`: model file + Hugging Face checkpoint -> an output directory for one code-generation target
// (src/driver/targets.ts: the TensorRT-LLM engine checkpoint by default, the TensorRT-LLM PyTorch backend, or a Hugging
// Face remote-code model). Trace, check the weights against the checkpoint headers (every problem at once, before
// any heavy work), fuse, lower, emit through the target, and stream the weight files. Everything is written into a
// temporary directory next to the output and renamed into place at the end, so an interrupted run never leaves an
// output that looks complete.
// Quantization (engine target only): `quant` resolves against the lowered model with the DSL's `quantize: false`
// hints; FP8 weights and quantized KV caches need a calibration, which is run here on the CPU (built-in or given
// prompts) unless one is passed in. Without --dtype, a model with quantized weights compiles to the checkpoint's
// dtype when that is half precision, else float16.

import { existsSync } from "node:fs";
import { copyFile, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { ModelDefinition } from "../dsl/define-model.ts";
import { checkHintConsistency, effectiveHints } from "../passes/hints.ts";
import { checkMapping, type Mapping } from "../lower/mapping.ts";
import { inferSourceShapes } from "../weights/infer-shapes.ts";
import { lowerToTrtllm, type LoweredModel } from "../lower/to-trtllm.ts";
import { serializeGraph } from "../ir/serialize.ts";
import { BindError, bindProblems, graphParams } from "../weights/bind.ts";
import { openCheckpoint } from "../weights/checkpoint.ts";
import { writeCheckpointFiles } from "../weights/convert.ts";
import { readHFConfigJson } from "../weights/hf-config.ts";
import { hintExclusions } from "../quant/exclusions.ts";
import { QuantError } from "../numerics/quant-error.ts";
import { checkPrompts, DEFAULT_PROMPTS } from "../quant/prompts.ts";
import { calibrateModel, loadQuantizableModel, quantDtype } from "./quantized-model.ts";
import { checkQuantDtype, isQuantized, needsCalibration, type QuantOptions, resolveQuant } from "../quant/spec.ts";
import { checkRelativePath, type Emission, type OutputDtype } from "../../codegen/common/target.ts";
import { DEFAULT_TARGET, onlyTargetsWith, TARGETS, type TargetName } from "./targets.ts";
import { type Instance, instantiate } from "./instantiate.ts";
import { optimize } from "./optimize.ts";

export interface CompileOptions {
  readonly hfDir: string;
  readonly outDir: string;
  readonly dtype?: OutputDtype;
  readonly mapping?: Mapping;
  /** Code-generation target (default trtllm-engine). */
  readonly target?: TargetName;
  readonly customCode?: boolean;
  /** --quant / --kv-cache (and a calibration, else one is made on `calibrationPrompts`). */
  readonly quant?: QuantOptions;
  /** Calibration prompts when `quant` needs a calibration and has none (default: the built-in prompts). */
  readonly calibrationPrompts?: readonly (readonly number[])[];
  readonly onProgress?: (done: number, total: number, tensor: string) => void;
}

export interface CompileResult {
  readonly outDir: string;
  readonly lowered: LoweredModel;
  readonly emission: Emission;
  readonly bytesWritten: number;
  /** Of bytesWritten, the bytes the native helper copied file to file, and those it cast (0 without it). */
  readonly nativeCopiedBytes: number;
  readonly nativeCastBytes: number;
  readonly seconds: number;
}

const HF_DTYPES: Record<string, OutputDtype> = { float32: "float32", float16: "float16", bfloat16: "bfloat16" };

export function defaultDtype(hf: Record<string, unknown>): OutputDtype {
  return HF_DTYPES[String(hf.torch_dtype ?? hf.dtype ?? "float16")] ?? "float16";
}

export interface Prepared {
  readonly lowered: LoweredModel;
  readonly emission: Emission;
}

type ShapeOf = (name: string) => readonly number[] | undefined;

/** Everything but the bytes: trace, fuse, lower, emit through the target. `shapeOf` gives checkpoint tensor shapes. */
export function prepareCompile<C>(def: ModelDefinition<C>, hf: Record<string, unknown>, shapeOf: ShapeOf | "infer", o: Omit<CompileOptions, "hfDir" | "outDir" | "onProgress" | "calibrationPrompts"> & { configPath?: string; instance?: Instance<C> }): Prepared {
  // Tracing is the costliest step of the prelude; reuse the instance the caller already traced.
  const inst = o.instance ?? instantiate(def, hf, o.configPath ?? "config.json");
  checkHintConsistency(inst.graph);
  const mapping = o.mapping ?? { tp: 1, pp: 1 };
  const shapes = shapeOf === "infer" ? inferSourceShapes(inst.weights.map, new Map(graphParams(inst.graph).map((p) => [p.name, p.shape]))) : undefined;
  const shape: ShapeOf = shapeOf === "infer" ? (n) => shapes!.get(n) : shapeOf;
  const opt = optimize(inst);
  const lowered = lowerToTrtllm(opt.graph, opt.weights.map, shape);
  checkMapping(mapping, lowered.numLayers);
  const target = o.target ?? DEFAULT_TARGET;
  const q = o.quant && isQuantized(o.quant) ? o.quant : undefined;
  if (q && !TARGETS[target].capabilities.quantization) throw new QuantError(`--quant and --kv-cache apply to ${onlyTargetsWith("quantization")}`);
  const dtype = o.dtype ?? (q?.weight ? quantDtype(hf) : defaultDtype(hf));
  if (q) checkQuantDtype(q, dtype);
  const quant = q && resolveQuant(lowered.graph, { ...q, excluded: [...hintExclusions(inst.graph, inst.weights.map, lowered), ...(q.excluded ?? [])] });
  const emission = TARGETS[target].emit(lowered, {
    modelName: def.name,
    dtype,
    mapping,
    hf,
    hints: effectiveHints(inst.graph, ""),
    ...(o.customCode && { customCode: true }),
    shapeOf: shape,
    metadata: { format: "pt", producer: "kiln", model: def.name },
    ...(quant && { quant }),
  });
  for (const name of [...Object.keys(emission.files), ...emission.plans.map((p) => p.file), ...(emission.copyFromSource ?? [])]) checkRelativePath(name);
  return { lowered: { ...lowered, graph: emission.graph }, emission };
}

export async function compileModel<C>(def: ModelDefinition<C>, o: CompileOptions): Promise<CompileResult> {
  const t0 = performance.now();
  const hf = readHFConfigJson(o.hfDir) as Record<string, unknown>;
  const ckpt = await openCheckpoint(o.hfDir);
  try {
    const inst = instantiate(def, hf, `${o.hfDir}/config.json`);
    const problems = bindProblems(graphParams(inst.graph), inst.weights, ckpt);
    if (problems.length) throw new BindError(problems, o.hfDir);
    let quant = o.quant;
    if (quant && needsCalibration(quant) && !quant.calibration && TARGETS[o.target ?? DEFAULT_TARGET].capabilities.quantization) {
      const m = await loadQuantizableModel(def, o.hfDir);
      quant = { ...quant, calibration: calibrateModel(m, checkPrompts(o.calibrationPrompts ?? DEFAULT_PROMPTS, m.vocab, o.calibrationPrompts ? "--prompts" : "the built-in prompts")) };
    }
    const { lowered, emission } = prepareCompile(def, hf, (n) => ckpt.info(n)?.shape, { ...o, ...(quant && { quant }), configPath: `${o.hfDir}/config.json`, instance: inst });
    const outDir = resolve(o.outDir);
    const tmp = join(dirname(outDir), `.${basename(outDir)}.kiln-tmp-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    try {
      const { bytesWritten, nativeCopiedBytes, nativeCastBytes } = await writeCheckpointFiles(ckpt, emission.plans, tmp, o.onProgress ? { onProgress: o.onProgress } : {});
      for (const [name, text] of Object.entries(emission.files)) {
        await mkdir(dirname(join(tmp, name)), { recursive: true });
        await writeFile(join(tmp, name), text);
      }
      for (const name of emission.copyFromSource ?? []) if (existsSync(join(o.hfDir, name))) await copyFile(join(o.hfDir, name), join(tmp, name));
      await writeFile(join(tmp, "kiln.lowered.pb"), serializeGraph(emission.graph));
      const old = `${tmp}.old`;
      await rename(outDir, old).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "ENOENT") throw e;
      });
      await rename(tmp, outDir);
      await rm(old, { recursive: true, force: true });
      return { outDir, lowered, emission, bytesWritten, nativeCopiedBytes, nativeCastBytes, seconds: (performance.now() - t0) / 1000 };
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  } finally {
    await ckpt.close();
  }
}
