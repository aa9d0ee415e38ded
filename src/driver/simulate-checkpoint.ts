// Runs an emitted TensorRT-LLM checkpoint directory on the CPU: reads config.json's mapping and every
// rank{r}.safetensors, checks that each rank file holds exactly its pipeline stage's parameters (local layer
// indices) and nothing else, gathers each parameter's per-tp-rank tensors, and simulates tensor parallelism with
// the lowered graph. This is the GPU-free proof that the emitted files compute the model.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Graph } from "../ir/graph.ts";
import { causalInputs } from "../interp/causal-lm.ts";
import type { RTensor } from "../interp/tensor.ts";
import { tensor } from "../interp/tensor.ts";
import { placeParam, rankOf, type Mapping } from "../lower/mapping.ts";
import { simulateTensorParallel } from "../lower/simulate.ts";
import { postLayerParams } from "../lower/to-trtllm.ts";
import { SafetensorsFile } from "../weights/safetensors.ts";

export class CheckpointLayoutError extends Error {}

export async function readMapping(ckptDir: string): Promise<Mapping & { numLayers: number }> {
  const cfg = JSON.parse(await readFile(join(ckptDir, "config.json"), "utf8"));
  return { tp: cfg.mapping.tp_size, pp: cfg.mapping.pp_size, numLayers: cfg.num_hidden_layers };
}

/** Global parameter name -> one tensor per tp rank, read from the rank files (layout checked). */
export async function loadRankWeights(ckptDir: string, g: Graph): Promise<{ weights: Map<string, RTensor[]>; mapping: Mapping }> {
  const m = await readMapping(ckptDir);
  const weights = new Map<string, RTensor[]>(g.params.map((p) => [p.name, []]));
  const lastStage = postLayerParams(g);
  for (let pp = 0; pp < m.pp; pp++)
    for (let tp = 0; tp < m.tp; tp++) {
      const file = join(ckptDir, `rank${rankOf(m, pp, tp)}.safetensors`);
      const f = await SafetensorsFile.open(file);
      try {
        const expected = g.params.map((p) => ({ global: p.name, ...placeParam(p.name, m.numLayers, m.pp, lastStage) })).filter((p) => p.stage === pp);
        const names = new Set(f.tensors().map((t) => t.name));
        const missing = expected.filter((p) => !names.has(p.localName)).map((p) => p.localName);
        const extra = [...names].filter((n) => !expected.some((p) => p.localName === n));
        if (missing.length || extra.length)
          throw new CheckpointLayoutError(
            `${file}: ${missing.length ? `missing ${missing.join(", ")}` : ""}${missing.length && extra.length ? "; " : ""}${extra.length ? `unexpected ${extra.join(", ")}` : ""}`,
          );
        for (const p of expected) weights.get(p.global)![tp] = tensor("f32", f.info(p.localName)!.shape, await f.readF32(p.localName));
      } finally {
        await f.close();
      }
    }
  return { weights, mapping: m };
}

/** All-position logits [T, vocab] of a prompt, computed from the emitted rank files. */
export async function simulateCheckpoint(ckptDir: string, g: Graph, prompts: readonly (readonly number[])[]): Promise<Float32Array[]> {
  const { weights, mapping } = await loadRankWeights(ckptDir, g);
  return prompts.map((ids) => simulateTensorParallel(g, causalInputs(ids), weights, mapping.tp).get("logits")!.data as Float32Array);
}
