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
import { activationScale, kvScale } from "../../src/quant/calibration.ts";
import type { QuantSpec } from "../../src/quant/spec.ts";
import type { PlanTensor, RankFilePlan } from "../../src/weights/convert.ts";
import { constTensor, scaleTensor } from "../../src/weights/fp8-plan.ts";
import type { WeightMap } from "../../src/weights/weight-map.ts";
import type { TrtDtype } from "../trtllm-engine/pretrained-config.ts";

export const SAFETENSORS_DTYPE = { float32: "F32", float16: "F16", bfloat16: "BF16" } as const satisfies Record<TrtDtype, string>;

export function rankFilePlans(
  low: LoweredModel,
  shards: readonly WeightMap[],
  m: Mapping,
  dtype: TrtDtype,
  metadata: Record<string, string> = {},
  quant?: QuantSpec,
): RankFilePlan<PlanTensor>[] {
  const plans: RankFilePlan<PlanTensor>[] = [];
  const lastStage = postLayerParams(low.graph);
  const place = (name: string) => placeParam(name, low.numLayers, m.pp, lastStage);
  const fp8 = new Map(quant?.weight === "fp8" ? quant.linears.map((l) => [l.param, l]) : []);
  const routers = float32Params(low.graph);
  for (let pp = 0; pp < m.pp; pp++)
    for (let tp = 0; tp < m.tp; tp++) {
      const rank = rankOf(m, pp, tp);
      const tensors: PlanTensor[] = [];
      for (const p of low.graph.params) {
        const at = place(p.name);
        if (at.stage !== pp) continue;
        const expr = shards[tp]![p.name]!;
        const l = fp8.get(p.name);
        if (!l) {
          tensors.push({ name: at.localName, dtype: routers.has(p.name) ? "F32" : SAFETENSORS_DTYPE[dtype], expr });
          continue;
        }
        const module = place(l.module).localName;
        const group = place(l.scaleGroup).localName;
        tensors.push(
          { name: at.localName, dtype: "F8_E4M3", expr, scaleGroup: group },
          scaleTensor(`${module}.weights_scaling_factor`, group),
          constTensor(`${module}.activation_scaling_factor`, [activationScale(quant!.calibration!, l.module)]),
        );
      }
      for (const a of quant?.attentions ?? []) {
        const at = place(a);
        if (at.stage !== pp) continue;
        const last = tensors.map((t) => t.name.startsWith(`${at.localName}.`)).lastIndexOf(true);
        tensors.splice(last + 1, 0, constTensor(`${at.localName}.kv_cache_scaling_factor`, [kvScale(quant!.calibration!, a, quant!.kv!)]));
      }
      plans.push({ file: `rank${rank}.safetensors`, tensors, metadata: { ...metadata, rank: String(rank), tp_rank: String(tp), pp_rank: String(pp) } });
    }
  return plans;
}
