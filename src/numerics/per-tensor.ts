// Per-tensor scales for FP8 weights/activations and the INT8/FP8 KV cache, their fake-quantizers for the CPU
// interpreter, and an abs-max observer for calibration.
// Conventions (all scales are float32 "dequantization" scales: real = code * scale, so a checkpoint's
// `weights_scaling_factor`, `activation_scaling_factor` and `kv_cache_scaling_factor` hold them directly):
//   - scale = amax / qmax with qmax 448 (E4M3) or 127 (INT8 KV), as ModelOpt exports them.
//   - amax <= 2^-24 (an all-zero or denormal-only tensor) is treated as amax = 1, as ModelOpt's FP8 quantizer
//     does (`_fp8_eager`): the scale stays positive, so neither x / scale nor TensorRT-LLM's derived reciprocal
//     (`kv_cache_rcp_scaling_factor`) can become Inf or NaN, and a zero tensor still quantizes to zeros.
//   - A negative, NaN or infinite amax, and a NaN or ±Inf value in a weight or calibration batch, is a QuantError.
//   - FP8 fake-quant saturates to ±448 like ModelOpt; INT8 KV fake-quant rounds ties to even and saturates to
//     [-128, 127], like the attention kernels' `cvt.rni.sat.s8.f32` (TensorRT-LLM common/cudaTypeUtils.cuh,
//     cuda_cast<int8_t, float>), which also turns NaN into 0.

import { E4M3_MAX, f32ToE4M3, roundToE4M3 } from "./fp8-e4m3.ts";
import { QuantError } from "./quant-error.ts";
import { roundHalfEven } from "./rounding.ts";

export const INT8_KV_MAX = 127;
const MIN_AMAX = 2 ** -24;

/** The float32 scale amax / qmax, with the zero-amax guard described above. */
function scaleFromAmax(amax: number, qmax: number): number {
  if (!(amax >= 0) || !Number.isFinite(amax)) throw new QuantError(`amax ${amax} is not a finite non-negative number`);
  return Math.fround((amax <= MIN_AMAX ? 1 : amax) / qmax);
}

/** FP8 per-tensor scale (weights or activations): amax / 448. */
export const fp8WeightScale = (amax: number): number => scaleFromAmax(amax, E4M3_MAX);

export type KvCacheFormat = "int8" | "fp8";
const KV_QMAX: Record<KvCacheFormat, number> = { int8: INT8_KV_MAX, fp8: E4M3_MAX };

/** `kv_cache_scaling_factor` from the calibrated amax of K and V together: amax / 127 (int8) or / 448 (fp8). */
export const kvCacheScale = (format: KvCacheFormat, amax: number): number => scaleFromAmax(amax, KV_QMAX[format]);

/** max |x|; a NaN or ±Inf element is a QuantError naming the tensor and index. */
export function absMax(x: Float32Array, name = "tensor"): number {
  let amax = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!Number.isFinite(v)) throw new QuantError(`tensor "${name}": non-finite value ${v} at index ${i}`);
    amax = Math.max(amax, Math.abs(v));
  }
  return amax;
}

export interface Fp8Quantized {
  /** E4M3FN bit patterns, same shape as the input. */
  readonly q: Uint8Array;
  /** float32 dequantization scale (`weights_scaling_factor`). */
  readonly scale: number;
}

/** FP8 per-tensor weight quantization: scale = amax / 448, q = E4M3(w / scale). */
export function quantizeFp8PerTensor(w: Float32Array, name = "weight"): Fp8Quantized {
  const scale = fp8WeightScale(absMax(w, name));
  return { q: f32ToE4M3(w, scale), scale };
}

function checkFakeQuantArgs(x: Float32Array, scale: number, dst: Float32Array): void {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new QuantError(`scale ${scale} is not a positive finite number`);
  if (dst.length !== x.length) throw new QuantError(`destination length ${dst.length} differs from source length ${x.length}`);
}

/** E4M3(x / scale) * scale, saturating at ±448 * scale; NaN stays NaN. */
export function fakeQuantFp8(x: Float32Array, scale: number, dst: Float32Array = new Float32Array(x.length)): Float32Array {
  checkFakeQuantArgs(x, scale, dst);
  for (let i = 0; i < x.length; i++) dst[i] = roundToE4M3(x[i]! / scale) * scale;
  return dst;
}

/** INT8 per-tensor fake quantization (KV cache): clamp(roundHalfEven(x / scale), -128, 127) * scale; NaN -> 0. */
export function fakeQuantInt8PerTensor(x: Float32Array, scale: number, dst: Float32Array = new Float32Array(x.length)): Float32Array {
  checkFakeQuantArgs(x, scale, dst);
  for (let i = 0; i < x.length; i++) {
    const v = roundHalfEven(Math.fround(x[i]! / scale));
    dst[i] = Number.isNaN(v) ? 0 : Math.min(127, Math.max(-128, v)) * scale;
  }
  return dst;
}

/** Running max |x| over calibration batches. `count` is the number of values seen so far. */
export class AbsMaxObserver {
  readonly name: string;
  #amax = 0;
  #count = 0;
  #batches = 0;

  constructor(name = "activation") {
    this.name = name;
  }

  update(x: Float32Array): void {
    let batchMax = 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      if (!Number.isFinite(v)) {
        throw new QuantError(`calibration of "${this.name}": non-finite value ${v} at index ${i} of batch ${this.#batches}`);
      }
      batchMax = Math.max(batchMax, Math.abs(v));
    }
    this.#amax = Math.max(this.#amax, batchMax);
    this.#count += x.length;
    this.#batches++;
  }

  get amax(): number {
    return this.#amax;
  }

  get count(): number {
    return this.#count;
  }
}
