// Calibration: running the unquantized lowered model (CPU simulator, src/lower/simulate.ts) over prompts and
// recording per-tensor absolute maxima of what FP8 and the KV cache quantize: the input of every quantizable Linear
// and K (after rotary) and V of every attention. Scales derive from these maxima (per-tensor.ts: amax / 448 for
// FP8, amax / 127 for an INT8 cache), so one calibration serves every scheme. Quantizers are off while observing,
// as ModelOpt's max calibration does.
// Invariants: maxima are global over tensor-parallel ranks (a rank's K heads or dense-input columns are a slice of
// the whole), so every rank gets the same activation and KV-cache scale; a non-finite activation is a QuantError
// naming the module; the JSON form round-trips exactly (maxima are float32 values, printed as shortest decimals).

import type { Graph } from "../ir/graph.ts";
import { causalInputs } from "../interp/causal-lm.ts";
import type { RTensor } from "../interp/tensor.ts";
import { simulateTensorParallel } from "../lower/simulate.ts";
import { attentionModules, quantizableLinears } from "./linears.ts";
import { AbsMaxObserver, fp8WeightScale, type KvCacheFormat, kvCacheScale } from "../numerics/per-tensor.ts";
import { QuantError } from "../numerics/quant-error.ts";

export const CALIBRATION_FORMAT = "kiln.calibration/1";

export interface Calibration {
  readonly format: typeof CALIBRATION_FORMAT;
  readonly model: string;
  readonly prompts: number;
  readonly tokens: number;
  /** Linear module path -> max |input|. */
  readonly inputs: Readonly<Record<string, number>>;
  /** Attention module path -> max |K| and max |V| as the KV cache stores them. */
  readonly kvCache: Readonly<Record<string, { readonly k: number; readonly v: number }>>;
}

/** Calibrates the lowered graph `g` over `prompts`; `weights` holds one tensor per tp rank (any tp). */
export function calibrate(g: Graph, weights: ReadonlyMap<string, RTensor[]>, tp: number, prompts: readonly (readonly number[])[], model: string): Calibration {
  const observers = new Map<string, AbsMaxObserver>();
  const observe = (key: string, t: RTensor) => {
    let o = observers.get(key);
    if (!o) observers.set(key, (o = new AbsMaxObserver(key)));
    o.update(t.data as Float32Array);
    return t;
  };
  for (const ids of prompts)
    simulateTensorParallel(g, causalInputs(ids), weights, tp, {
      linearInput: (m, x) => observe(m, x),
      kvCache: (m, which, t) => observe(`${m}#${which}`, t),
    });
  const amax = (key: string) => observers.get(key)?.amax ?? 0;
  return {
    format: CALIBRATION_FORMAT,
    model,
    prompts: prompts.length,
    tokens: prompts.reduce((a, p) => a + p.length, 0),
    inputs: Object.fromEntries(quantizableLinears(g).map((l) => [l.module, amax(l.module)])),
    kvCache: Object.fromEntries(attentionModules(g).map((a) => [a, { k: amax(`${a}#k`), v: amax(`${a}#v`) }])),
  };
}

/** FP8 `activation_scaling_factor` of a Linear: max |input| / 448. */
export const activationScale = (c: Calibration, module: string): number =>
  fp8WeightScale(c.inputs[module] ?? fail(`calibration has no input statistics for '${module}'`));

/** `kv_cache_scaling_factor` of an attention: one scale for K and V together (TensorRT-LLM merges them by max). */
export function kvScale(c: Calibration, module: string, format: KvCacheFormat): number {
  const kv = c.kvCache[module] ?? fail(`calibration has no KV-cache statistics for '${module}'`);
  return kvCacheScale(format, Math.max(kv.k, kv.v));
}

function fail(msg: string): never {
  throw new QuantError(msg);
}

export const formatCalibration = (c: Calibration): string => `${JSON.stringify(c, null, 2)}\n`;

const isAmax = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;

/** Parses and checks a calibration file (kiln calibrate's output). */
export function parseCalibration(text: string, file: string): Calibration {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    return fail(`${file}: not JSON: ${(e as Error).message}`);
  }
  if (j?.format !== CALIBRATION_FORMAT) fail(`${file}: not a Kiln calibration (format must be "${CALIBRATION_FORMAT}")`);
  const inputs = (j.inputs ?? {}) as Record<string, unknown>;
  const kv = (j.kvCache ?? {}) as Record<string, { k?: unknown; v?: unknown }>;
  for (const [m, a] of Object.entries(inputs)) if (!isAmax(a)) fail(`${file}: inputs."${m}" must be a finite number >= 0, got ${JSON.stringify(a)}`);
  for (const [m, a] of Object.entries(kv))
    if (!isAmax(a?.k) || !isAmax(a?.v)) fail(`${file}: kvCache."${m}" must be {"k": amax, "v": amax}, got ${JSON.stringify(a)}`);
  return j as unknown as Calibration;
}
