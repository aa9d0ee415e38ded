// `kiln compile`: model file + Hugging Face checkpoint -> an output directory for one code-generation target
// (src/driver/targets.ts: the TensorRT-LLM engine checkpoint by default, the TensorRT-LLM PyTorch backend, or a Hugging
// Face remote-code model). Trace, check the weights against the checkpoint headers (every problem at once, before
// any heavy work), fuse, lower, emit through the target, and stream the weight files. Everything is written into a
// temporary directory next to the output and renamed into place at the end, so an interrupted run never leaves an
// output that looks complete; src/io/output-guard.ts decides, before any work, whether --out may be written at all.
// Quantization (engine target only): `quant` resolves against the lowered model with the DSL's `quantize: false`
// hints; FP8 weights and quantized KV caches need a calibration, which is run here on the CPU (built-in or given
// prompts) unless one is passed in. Without --dtype, a model with quantized weights compiles to the checkpoint's
// dtype when that is half precision, else float16.
// LoRA: `loraMerge` folds one adapter into the weights through an overlay of the checkpoint (src/lora/merge.ts);
// `loraRuntime` adds per-target adapter files (lora-outputs.ts). Both bind the adapters before anything is written.

import { existsSync } from "node:fs";
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { checkOutputDir, writeOutputDir } from "../io/output-guard.ts";
import type { ModelDefinition } from "../dsl/define-model.ts";
import { checkHintConsistency, effectiveHints } from "../passes/hints.ts";
import { checkMapping, type Mapping } from "../lower/mapping.ts";
import { inferSourceShapes } from "../weights/infer-shapes.ts";
import { lowerToTrtllm, type LoweredModel } from "../lower/to-trtllm.ts";
import { serializeGraph } from "../ir/serialize.ts";
import { BindError, bindProblems, graphParams } from "../weights/bind.ts";
import { openCheckpoint } from "../weights/checkpoint.ts";
import { writeCheckpointFiles } from "../weights/convert.ts";
import { ConfigError, readHFConfigJson } from "../weights/hf-config.ts";
import { hintExclusions } from "../quant/exclusions.ts";
import { QuantError } from "../numerics/quant-error.ts";
import { checkPrompts, DEFAULT_PROMPTS } from "../quant/prompts.ts";
import { calibrateModel, loadQuantizableModel, quantDtype } from "./quantized-model.ts";
import { openPrequant, refuseQuantFlags } from "./prequant-view.ts";
import { prequantOptions } from "../quant/prequant.ts";
import type { DequantSource } from "../weights/dequant-source.ts";
import { describePrequant } from "../weights/prequant-format.ts";
import { checkQuantDtype, isQuantized, needsCalibration, type QuantOptions, resolveQuant } from "../quant/spec.ts";
import { checkRelativePath, type Emission, type OutputDtype } from "../../codegen/common/target.ts";
import { DEFAULT_TARGET, onlyTargetsWith, TARGETS, type TargetName } from "./targets.ts";
import { type Instance, instantiate } from "./instantiate.ts";
import { optimize } from "./optimize.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import { mergedLoraRecord, mergeIntoCheckpoint } from "../lora/merge.ts";
import { recordInWeightsMap, runtimeLoraOutputs } from "./lora-outputs.ts";

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
  /** Files read besides the checkpoint (model file, calibration, prompts): --out may never hold them. */
  readonly inputs?: readonly string[];
  /** Replace an existing --out that Kiln did not write (output-guard.ts). */
  readonly force?: boolean;
  /** Write Inf/NaN weights instead of failing (src/weights/numerics.ts). */
  readonly allowNonFinite?: boolean;
  /** --lora DIR --lora-merge: a PEFT adapter folded into the written weights (src/lora/merge.ts). */
  readonly loraMerge?: LoraAdapter;
  /** --lora DIR[,DIR...]: adapters converted for TensorRT-LLM's runtime LoRA (task ids 1, 2, ... in this order). */
  readonly loraRuntime?: readonly LoraAdapter[];
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
  /** Per-tensor numerics findings: non-finite weights written (only with allowNonFinite) and cast underflows. */
  readonly numerics: { readonly nonFinite: readonly string[]; readonly underflow: readonly string[] };
}

/** config.json dtype strings (transformers writes torch dtype names without "torch."; a few aliases are common). */
const HF_DTYPES: Readonly<Record<string, OutputDtype>> = {
  float32: "float32",
  float: "float32",
  fp32: "float32",
  float16: "float16",
  half: "float16",
  fp16: "float16",
  bfloat16: "bfloat16",
  bf16: "bfloat16",
};

/** The checkpoint's dtype from config.json (float16 when it names none); an unknown string is an error, never a guess. */
export function defaultDtype(hf: Record<string, unknown>, configPath = "config.json"): OutputDtype {
  const field = hf.torch_dtype !== undefined ? "torch_dtype" : hf.dtype !== undefined ? "dtype" : undefined;
  if (!field || hf[field] === "auto") return "float16";
  const raw = hf[field];
  const name = typeof raw === "string" ? raw.replace(/^torch\./, "") : undefined;
  const dtype = name !== undefined && Object.hasOwn(HF_DTYPES, name) ? HF_DTYPES[name] : undefined;
  if (!dtype)
    throw new ConfigError(
      `${configPath}: ${field} ${JSON.stringify(raw)?.slice(0, 80)} is not a dtype Kiln knows (float32, float16, bfloat16); fix it or pass --dtype`,
    );
  return dtype;
}

export interface Prepared {
  readonly lowered: LoweredModel;
  readonly emission: Emission;
}

type ShapeOf = (name: string) => readonly number[] | undefined;

/** Everything but the bytes: trace, fuse, lower, emit through the target. `shapeOf` gives checkpoint tensor shapes. */
export function prepareCompile<C>(
  def: ModelDefinition<C>,
  hf: Record<string, unknown>,
  shapeOf: ShapeOf | "infer",
  o: Omit<CompileOptions, "hfDir" | "outDir" | "onProgress" | "calibrationPrompts"> & {
    configPath?: string;
    instance?: Instance<C>;
    /** A pre-quantized checkpoint's view: its scales become the quantization (src/quant/prequant.ts). */
    prequant?: DequantSource;
  },
): Prepared {
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
  const q = o.prequant ? prequantOptions(lowered, o.prequant) : o.quant && isQuantized(o.quant) ? o.quant : undefined;
  if (q && !TARGETS[target].capabilities.quantization) throw new QuantError(`--quant and --kv-cache apply to ${onlyTargetsWith("quantization")}`);
  const dtype = o.dtype ?? (q?.weight ? quantDtype(hf) : defaultDtype(hf, o.configPath));
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
  checkOutputDir(o.outDir, { flag: "--out", inputs: [o.hfDir, ...(o.inputs ?? [])], ...(o.force && { force: true }) });
  const hf = readHFConfigJson(o.hfDir) as Record<string, unknown>;
  const ckpt = await openCheckpoint(o.hfDir);
  try {
    const inst = instantiate(def, hf, `${o.hfDir}/config.json`);
    const pre = await openPrequant(o.hfDir, hf, ckpt);
    if (pre) refuseQuantFlags(o.hfDir, describePrequant(pre.format), o.quant);
    if (pre && (o.loraMerge || o.loraRuntime?.length))
      throw new QuantError(`${o.hfDir} is pre-quantized: LoRA adapters on pre-quantized checkpoints are not supported`);
    const plain = pre ?? ckpt;
    const problems = bindProblems(graphParams(inst.graph), inst.weights, plain);
    if (problems.length) throw new BindError(problems, o.hfDir);
    let quant = o.quant;
    if (!pre && quant && needsCalibration(quant) && !quant.calibration && TARGETS[o.target ?? DEFAULT_TARGET].capabilities.quantization) {
      const m = await loadQuantizableModel(def, o.hfDir);
      quant = {
        ...quant,
        calibration: calibrateModel(
          m,
          checkPrompts(o.calibrationPrompts ?? DEFAULT_PROMPTS, m.vocab, o.calibrationPrompts ? "--prompts" : "the built-in prompts"),
        ),
      };
    }
    const prepared = prepareCompile(def, hf, (n) => plain.info(n)?.shape, {
      ...o,
      ...(quant && { quant }),
      ...(pre && { prequant: pre }),
      configPath: `${o.hfDir}/config.json`,
      instance: inst,
    });
    const { lowered } = prepared;
    let { emission } = prepared;
    const outDir = checkOutputDir(o.outDir, {
      flag: "--out",
      inputs: [o.hfDir, ...(o.inputs ?? []), ...(o.loraMerge ? [o.loraMerge.dir] : []), ...(o.loraRuntime ?? []).map((a) => a.dir)],
      ...(o.force && { force: true }),
    });
    const written = await writeOutputDir(outDir, "compile", async (tmp) => {
      // The merged weights are an overlay file beside the staging directory, removed whatever happens.
      const overlay = `${tmp}.lora-merged.safetensors`;
      try {
        // Pre-quantized: the converter streams the dequantized weights and re-encodes them with the checkpoint's
        // scales (bit-identical codes where no fusion changes the scale).
        let source = pre ? pre.converterSource() : ckpt;
        if (o.loraMerge) {
          const merged = await mergeIntoCheckpoint(ckpt, inst.weights, o.loraMerge, overlay);
          source = merged.ckpt;
          emission = recordInWeightsMap(emission, mergedLoraRecord(o.loraMerge, merged.bound));
        }
        let writeLora = async (_dir: string) => {};
        if (o.loraRuntime?.length)
          ({ emission, write: writeLora } = runtimeLoraOutputs(o.target ?? DEFAULT_TARGET, emission, o.loraRuntime, inst.weights, ckpt, lowered, o.mapping));
        const counts = await writeCheckpointFiles(source, emission.plans, tmp, {
          ...(o.onProgress && { onProgress: o.onProgress }),
          ...(o.allowNonFinite && { allowNonFinite: true }),
        }).finally(() => source !== ckpt && source.close());
        await writeLora(tmp);
        for (const [name, text] of Object.entries(emission.files)) {
          await mkdir(dirname(join(tmp, name)), { recursive: true });
          await writeFile(join(tmp, name), text);
        }
        for (const name of emission.copyFromSource ?? []) if (existsSync(join(o.hfDir, name))) await copyFile(join(o.hfDir, name), join(tmp, name));
        await writeFile(join(tmp, "kiln.lowered.pb"), serializeGraph(emission.graph));
        return counts;
      } finally {
        await rm(overlay, { force: true });
      }
    });
    const { bytesWritten, nativeCopiedBytes, nativeCastBytes, numerics } = written;
    return { outDir, lowered, emission, bytesWritten, nativeCopiedBytes, nativeCastBytes, numerics, seconds: (performance.now() - t0) / 1000 };
  } finally {
    await ckpt.close();
  }
}
