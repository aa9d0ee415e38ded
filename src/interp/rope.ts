// Rotary embedding frequencies and application, computed the way Hugging Face does it in float32 (each step is
// rounded to float32 with Math.fround), so the interpreter reproduces HF's cos/sin tables bit for bit where the
// libm agrees. Scaling rules follow transformers' modeling_rope_utils.py @ 5.17: "linear" (positions divided by
// factor), "llama3" (band-wise frequency rescaling of Llama 3.1), "dynamic" (NTK: the base grows with the call's
// sequence length past max_position_embeddings), "yarn" (interpolation/extrapolation ramp, cos/sin scaled by the
// attention factor) and "longrope" (per-frequency divisors, long ones past original_max_position_embeddings, cos/sin
// scaled). "dynamic" and "longrope" depend on the call's sequence length, max(position) + 1 over the batch, as
// transformers' dynamic_rope_update decides it for a full forward.

import type { JsonValue } from "../ir/attrs.ts";
import type { KilnRopeScaling } from "../weights/hf-config.ts";

const f = Math.fround;

export type RopeScaling = KilnRopeScaling;

const TYPES = new Set(["linear", "llama3", "dynamic", "yarn", "longrope"]);

export function parseRopeScaling(v: JsonValue): RopeScaling | undefined {
  if (v === null) return undefined;
  const o = v as Record<string, JsonValue>;
  if (!TYPES.has(o.type as string)) throw new Error(`unsupported rope scaling ${JSON.stringify(v)}`);
  return o as unknown as RopeScaling;
}

/** Whether the frequencies depend on the call's sequence length (then a KV cache cannot reuse rotated keys). */
export const ropeDependsOnLength = (s: RopeScaling | undefined): boolean => s?.type === "dynamic" || s?.type === "longrope";

/** The factor transformers multiplies cos and sin by (attention_scaling); 1 for most types. */
export const ropeAttentionFactor = (s: RopeScaling | undefined): number => (s?.type === "yarn" || s?.type === "longrope" ? s.attentionFactor : 1);

/** float32 base ** (2i / dim) for i < dim / 2 (torch.arange(0, dim, 2).float() / dim, then a float32 power). */
const powers = (rotaryDim: number, theta: number) => Float32Array.from({ length: rotaryDim / 2 }, (_, i) => f(theta ** f((2 * i) / rotaryDim)));

export function ropeInvFreq(rotaryDim: number, theta: number, scaling?: RopeScaling, seqLen = 0): Float32Array {
  const half = rotaryDim / 2;
  if (scaling?.type === "dynamic") {
    // _compute_dynamic_ntk_parameters: seq_len = max(seq_len, max_position_embeddings); the base, a float32 tensor
    // when seq_len is one, is base * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2)).
    const L = Math.max(seqLen, scaling.maxPositions);
    const grown = f(theta * f(f(f(f(scaling.factor * L) / scaling.maxPositions) - (scaling.factor - 1)) ** (rotaryDim / (rotaryDim - 2))));
    return powers(rotaryDim, grown).map((p) => f(1 / p));
  }
  if (scaling?.type === "longrope") {
    const ext = seqLen > scaling.originalMaxPositionEmbeddings ? scaling.longFactor : scaling.shortFactor;
    if (ext.length !== half) throw new Error(`longrope has ${ext.length} factors for ${half} rotary frequencies`);
    return powers(rotaryDim, theta).map((p, i) => f(1 / f(f(ext[i]!) * p)));
  }
  if (scaling?.type === "yarn") {
    // _compute_yarn_parameters: find_correction_range over the rotary dim, a linear ramp over dim // 2 frequencies.
    const { factor, betaFast, betaSlow, originalMaxPositionEmbeddings: orig, truncate } = scaling;
    const corr = (rot: number) => (rotaryDim * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
    let [low, high] = [corr(betaFast), corr(betaSlow)];
    if (truncate) [low, high] = [Math.floor(low), Math.ceil(high)];
    [low, high] = [Math.max(low, 0), Math.min(high, rotaryDim - 1)];
    if (low === high) high += 0.001;
    return powers(rotaryDim, theta).map((p, i) => {
      const ramp = f(Math.min(1, Math.max(0, f(f(i - low) / f(high - low)))));
      const extrapolation = f(1 - ramp);
      return f(f(f(1 / f(factor * p)) * f(1 - extrapolation)) + f(f(1 / p) * extrapolation));
    });
  }
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(theta ** f((2 * i) / rotaryDim)));
  if (!scaling) return inv;
  if (scaling.type === "linear") return inv.map((x) => f(x / scaling.factor));
  const { factor, lowFreqFactor = 1, highFreqFactor = 4, originalMaxPositionEmbeddings = 8192 } = scaling;
  const lowWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
  const highWavelen = originalMaxPositionEmbeddings / highFreqFactor;
  return inv.map((x) => {
    const wavelen = f((2 * Math.PI) / x);
    if (wavelen < highWavelen) return x;
    if (wavelen > lowWavelen) return f(x / factor);
    const smooth = f((f(originalMaxPositionEmbeddings / wavelen) - lowFreqFactor) / (highFreqFactor - lowFreqFactor));
    return f(f(f(1 - smooth) * f(x / factor)) + f(smooth * x));
  });
}

/**
 * Rotates x [batch, seq, heads, headDim] in place on its first rotaryDim channels.
 * neox: channel i pairs with i + rotaryDim/2; gptj: channel 2i pairs with 2i+1. Both use frequency i.
 */
export function applyRope(
  x: Float32Array,
  shape: readonly number[],
  positions: Int32Array,
  posBatch: number,
  style: "neox" | "gptj",
  rotaryDim: number,
  invFreq: Float32Array,
  /** cos and sin are multiplied by this (transformers' attention_scaling: yarn, longrope). */
  attentionFactor = 1,
): void {
  const [b, s, h, d] = shape as [number, number, number, number];
  const half = rotaryDim / 2;
  const cos = new Float32Array(half);
  const sin = new Float32Array(half);
  for (let bi = 0; bi < b; bi++)
    for (let si = 0; si < s; si++) {
      const pos = positions[(posBatch === 1 ? 0 : bi) * s + si]!;
      for (let i = 0; i < half; i++) {
        const angle = f(pos * invFreq[i]!);
        cos[i] = f(f(Math.cos(angle)) * attentionFactor);
        sin[i] = f(f(Math.sin(angle)) * attentionFactor);
      }
      for (let hi = 0; hi < h; hi++) {
        const base = ((bi * s + si) * h + hi) * d;
        for (let i = 0; i < half; i++) {
          const [p, q] = style === "neox" ? [base + i, base + i + half] : [base + 2 * i, base + 2 * i + 1];
          const a = x[p]!;
          const c = x[q]!;
          x[p] = a * cos[i]! - c * sin[i]!;
          x[q] = c * cos[i]! + a * sin[i]!;
        }
      }
    }
}
