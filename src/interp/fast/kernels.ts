// The interpreter's fast kernels: the same ops as the reference table (../kernels.ts), computed by the native SIMD
// helper (native/gemm.c) or, without it, by cache-friendlier JS loops. runGraph prefers these; the reference
// kernels stay the specification they are property-tested against (fast/kernels.test.ts, rel <= 1e-6).
// Invariants: a fast kernel either handles its inputs completely or delegates to the reference kernel; attention
// takes its fast path only for attributes on an explicit whitelist, so semantics added to the op later (a new
// attribute or value) run on the reference kernel until someone teaches the fast one, never silently ignored.

import type { CoreOp } from "../../ir/ops.ts";
import { type Kernel, KERNELS, matmulLayout } from "../kernels.ts";
import { numel, type RTensor, tensor } from "../tensor.ts";
import { FAST_ELEMENTWISE } from "./elementwise.ts";
import { nativeKernels } from "./native.ts";

const isF32 = (...ts: (RTensor | undefined)[]) => ts.every((t) => t === undefined || t.data instanceof Float32Array);

/** JS linear: four weight rows per pass over an input row (one read of x feeds four dot products). */
function linearJs(x: Float32Array, w: Float32Array, bias: Float32Array | null, out: Float32Array, rows: number, inF: number, outF: number): void {
  for (let r = 0; r < rows; r++) {
    const xo = r * inF;
    let o = 0;
    for (; o + 4 <= outF; o += 4) {
      const w0 = o * inF,
        w1 = w0 + inF,
        w2 = w1 + inF,
        w3 = w2 + inF;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let i = 0; i < inF; i++) {
        const xv = x[xo + i]!;
        s0 += xv * w[w0 + i]!;
        s1 += xv * w[w1 + i]!;
        s2 += xv * w[w2 + i]!;
        s3 += xv * w[w3 + i]!;
      }
      const ro = r * outF + o;
      out[ro] = s0 + (bias ? bias[o]! : 0);
      out[ro + 1] = s1 + (bias ? bias[o + 1]! : 0);
      out[ro + 2] = s2 + (bias ? bias[o + 2]! : 0);
      out[ro + 3] = s3 + (bias ? bias[o + 3]! : 0);
    }
    for (; o < outF; o++) {
      let s = 0;
      const wo = o * inF;
      for (let i = 0; i < inF; i++) s += x[xo + i]! * w[wo + i]!;
      out[r * outF + o] = s + (bias ? bias[o]! : 0);
    }
  }
}

function transpose2d(b: Float32Array, at: number, k: number, n: number): Float32Array {
  const t = new Float32Array(k * n);
  for (let p = 0; p < k; p++) for (let c = 0; c < n; c++) t[c * k + p] = b[at + p * n + c]!;
  return t;
}

const linear: Kernel<"linear"> = (ins, attrs, ctx) => {
  const [x, w, b] = ins;
  if (!isF32(x, w, b)) return KERNELS.linear(ins, attrs, ctx);
  const [outF, inF] = w!.shape as [number, number];
  const rows = x!.data.length / inF;
  const out = new Float32Array(rows * outF);
  const args = [x!.data as Float32Array, w!.data as Float32Array, (b?.data as Float32Array | undefined) ?? null, out, rows, inF, outF] as const;
  const native = nativeKernels();
  if (native && out.length > 0 && inF > 0) native.linear(...args);
  else linearJs(...args);
  return [tensor(x!.dtype, [...x!.shape.slice(0, -1), outF], out)];
};

const matmul: Kernel<"matmul"> = (ins, attrs, ctx) => {
  const [a, b] = ins;
  if (!isF32(a, b)) return KERNELS.matmul(ins, attrs, ctx);
  const { m, k, n, batch, offA, offB } = matmulLayout(a!.shape, b!.shape);
  const T = numel(batch);
  const out = new Float32Array(T * m * n);
  const ad = a!.data as Float32Array;
  const bd = b!.data as Float32Array;
  const native = nativeKernels();
  if (native && out.length > 0 && k > 0) native.matmul(ad, bd, out, T, m, k, n, offA, offB);
  else
    for (let t = 0; t < T; t++) {
      const bt = transpose2d(bd, offB[t]! * k * n, k, n);
      linearJs(ad.subarray(offA[t]! * m * k, (offA[t]! + 1) * m * k), bt, null, out.subarray(t * m * n, (t + 1) * m * n), m, k, n);
    }
  return [tensor(a!.dtype, [...batch, m, n], out)];
};

/** The attention attributes the fast path implements, each with the values it accepts. Anything else: reference. */
const ATTENTION_WHITELIST: Readonly<Record<string, (v: unknown) => boolean>> = {
  causal: (v) => typeof v === "boolean",
  scale: (v) => typeof v === "number" && Number.isFinite(v),
  // No sliding window (issue 15's window attr): the native kernel attends to every earlier key; window > 0 falls back.
  window: (v) => v === 0 || v === undefined,
  // No soft-capping in the native kernel: softcap > 0 runs on the reference kernel.
  softcap: (v) => v === 0 || v === undefined,
};

export function fastAttentionUnderstands(attrs: object): boolean {
  return Object.entries(attrs).every(([key, value]) => Object.hasOwn(ATTENTION_WHITELIST, key) && ATTENTION_WHITELIST[key]!(value));
}

const attention: Kernel<"attention"> = (ins, attrs, ctx) => {
  const [q, k, v] = ins;
  const native = nativeKernels();
  if (!native || !isF32(q, k, v) || !fastAttentionUnderstands(attrs)) return KERNELS.attention(ins, attrs, ctx);
  const [b, s, h, d] = q!.shape as [number, number, number, number];
  const [, sk, kvh] = k!.shape as [number, number, number, number];
  const dv = v!.shape[3]!;
  if ([b, s, h, d, sk, kvh, dv].includes(0)) return KERNELS.attention(ins, attrs, ctx);
  const out = new Float32Array(b * s * h * dv);
  native.attention(q!.data as Float32Array, k!.data as Float32Array, v!.data as Float32Array, out, b, s, h, kvh, sk, d, dv, attrs.scale, attrs.causal);
  return [tensor(q!.dtype, [b, s, h, dv], out)];
};

/** Fast kernels by op; ops not listed run on the reference kernel. */
export const FAST_KERNELS: { readonly [K in CoreOp]?: Kernel<K> } = { linear, matmul, attention, ...FAST_ELEMENTWISE };

/** The full table the interpreter computes with: the fast kernel where there is one, else the reference. */
export const INTERP_KERNELS: { readonly [K in CoreOp]: Kernel<K> } = { ...KERNELS, ...FAST_KERNELS } as { readonly [K in CoreOp]: Kernel<K> };
