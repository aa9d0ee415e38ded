// Rotary embedding frequencies and application, computed the way Hugging Face does it in float32 (each step is
// rounded to float32 with Math.fround), so the interpreter reproduces HF's cos/sin tables bit for bit where the
// libm agrees. Scaling rules: none, "linear" (positions divided by factor) and "llama3" (band-wise frequency
// rescaling of Llama 3.1).

import type { JsonValue } from "../ir/attrs.ts";

const f = Math.fround;

export interface RopeScaling {
  readonly type: "linear" | "llama3";
  readonly factor: number;
  readonly lowFreqFactor?: number;
  readonly highFreqFactor?: number;
  readonly originalMaxPositionEmbeddings?: number;
}

export function parseRopeScaling(v: JsonValue): RopeScaling | undefined {
  if (v === null) return undefined;
  const o = v as Record<string, JsonValue>;
  if (o.type !== "linear" && o.type !== "llama3") throw new Error(`unsupported rope scaling ${JSON.stringify(v)}`);
  return o as unknown as RopeScaling;
}

export function ropeInvFreq(rotaryDim: number, theta: number, scaling?: RopeScaling): Float32Array {
  const half = rotaryDim / 2;
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
        cos[i] = f(Math.cos(angle));
        sin[i] = f(Math.sin(angle));
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
