// What goes into each rank file: for rank r = pp_rank * tp + tp_rank, every parameter of pipeline stage pp_rank with
// its local layer index and tp rank tp_rank's expression, in the checkpoint dtype. Rank files list tensors in the
// lowered graph's parameter order, so outputs are deterministic.

import { placeParam, type Mapping, rankOf } from "../../src/lower/mapping.ts";
import { type LoweredModel, postLayerParams } from "../../src/lower/to-trtllm.ts";
import type { RankFilePlan } from "../../src/weights/convert.ts";
import type { WeightMap } from "../../src/weights/weight-map.ts";
import type { TrtDtype } from "./pretrained-config.ts";

export const SAFETENSORS_DTYPE = { float32: "F32", float16: "F16", bfloat16: "BF16" } as const satisfies Record<TrtDtype, string>;

export function rankFilePlans(low: LoweredModel, shards: readonly WeightMap[], m: Mapping, dtype: TrtDtype, metadata: Record<string, string> = {}): RankFilePlan[] {
  const plans: RankFilePlan[] = [];
  const lastStage = postLayerParams(low.graph);
  for (let pp = 0; pp < m.pp; pp++)
    for (let tp = 0; tp < m.tp; tp++) {
      const rank = rankOf(m, pp, tp);
      const tensors = low.graph.params.flatMap((p) => {
        const place = placeParam(p.name, low.numLayers, m.pp, lastStage);
        return place.stage === pp ? [{ name: place.localName, dtype: SAFETENSORS_DTYPE[dtype], expr: shards[tp]![p.name]! }] : [];
      });
      plans.push({ file: `rank${rank}.safetensors`, tensors, metadata: { ...metadata, rank: String(rank), tp_rank: String(tp), pp_rank: String(pp) } });
    }
  return plans;
}
