// What goes into each rank file: for rank r = pp_rank * tp + tp_rank, every parameter of pipeline stage pp_rank with
// its local layer index and tp rank tp_rank's expression, in the checkpoint dtype, except MoE routers, which
// TensorRT-LLM stores and runs in float32 whatever the model dtype (MixtureOfExperts.router is a float32 RowLinear
// with strict_dtype; its converters write it with torch.float32). Rank files list tensors in the lowered graph's
// parameter order, so outputs are deterministic.
// Quantization (src/quant/spec.ts): an FP8 Linear's weight is written as E4M3 codes followed by its
// weights_scaling_factor (computed by the converter over this rank's shard and the Linear's scale group,
// src/weights/fp8-plan.ts) and its calibrated activation_scaling_factor; with a quantized KV cache, each attention's
// kv_cache_scaling_factor follows that attention's own tensors. Weight-only schemes change nothing here: TensorRT-LLM
// quantizes the half-precision weights while loading.

import { placeParam, type Mapping, rankOf } from "../../src/lower/mapping.ts";
import { type LoweredModel, postLayerParams } from "../../src/lower/to-trtllm.ts";
import { float32Params } from "../../src/lower/trtllm-ops.ts";
import { inputScaleOf, kvScaleOf, type QuantSpec } from "../../src/quant/spec.ts";
import type { PlanTensor, RankFilePlan } from "../../src/weights/convert.ts";
import { bytesTensor, constTensor, scaleTensor } from "../../src/weights/fp8-plan.ts";
import { exprShape, formatExpr, type WeightExpr, type WeightMap } from "../../src/weights/weight-map.ts";
import { f32ToBf16, f32ToF16, roundToBf16, roundToF16 } from "../../src/weights/half.ts";
import { evalPlanes } from "../../src/quant/prequant.ts";
import type { Int4Planes } from "../../src/quant/spec.ts";
import type { QuantLinear } from "../../src/quant/linears.ts";
import { QuantError } from "../../src/numerics/quant-error.ts";
import { type Int4RankTensors, int4RankTensors } from "./int4-tensors.ts";
import type { TrtDtype } from "../trtllm-engine/pretrained-config.ts";

export const SAFETENSORS_DTYPE = { float32: "F32", float16: "F16", bfloat16: "BF16" } as const satisfies Record<TrtDtype, string>;

export function rankFilePlans(
  low: LoweredModel,
  shards: readonly WeightMap[],
  m: Mapping,
  dtype: TrtDtype,
  metadata: Record<string, string> = {},
  quant?: QuantSpec,
  /** Source tensor shapes (needed to size group-wise INT4 tensors). */
  shapeOf: (name: string) => readonly number[] | undefined = () => undefined,
): RankFilePlan<PlanTensor>[] {
  const plans: RankFilePlan<PlanTensor>[] = [];
  const lastStage = postLayerParams(low.graph);
  const place = (name: string) => placeParam(name, low.numLayers, m.pp, lastStage);
  const fp8 = new Map(quant?.weight === "fp8" ? quant.linears.map((l) => [l.param, l]) : []);
  const int4Linears = new Map(quant?.weight === "w4a16_awq" ? quant.linears.map((l) => [l.param, l]) : []);
  const routers = float32Params(low.graph);
  for (let pp = 0; pp < m.pp; pp++)
    for (let tp = 0; tp < m.tp; tp++) {
      const rank = rankOf(m, pp, tp);
      const tensors: PlanTensor[] = [];
      for (const p of low.graph.params) {
        const at = place(p.name);
        if (at.stage !== pp) continue;
        const expr = shards[tp]![p.name]!;
        const w4 = int4Linears.get(p.name);
        if (w4) {
          checkInt4Padding(w4, shards[tp]![p.name]!, quant!.prequant!.int4!.groupSize, m.tp, shapeOf);
          tensors.push(...int4PlanTensors(place(w4.module).localName, expr, quant!.prequant!.int4!, dtype, shapeOf));
          continue;
        }
        const l = fp8.get(p.name);
        if (!l) {
          tensors.push({ name: at.localName, dtype: routers.has(p.name) ? "F32" : SAFETENSORS_DTYPE[dtype], expr });
          continue;
        }
        const module = place(l.module).localName;
        const group = place(l.scaleGroup).localName;
        // Pre-quantized: the checkpoint's scale for the group (expr reads the dequantized source weights, so the
        // codes are the source's where its scale is the group's, and TensorRT-LLM's requantization elsewhere).
        const fixed = quant!.prequant?.weightScale.get(l.scaleGroup);
        const origin = quant!.prequant && `pre-quantized checkpoint (${quant!.prequant.source})`;
        tensors.push(
          { name: at.localName, dtype: "F8_E4M3", expr, scaleGroup: group, ...(fixed !== undefined && { scale: fixed }) },
          fixed === undefined ? scaleTensor(`${module}.weights_scaling_factor`, group) : constTensor(`${module}.weights_scaling_factor`, [fixed], origin),
          constTensor(`${module}.activation_scaling_factor`, [inputScaleOf(quant!, l.module)], origin),
        );
      }
      for (const a of quant?.attentions ?? []) {
        const at = place(a);
        if (at.stage !== pp) continue;
        const last = tensors.map((t) => t.name.startsWith(`${at.localName}.`)).lastIndexOf(true);
        tensors.splice(
          last + 1,
          0,
          constTensor(
            `${at.localName}.kv_cache_scaling_factor`,
            [kvScaleOf(quant!, a)],
            quant!.prequant && `pre-quantized checkpoint (${quant!.prequant.source})`,
          ),
        );
      }
      plans.push({ file: `rank${rank}.safetensors`, tensors, metadata: { ...metadata, rank: String(rank), tp_rank: String(tp), pp_rank: String(pp) } });
    }
  return plans;
}

const HALF_CAST: Readonly<Record<TrtDtype, { dtype: "F16" | "BF16" | "F32"; round: (x: number) => number; bytes: (v: Float32Array) => Uint8Array }>> = {
  float16: { dtype: "F16", round: roundToF16, bytes: (v) => new Uint8Array(f32ToF16(v).buffer) },
  bfloat16: { dtype: "BF16", round: roundToBf16, bytes: (v) => new Uint8Array(f32ToBf16(v).buffer) },
  float32: { dtype: "F32", round: Math.fround, bytes: (v) => new Uint8Array(Float32Array.from(v).buffer) },
};

/** One rank's group-wise INT4 Linear (int4-tensors.ts): packed codes, scales and zeros, computed when written. */
function int4PlanTensors(
  module: string,
  expr: WeightExpr,
  planes: Int4Planes,
  dtype: TrtDtype,
  shapeOf: (name: string) => readonly number[] | undefined,
): PlanTensor[] {
  const [out, inF] = exprShape(expr, shapeOf);
  const cast = HALF_CAST[dtype];
  const g = planes.groupSize;
  let made: Promise<Int4RankTensors> | undefined;
  const make = () =>
    (made ??= Promise.all([evalPlanes(expr, planes, "q"), evalPlanes(expr, planes, "s"), evalPlanes(expr, planes, "z")]).then(([q, s, z]) =>
      int4RankTensors(module, q, s, z, g, cast.round),
    ));
  const origin = `group-wise INT4 of ${formatExpr(expr)} (pre-quantized checkpoint, group size ${g})`;
  return [
    bytesTensor(`${module}.weight`, "I8", [out! / 2, inF!], `${origin}: codes - 8, two output rows per byte`, async () => {
      const t = await make();
      return new Uint8Array(t.weight.buffer, t.weight.byteOffset, t.weight.byteLength);
    }),
    bytesTensor(`${module}.weights_scaling_factor`, cast.dtype, [out!, inF! / g], `${origin}: scales [out, in/group]`, async () =>
      cast.bytes((await make()).scales),
    ),
    bytesTensor(`${module}.zero`, cast.dtype, [inF! / g, out!], `${origin}: (8 - zero point) * scale [in/group, out]`, async () => {
      const bytes = cast.bytes((await make()).zeros);
      made = undefined; // the last of the three: release the planes
      return bytes;
    }),
  ];
}

/**
 * WeightOnlyGroupwiseQuant(Row)Linear pads in and out features to multiples of max(64, group) * tp and then expects
 * padded tensors (quantization/layers.py @ 2340c776); Kiln writes unpadded ones, so such a Linear is refused.
 */
function checkInt4Padding(l: QuantLinear, rankExpr: WeightExpr, group: number, tp: number, shapeOf: (name: string) => readonly number[] | undefined): void {
  const [outLocal, inLocal] = exprShape(rankExpr, shapeOf) as [number, number];
  const rowParallel = l.role === "dense" || l.role === "proj";
  const [out, inF] = rowParallel ? [outLocal, inLocal * tp] : [outLocal * tp, inLocal];
  const multiple = Math.max(64, group) * tp;
  if (out % multiple || inF % multiple)
    throw new QuantError(
      `${l.module}: [out ${out}, in ${inF}] is not a multiple of ${multiple} (max(64, group size ${group}) x tp ${tp}); TensorRT-LLM 1.2.1 would pad this group-wise INT4 Linear and expect padded tensors, which Kiln does not write`,
    );
}
