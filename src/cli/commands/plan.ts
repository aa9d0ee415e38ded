// `kiln plan <model.ts> --hf DIR|--config FILE [--dtype] [--quant] [--kv-cache] [--tp] [--pp] [--gpu NAME|MEM]
// [--max-batch N] [--max-seq N] [--json]`: how the compiled model fits on GPUs — weights per GPU, activation estimate,
// KV cache bytes per token, and the paged KV cache tokens TensorRT-LLM allocates (src/memory-plan/plan.ts). When it does
// not fit, says why and the smallest tensor-parallel size that does.

import type { TrtDtype } from "../../../codegen/trtllm-engine/pretrained-config.ts";
import { defaultDtype } from "../../driver/compile.ts";
import { chooseModel } from "../../driver/zoo.ts";
import { formatPlan } from "../../memory-plan/format.ts";
import { GPUS, parseGpu } from "../../memory-plan/gpus.ts";
import { planMemory } from "../../memory-plan/plan.ts";
import { parseKvCacheQuant, parseWeightQuant } from "../../quant/schemes.ts";
import { loadModelStages } from "../../views/model-stages.ts";
import { quantDtype } from "../../driver/quantized-model.ts";
import { moeSizes } from "../../lower/mapping.ts";
import { lowerMoeToTrtllm } from "../../lower/moe-lowering.ts";
import { describePrequant, detectPrequant } from "../../weights/prequant-format.ts";
import { parseCount, parseMapping } from "../args.ts";
import { UsageError } from "../errors.ts";
import { modelSource } from "./model-source.ts";

export interface PlanFlags {
  readonly hf?: string;
  readonly config?: string;
  readonly dtype?: string;
  readonly quant?: string;
  readonly kvCache?: string;
  readonly tp: string;
  readonly pp: string;
  readonly moeTp?: string;
  readonly moeEp?: string;
  readonly gpu: string;
  readonly maxBatch: string;
  readonly maxSeq?: string;
  readonly json?: boolean;
  readonly typecheck: boolean;
}

const DTYPES: readonly TrtDtype[] = ["float32", "float16", "bfloat16"];
const DEFAULT_MAX_SEQ = 2048;

export async function planCommand(spec: string | undefined, flags: PlanFlags, out: (s: string) => void): Promise<void> {
  if (flags.dtype !== undefined && !(DTYPES as readonly string[]).includes(flags.dtype))
    throw new UsageError(`--dtype: expected one of ${DTYPES.join(", ")}, got '${flags.dtype}'`);
  const gpu = parseGpu(flags.gpu);
  if (!gpu) throw new UsageError(`--gpu: expected one of ${Object.keys(GPUS).join(", ")} or a memory size such as 24GiB, got '${flags.gpu}'`);
  const quant = flags.quant === undefined ? undefined : parseWeightQuant(flags.quant);
  const kvCache = flags.kvCache === undefined ? undefined : parseKvCacheQuant(flags.kvCache);
  const mapping = parseMapping(flags);
  const { tp, pp } = mapping;
  const { moeEp } = moeSizes(mapping);
  if (!Number.isInteger(moeEp) || moeSizes(mapping).moeTp * moeEp !== tp)
    throw new UsageError(`--moe-tp x --moe-ep must equal --tp ${tp}, got --moe-tp ${flags.moeTp ?? "(derived)"} --moe-ep ${flags.moeEp ?? "(derived)"}`);
  const maxBatch = parseCount(flags.maxBatch, "--max-batch", 1);
  const source = modelSource(flags);
  const { def } = await chooseModel(spec, flags, { typecheck: flags.typecheck });
  const stages = await loadModelStages(def, source);
  const hfMaxSeq = (stages.hf.max_position_embeddings ?? stages.hf.n_positions) as number | undefined;
  const maxSeq = flags.maxSeq === undefined ? (hfMaxSeq ?? DEFAULT_MAX_SEQ) : parseCount(flags.maxSeq, "--max-seq", 1);
  // A pre-quantized checkpoint is planned with its own format: FP8 codes + scales, or INT4 + per-group scales/zeros.
  const pre = "hfDir" in source ? detectPrequant(source.hfDir, stages.hf) : undefined;
  if (pre && (quant || kvCache))
    throw new UsageError(`${(source as { hfDir: string }).hfDir} is already quantized (${describePrequant(pre)}): drop --quant and --kv-cache`);
  const preQuant =
    pre &&
    (pre.kind === "fp8"
      ? { quant: "fp8" as const, ...(pre.kvCache && { kvCache: "fp8" as const }) }
      : { quant: "w4a16_awq" as const, groupSize: pre.groupSize });
  const dtype = (flags.dtype as TrtDtype | undefined) ?? (pre ? quantDtype(stages.hf) : defaultDtype(stages.hf));
  // The engine's layout: mixture-of-experts blocks as TensorRT-LLM's MOE (stacked experts, float32 router).
  const plan = planMemory(lowerMoeToTrtllm(stages.lowered(), stages.shapeOf), {
    dtype,
    tp,
    pp,
    gpu,
    maxBatch,
    maxSeq,
    moeEp,
    ...(quant && { quant }),
    ...(kvCache && { kvCache }),
    ...preQuant,
  });
  if (flags.json) return out(`${JSON.stringify({ model: def.name, ...plan })}\n`);
  out(formatPlan(plan, def.name));
}
