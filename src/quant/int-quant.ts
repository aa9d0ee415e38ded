// Symmetric per-output-channel weight quantization for TensorRT-LLM's weight-only schemes (W8A16, W4A16),
// mirroring its CPU quantizer `symmetric_quantize` in cpp/tensorrt_llm/kernels/cutlass_kernels/
// cutlass_preprocessors.cpp (reached from Python as torch.ops.trtllm.symmetric_quantize_last_axis_of_batched_matrix
// on the transposed weight, so "last axis" = output channel). Facts taken from that file:
//   - scale = max|w| / 2^(bits-1), i.e. amax / 128 for int8 and amax / 8 for int4 (NOT / 127 or / 7), in float32;
//   - q = round(w / scale) with C round() (ties AWAY from zero, unlike torch.round's ties-to-even),
//     then clamped to [-128, 127] / [-8, 7]; so +amax lands on 127 (or 7) and -amax on -128 (or -8);
//   - a zero channel gets scale 0 and q = 0 (no division by zero);
//   - int4 packs two values per byte along the last axis: element 2j in the LOW nibble, 2j+1 in the high nibble,
//     two's complement (q & 0xF); an odd tail leaves the high nibble 0.
// Kiln's layout here is the torch one, [out = rows, in = cols] row-major, one scale per row; the values equal
// TensorRT-LLM's on the transposed matrix. The CUTLASS preprocessing that follows (row permutation, interleave,
// +8/+128 bias) is arch-dependent and deliberately NOT reproduced: Kiln lets TensorRT-LLM quantize at load.
// Invariants: outputs never hold NaN; a NaN or ±Inf weight is a QuantError naming tensor and [row, col]
// (TensorRT-LLM would silently emit 127 or garbage for it).

import { QuantError } from "../numerics/quant-error.ts";
import { roundHalfAwayFromZero } from "../numerics/rounding.ts";

interface IntFormat {
  readonly bits: number;
  readonly qmin: number;
  readonly qmax: number;
}

const INT8: IntFormat = { bits: 8, qmin: -128, qmax: 127 };
const INT4: IntFormat = { bits: 4, qmin: -8, qmax: 7 };

export interface PerChannelQuantized {
  /** [rows, cols] row-major codes; int4 codes are unpacked, one per element, in [-8, 7]. */
  readonly q: Int8Array;
  /** One float32 scale per row (output channel); 0 for an all-zero row. */
  readonly scales: Float32Array;
}

export interface FakeQuantOptions {
  /** Tensor name for error messages. */
  readonly name?: string;
  /**
   * Rounds each scale to the dtype the checkpoint stores it in (TensorRT-LLM writes `per_channel_scale` in the
   * model dtype, e.g. a float16 rounding function), so the simulation dequantizes with the engine's scale.
   */
  readonly roundScale?: (scale: number) => number;
}

function checkShape(w: ArrayLike<number>, rows: number, cols: number, name: string): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || w.length !== rows * cols) {
    throw new QuantError(`tensor "${name}": ${w.length} values do not form a [${rows}, ${cols}] matrix`);
  }
}

function quantizePerChannel(fmt: IntFormat, w: Float32Array, rows: number, cols: number, name: string): PerChannelQuantized {
  checkShape(w, rows, cols, name);
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  const range = 2 ** (fmt.bits - 1);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let amax = 0;
    for (let c = 0; c < cols; c++) {
      const v = w[base + c]!;
      if (!Number.isFinite(v)) throw new QuantError(`tensor "${name}": non-finite weight ${v} at [${r}, ${c}]`);
      amax = Math.max(amax, Math.abs(v));
    }
    const scale = Math.fround(amax / range); // exact: division by a power of two
    scales[r] = scale;
    if (scale === 0) continue; // q stays 0
    for (let c = 0; c < cols; c++) {
      // fround mirrors TensorRT-LLM's float32 division before rounding.
      const x = roundHalfAwayFromZero(Math.fround(w[base + c]! / scale));
      q[base + c] = Math.min(fmt.qmax, Math.max(fmt.qmin, x));
    }
  }
  return { q, scales };
}

/** W8A16: per-row scale amax/128, codes in [-128, 127]. `w` is [rows = out, cols = in]. */
export const quantizeInt8PerChannel = (w: Float32Array, rows: number, cols: number, name = "weight"): PerChannelQuantized =>
  quantizePerChannel(INT8, w, rows, cols, name);

/** W4A16: per-row scale amax/8, codes in [-8, 7] (unpacked; see packInt4). `w` is [rows = out, cols = in]. */
export const quantizeInt4PerChannel = (w: Float32Array, rows: number, cols: number, name = "weight"): PerChannelQuantized =>
  quantizePerChannel(INT4, w, rows, cols, name);

/** q[r, c] * scales[r] in float32, optionally with each scale first rounded by `roundScale`. */
export function dequantizePerChannel(
  q: Int8Array,
  scales: Float32Array,
  rows: number,
  cols: number,
  roundScale: (scale: number) => number = (s) => s,
  dst: Float32Array = new Float32Array(rows * cols),
): Float32Array {
  checkShape(q, rows, cols, "codes");
  if (scales.length !== rows) throw new QuantError(`${scales.length} scales for ${rows} rows`);
  if (dst.length !== rows * cols) throw new QuantError(`destination length ${dst.length} is not ${rows * cols}`);
  for (let r = 0; r < rows; r++) {
    const s = roundScale(scales[r]!);
    for (let c = r * cols; c < (r + 1) * cols; c++) dst[c] = q[c]! * s;
  }
  return dst;
}

function fakeQuant(fmt: IntFormat, w: Float32Array, rows: number, cols: number, opts: FakeQuantOptions): Float32Array {
  const { q, scales } = quantizePerChannel(fmt, w, rows, cols, opts.name ?? "weight");
  return dequantizePerChannel(q, scales, rows, cols, opts.roundScale);
}

/** What a W8A16 engine computes with: quantize then dequantize, for the CPU interpreter. */
export const fakeQuantInt8PerChannel = (w: Float32Array, rows: number, cols: number, opts: FakeQuantOptions = {}): Float32Array =>
  fakeQuant(INT8, w, rows, cols, opts);

/** What a W4A16 engine computes with: quantize then dequantize, for the CPU interpreter. */
export const fakeQuantInt4PerChannel = (w: Float32Array, rows: number, cols: number, opts: FakeQuantOptions = {}): Float32Array =>
  fakeQuant(INT4, w, rows, cols, opts);

/** Two int4 codes per byte, element 2j in the low nibble (TensorRT-LLM's order). Odd tail: high nibble 0. */
export function packInt4(q: Int8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(q.length / 2));
  for (let i = 0; i < q.length; i++) {
    const v = q[i]!;
    if (v < INT4.qmin || v > INT4.qmax) throw new QuantError(`int4 code ${v} at index ${i} is outside [-8, 7]`);
    out[i >> 1]! |= (v & 0xf) << ((i & 1) * 4);
  }
  return out;
}

/** Inverse of packInt4: the first `count` sign-extended codes. */
export function unpackInt4(packed: Uint8Array, count: number): Int8Array {
  if (!Number.isInteger(count) || count < 0 || Math.ceil(count / 2) !== packed.length) {
    throw new QuantError(`${packed.length} packed bytes cannot hold exactly ${count} int4 codes`);
  }
  const out = new Int8Array(count);
  for (let i = 0; i < count; i++) {
    const nibble = (packed[i >> 1]! >> ((i & 1) * 4)) & 0xf;
    out[i] = nibble >= 8 ? nibble - 16 : nibble;
  }
  return out;
}
