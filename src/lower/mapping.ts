// Tensor and pipeline parallel layout, with TensorRT-LLM's rules: rank r = pp_rank * tp + tp_rank; pipeline stages
// split layers like torch.tensor_split (the first L % pp stages get one extra layer); parameters of layer l are
// stored in their stage's rank files under local index l - first(stage). Mixture-of-experts layers split the tp
// group again (tensorrt_llm/mapping.py @ b35ac1b6, MappingBase): moe_tp x moe_ep = tp, one derived from the other
// when only one is given, moe_tp = tp and moe_ep = 1 when neither is.

import { ModelSizeError } from "../io/kiln-error.ts";

export interface Mapping {
  readonly tp: number;
  readonly pp: number;
  /** --moe-tp / --moe-ep as given (each optional); see moeSizes. */
  readonly moeTp?: number;
  readonly moeEp?: number;
}

/** moe_tp_size and moe_ep_size as TensorRT-LLM's Mapping derives them from what was given. */
export function moeSizes(m: Mapping): { readonly moeTp: number; readonly moeEp: number } {
  if (m.moeTp === undefined && m.moeEp === undefined) return { moeTp: m.tp, moeEp: 1 };
  const moeTp = m.moeTp ?? m.tp / m.moeEp!;
  const moeEp = m.moeEp ?? m.tp / m.moeTp!;
  return { moeTp, moeEp };
}

export const worldSize = (m: Mapping): number => m.tp * m.pp;
export const rankOf = (m: Mapping, ppRank: number, tpRank: number): number => ppRank * m.tp + tpRank;

/** [first, end) layer range of each pipeline stage. */
export function stageLayers(numLayers: number, pp: number): [number, number][] {
  const base = Math.floor(numLayers / pp);
  const extra = numLayers % pp;
  const out: [number, number][] = [];
  let at = 0;
  for (let s = 0; s < pp; s++) {
    const n = base + (s < extra ? 1 : 0);
    out.push([at, at + n]);
    at += n;
  }
  return out;
}

const LAYER_NAME = /^transformer\.layers\.(\d+)\.(.+)$/;

/**
 * Which stage holds a parameter, and its name inside that stage's rank files (local layer index). Model-level
 * parameters live on the first stage, except ln_f, lm_head and those in `lastStage` (read after the last layer).
 */
export function placeParam(name: string, numLayers: number, pp: number, lastStage: ReadonlySet<string> = new Set()): { stage: number; localName: string } {
  const stages = stageLayers(numLayers, pp);
  const m = LAYER_NAME.exec(name);
  if (m) {
    const layer = Number(m[1]);
    const stage = stages.findIndex(([a, b]) => layer >= a && layer < b);
    return { stage, localName: `transformer.layers.${layer - stages[stage]![0]}.${m[2]}` };
  }
  const last = name.startsWith("lm_head") || name.startsWith("transformer.ln_f") || lastStage.has(name);
  return { stage: last ? pp - 1 : 0, localName: name };
}

/** More ranks than any TensorRT-LLM deployment uses; bounds the per-rank work of planning and sharding. */
export const MAX_WORLD_SIZE = 65_536;

export function checkMapping(m: Mapping, numLayers: number): void {
  for (const [k, v] of Object.entries({ tp: m.tp, pp: m.pp }))
    if (!Number.isInteger(v) || v < 1) throw new ModelSizeError(`--${k} must be a positive integer, got ${v}`);
  if (m.tp * m.pp > MAX_WORLD_SIZE) throw new ModelSizeError(`--tp ${m.tp} x --pp ${m.pp} is ${m.tp * m.pp} GPUs; Kiln plans at most ${MAX_WORLD_SIZE}`);
  if (m.pp > numLayers) throw new ModelSizeError(`--pp ${m.pp} is more pipeline stages than the model's ${numLayers} layers`);
  for (const [k, v] of Object.entries({ "moe-tp": m.moeTp, "moe-ep": m.moeEp }))
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new ModelSizeError(`--${k} must be a positive integer, got ${v}`);
  const { moeTp, moeEp } = moeSizes(m);
  if (!Number.isInteger(moeTp) || !Number.isInteger(moeEp) || moeTp * moeEp !== m.tp)
    throw new ModelSizeError(
      `--moe-tp ${m.moeTp ?? "(derived)"} x --moe-ep ${m.moeEp ?? "(derived)"} must equal --tp ${m.tp} (TensorRT-LLM splits the tensor-parallel group into expert-parallel groups)`,
    );
}
