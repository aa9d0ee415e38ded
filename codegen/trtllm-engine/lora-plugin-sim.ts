// TensorRT-LLM 1.2.1's runtime LoRA, simulated on the CPU from the files a runtime would be given: each adapter's
// model.lora_weights.npy / model.lora_config.npy are parsed with the module sizes the runtime derives from the
// engine config (cpp/tensorrt_llm/runtime/loraModule.cpp createLoraModules @ 2a9abd95), split per tensor-parallel
// rank as the LoRA cache does (cpp/tensorrt_llm/runtime/loraCache.cpp copyToPages @ c85e8726: column-parallel
// modules keep A whole and take their rank's rows of B, row-parallel ones take their rank's columns of A and keep
// B), and applied the way the LoRA plugin does: per request of the batch, its own adapter (or none, task -1),
// y += (x A_r^T) B_r^T on that rank's GEMM output before the all-reduce, q/k/v terms concatenated into the fused
// qkv output. Two GEMMs per module, never a merged weight, so a layout or split error shows in the numbers.

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { RTensor } from "../../src/interp/tensor.ts";
import { tensor } from "../../src/interp/tensor.ts";
import { LoraError } from "../../src/lora/adapter.ts";
import type { SimulationHooks } from "../../src/lower/simulate.ts";
import { decodeNpy } from "../../src/weights/npy.ts";
import { LAYER_MODULES, LORA_MODULE_IDS, type LoraModuleName, TP_SPLIT } from "../common/lora-runtime.ts";

/** The engine config fields the runtime sizes LoRA modules from (config.json of the compiled checkpoint). */
export interface LoraModelDims {
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headSize: number;
  readonly mlpHidden: number;
}

export function loraModelDims(configJson: Record<string, any>): LoraModelDims {
  const hidden = configJson.hidden_size as number;
  const heads = configJson.num_attention_heads as number;
  return {
    hidden,
    heads,
    kvHeads: configJson.num_key_value_heads ?? heads,
    headSize: configJson.head_size ?? hidden / heads,
    mlpHidden: configJson.intermediate_size ?? 4 * hidden,
  };
}

/** [in, out] of each module, as createLoraModules computes them. */
export function moduleDims(d: LoraModelDims): Record<LoraModuleName, readonly [number, number]> {
  const q = d.heads * d.headSize;
  const kv = d.kvHeads * d.headSize;
  return {
    attn_qkv: [d.hidden, q + 2 * kv],
    attn_q: [d.hidden, q],
    attn_k: [d.hidden, kv],
    attn_v: [d.hidden, kv],
    attn_dense: [q, d.hidden],
    mlp_h_to_4h: [d.hidden, d.mlpHidden],
    mlp_gate: [d.hidden, d.mlpHidden],
    mlp_4h_to_h: [d.mlpHidden, d.hidden],
  };
}

export interface PluginRow {
  readonly module: LoraModuleName;
  readonly layer: number;
  readonly rank: number;
  /** [r, in] */
  readonly A: Float32Array;
  /** [out, r] */
  readonly B: Float32Array;
}

const MODULE_BY_ID = new Map<number, LoraModuleName>(Object.entries(LORA_MODULE_IDS).map(([k, v]) => [v as number, k as LoraModuleName]));

/** Parses one adapter's runtime tensors ([1, rows, width] weights, [1, rows, 3] config). */
export async function readRuntimeLora(dir: string, d: LoraModelDims): Promise<PluginRow[]> {
  const w = decodeNpy(await readFile(join(dir, "model.lora_weights.npy")), `${dir}/model.lora_weights.npy`);
  const c = decodeNpy(await readFile(join(dir, "model.lora_config.npy")), `${dir}/model.lora_config.npy`);
  const [, rows, width] = w.shape as [number, number, number];
  if (c.shape[1] !== rows || c.shape[2]! < 3) throw new LoraError(`${dir}: lora_config is [${c.shape}] for ${rows} weight rows`);
  const dims = moduleDims(d);
  return Array.from({ length: rows }, (_, i) => {
    const [id, layer, rank] = [c.data[i * c.shape[2]!]!, c.data[i * c.shape[2]! + 1]!, c.data[i * c.shape[2]! + 2]!];
    const module = MODULE_BY_ID.get(id);
    if (!module) throw new LoraError(`${dir}: lora_config row ${i} has module id ${id}, not one Kiln simulates`);
    const [inDim, outDim] = dims[module];
    if (rank * (inDim + outDim) > width)
      throw new LoraError(`${dir}: row ${i} (${module}, layer ${layer}, rank ${rank}) needs ${rank * (inDim + outDim)} values, rows hold ${width}`);
    const row = w.data.subarray(i * width, (i + 1) * width) as Float32Array;
    return { module, layer, rank, A: row.slice(0, rank * inDim), B: row.slice(rank * inDim, rank * (inDim + outDim)) };
  });
}

const LINEAR = /^transformer\.layers\.(\d+)\.(attention\.qkv|attention\.dense|mlp\.fc|mlp\.gate|mlp\.proj)$/;

/** Adds (x A^T) B^T for batch row b into y[b, :, offset:offset+outLocal], with this rank's split of A and B. */
function addLowRank(
  x: RTensor,
  y: Float32Array,
  yWidth: number,
  b: number,
  row: PluginRow,
  inDim: number,
  outDim: number,
  tp: number,
  rank: number,
  offset: number,
): number {
  const r = row.rank;
  const split = TP_SPLIT[row.module];
  const inLocal = split === "in" ? inDim / tp : inDim;
  const outLocal = split === "out" ? outDim / tp : outDim;
  const inStart = split === "in" ? rank * inLocal : 0;
  const outStart = split === "out" ? rank * outLocal : 0;
  const [, s, xw] = x.shape as [number, number, number];
  if (xw !== inLocal)
    throw new LoraError(`LoRA ${row.module} layer ${row.layer}: the GEMM input is ${xw} wide on tp rank ${rank}, the module's local in size is ${inLocal}`);
  const u = new Float32Array(r);
  for (let t = 0; t < s; t++) {
    const xo = (b * s + t) * xw;
    for (let k = 0; k < r; k++) {
      let acc = 0;
      for (let i = 0; i < inLocal; i++) acc += x.data[xo + i]! * row.A[k * inDim + inStart + i]!;
      u[k] = acc;
    }
    const yo = (b * s + t) * yWidth + offset;
    for (let o = 0; o < outLocal; o++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += u[k]! * row.B[(outStart + o) * r + k]!;
      y[yo + o]! += acc;
    }
  }
  return outLocal;
}

/**
 * Hooks that apply runtime LoRA per request: `tasks` maps a task id to its adapter's rows, `requestTasks[b]` is the
 * task of batch row b (-1: none).
 */
export function loraPluginHooks(
  tasks: ReadonlyMap<number, readonly PluginRow[]>,
  requestTasks: readonly number[],
  d: LoraModelDims,
  tp: number,
): SimulationHooks {
  const dims = moduleDims(d);
  for (const t of requestTasks) if (t !== -1 && !tasks.has(t)) throw new LoraError(`request asks for LoRA task ${t}, which is not loaded`);
  return {
    linearOutput: (module, x, y, rank) => {
      const m = LINEAR.exec(module);
      if (!m) return y;
      const layer = Number(m[1]);
      if (y.shape[0] !== requestTasks.length) throw new LoraError(`batch of ${y.shape[0]} requests, ${requestTasks.length} LoRA task ids`);
      const out = Float32Array.from(y.data);
      const width = y.shape.at(-1)!;
      requestTasks.forEach((task, b) => {
        if (task === -1) return;
        let offset = 0;
        for (const name of LAYER_MODULES[m[2]!]!) {
          const [inDim, outDim] = dims[name];
          const row = tasks.get(task)!.find((r) => r.module === name && r.layer === layer);
          const outLocal = TP_SPLIT[name] === "out" ? outDim / tp : outDim;
          if (row) addLowRank(x, out, width, b, row, inDim, outDim, tp, rank, offset);
          offset += outLocal;
        }
      });
      return tensor(y.dtype, y.shape, out);
    },
  };
}
