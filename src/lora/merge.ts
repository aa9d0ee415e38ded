// `--lora-merge`: one adapter folded into the weights a compile writes (zero runtime cost). The merged source
// tensors (W + s B A, float32, src/lora/bind.ts) go into an overlay safetensors file that the checkpoint serves in
// place of the originals, so the converter, its weight plans and tensor-parallel slicing run unchanged and the
// delta is split across ranks exactly like the weight. The overlay lives beside the output, never inside it.
// weights.map.json records what was merged (adapter, modules, rank, alpha, scale, the source tensors changed).

import type { Checkpoint } from "../weights/checkpoint.ts";
import { SafetensorsFile, writeSafetensors } from "../weights/safetensors.ts";
import type { WeightMapSpec } from "../weights/weight-map.ts";
import type { LoraAdapter } from "./adapter.ts";
import { bindAdapter, type BoundModule, mergedWeights } from "./bind.ts";

export interface MergedCheckpoint {
  /** Serves the merged tensors; closing it closes the base checkpoint's files and the overlay. */
  readonly ckpt: Checkpoint;
  readonly bound: readonly BoundModule[];
}

export async function mergeIntoCheckpoint(ckpt: Checkpoint, spec: WeightMapSpec, adapter: LoraAdapter, overlayPath: string): Promise<MergedCheckpoint> {
  const bound = bindAdapter(adapter, spec, ckpt);
  const merged = await mergedWeights(bound, (n) => ckpt.readF32(n));
  await writeSafetensors(
    overlayPath,
    [...merged].map(([name, d]) => ({ name, dtype: "F32" as const, shape: [...d.shape], data: d.data })),
  );
  return { ckpt: ckpt.withOverlay(await SafetensorsFile.open(overlayPath)), bound };
}

/** weights.map.json's "lora" entry: which source tensors hold W + scale * B @ A, and from what. */
export function mergedLoraRecord(adapter: LoraAdapter, bound: readonly BoundModule[]) {
  return {
    mode: "merged",
    adapter: adapter.dir,
    formula: `source = W + scale * (B @ A)${adapter.fanInFanOut ? "^T (fan_in_fan_out)" : ""}`,
    use_rslora: adapter.config.use_rslora,
    modules: bound.map((m) => ({ module: m.module, source: m.source, rank: m.rank, alpha: m.alpha, scale: m.scale, params: m.params })),
  };
}
