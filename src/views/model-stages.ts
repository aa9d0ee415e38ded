// A model at each compiler stage, for the commands that look at a model rather than compile it (graph, plan,
// inspect): traced (the DSL as written), fused (after the pass pipeline) and trtllm (lowered to TensorRT-LLM layers,
// node scopes = TensorRT-LLM module paths). Sized either by a Hugging Face directory (config.json + checkpoint headers
// give the source tensor shapes) or by a bare config.json (source shapes inferred from the weight map), so models
// too large to download can still be viewed and planned. Stages are computed lazily and at most once.

import { checkInputFile } from "../io/input-file.ts";
import { existsSync, readFileSync } from "node:fs";
import type { ModelDefinition } from "../dsl/define-model.ts";
import type { Graph } from "../ir/graph.ts";
import { lowerToTrtllm, type LoweredModel } from "../lower/to-trtllm.ts";
import { instantiate, type Instance } from "../driver/instantiate.ts";
import { type Optimized, optimize } from "../driver/optimize.ts";
import { BindError } from "../weights/bind.ts";
import { openCheckpoint } from "../weights/checkpoint.ts";
import { openPrequant } from "../driver/prequant-view.ts";
import { ConfigError, readHFConfigJson } from "../weights/hf-config.ts";
import { inferSourceShapes } from "../weights/infer-shapes.ts";
import { type Dense, evalExpr, exprSources, type WeightMap } from "../weights/weight-map.ts";

export const STAGES = ["traced", "fused", "trtllm"] as const;
export type Stage = (typeof STAGES)[number];

export type ShapeOf = (name: string) => readonly number[] | undefined;

/** Where the model's size comes from: a Hugging Face directory, or just its config.json. */
export type ModelSource = { readonly hfDir: string } | { readonly configFile: string };

export interface ModelStages {
  readonly def: ModelDefinition;
  /** The Hugging Face config.json as read. */
  readonly hf: Record<string, unknown>;
  readonly inst: Instance;
  /** Shapes of the checkpoint's source tensors (from its headers, or inferred from the weight map). */
  readonly shapeOf: ShapeOf;
  fused(): Optimized;
  lowered(): LoweredModel;
  graph(stage: Stage): Graph;
  /** Weight expressions of a stage's parameters, over the checkpoint's tensor names. */
  weightMap(stage: Stage): WeightMap;
}

function readConfigFile(file: string): Record<string, unknown> {
  if (existsSync(file)) checkInputFile(file, "the config (--config)");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${file}: cannot read the config (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

async function checkpointShapes(hfDir: string, hf: Record<string, unknown>): Promise<Map<string, readonly number[]>> {
  const ckpt = await openCheckpoint(hfDir);
  try {
    // A pre-quantized checkpoint is seen through its dequantized view (float `<linear>.weight` shapes).
    const source = (await openPrequant(hfDir, hf, ckpt)) ?? ckpt;
    return new Map(source.names().map((n) => [n, source.info(n)!.shape]));
  } finally {
    await ckpt.close();
  }
}

function inferredShapes(inst: Instance): Map<string, readonly number[]> {
  const paramShapes = new Map(inst.graph.params.map((p) => [p.name, inst.graph.values.get(p.value)!.shape as number[]]));
  return inferSourceShapes(inst.weights.map, paramShapes);
}

export async function loadModelStages(def: ModelDefinition, source: ModelSource): Promise<ModelStages> {
  const hfDir = "hfDir" in source ? source.hfDir : undefined;
  const hf = hfDir !== undefined ? (readHFConfigJson(hfDir) as Record<string, unknown>) : readConfigFile((source as { configFile: string }).configFile);
  const inst = instantiate(def, hf, hfDir !== undefined ? `${hfDir}/config.json` : (source as { configFile: string }).configFile);
  const shapes = hfDir !== undefined ? await checkpointShapes(hfDir, hf) : inferredShapes(inst);
  const shapeOf: ShapeOf = (n) => shapes.get(n);
  let fused: Optimized | undefined;
  let lowered: LoweredModel | undefined;
  const stages: ModelStages = {
    def,
    hf,
    inst,
    shapeOf,
    fused: () => (fused ??= optimize(inst)),
    lowered: () => {
      const f = stages.fused();
      return (lowered ??= lowerToTrtllm(f.graph, f.weights.map, shapeOf));
    },
    graph: (stage) => (stage === "traced" ? inst.graph : stage === "fused" ? stages.fused().graph : stages.lowered().graph),
    weightMap: (stage) => (stage === "traced" ? inst.weights.map : stage === "fused" ? stages.fused().weights.map : stages.lowered().weights),
  };
  return stages;
}

/** Every parameter of a stage as float32, evaluated from the checkpoint in `hfDir` (small models: all in memory). */
export async function loadStageWeights(stages: ModelStages, stage: Stage, hfDir: string): Promise<Map<string, Dense>> {
  const map = stages.weightMap(stage);
  const ckpt = await openCheckpoint(hfDir);
  try {
    const source = (await openPrequant(hfDir, stages.hf, ckpt)) ?? ckpt;
    const cache = new Map<string, Dense>();
    for (const e of Object.values(map))
      for (const s of exprSources(e)) {
        if (cache.has(s)) continue;
        const info = source.info(s);
        if (!info) throw new BindError([`checkpoint has no tensor '${s}'`], hfDir);
        cache.set(s, { shape: info.shape, data: await source.readF32(s) });
      }
    return new Map(stages.graph(stage).params.map((p) => [p.name, evalExpr(map[p.name]!, (s) => cache.get(s)!)]));
  } finally {
    await ckpt.close();
  }
}
