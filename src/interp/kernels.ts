// Float32 reference kernels, one per core op, keyed by the op table (a missing kernel is a compile error).
// Correctness first: accumulations run in float64 and are rounded once on store. Shapes are already checked by the
// verifier, so kernels only compute; the symbol bindings resolve symbolic reshape targets.

import type { CoreAttrs, CoreOp } from "../ir/ops.ts";
import { concreteShape, normAxis } from "../ir/shape.ts";
import { roundToBf16, roundToF16 } from "../weights/half.ts";
import { erf, GATED_ACTS, gelu, geluTanh } from "./activations.ts";
import { ROUTING_KERNELS } from "./kernels-routing.ts";
import { applyRope, parseRopeScaling, ropeAttentionFactor, ropeDependsOnLength, ropeInvFreq } from "./rope.ts";
import { aroundAxis, broadcastOffsets, numel, type RTensor, strides, tensor } from "./tensor.ts";

export interface KernelContext {
  readonly bindings: ReadonlyMap<string, number>;
}

export type Kernel<K extends CoreOp> = (ins: RTensor[], attrs: CoreAttrs<K>, ctx: KernelContext) => RTensor[];

const axis = (a: number, t: RTensor) => normAxis(a, t.shape.length)!;

function map(x: RTensor, fn: (v: number) => number): RTensor[] {
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = fn(x.data[i]!);
  return [tensor(x.dtype, x.shape, out)];
}

function binary(fn: (a: number, b: number) => number) {
  return ([a, b]: RTensor[]): RTensor[] => {
    const rank = Math.max(a!.shape.length, b!.shape.length);
    const shape = Array.from({ length: rank }, (_, i) => {
      const x = a!.shape[a!.shape.length - rank + i] ?? 1;
      const y = b!.shape[b!.shape.length - rank + i] ?? 1;
      return x === 1 ? y : x;
    });
    const oa = broadcastOffsets(a!.shape, shape);
    const ob = broadcastOffsets(b!.shape, shape);
    const isInt = a!.dtype === "i32";
    const out = isInt ? new Int32Array(numel(shape)) : new Float32Array(numel(shape));
    for (let i = 0; i < out.length; i++) out[i] = fn(a!.data[oa[i]!]!, b!.data[ob[i]!]!);
    return [tensor(a!.dtype, shape, out)];
  };
}

function reduceKernel(init: number, step: (acc: number, v: number) => number, finish: (acc: number, n: number) => number) {
  return ([x]: RTensor[], a: { axes: number[]; keepDims: boolean }): RTensor[] => {
    const axes = new Set(a.axes.map((ax) => axis(ax, x!)));
    const keptShape = x!.shape.map((d, i) => (axes.has(i) ? 1 : d));
    const outN = numel(keptShape);
    const acc = new Float64Array(outN).fill(init);
    const off = broadcastOffsets(keptShape, x!.shape); // input element -> its reduced output slot
    for (let i = 0; i < x!.data.length; i++) acc[off[i]!] = step(acc[off[i]!]!, x!.data[i]!);
    const count = x!.data.length / outN;
    const out = Float32Array.from(acc, (v) => finish(v, count));
    return [tensor(x!.dtype, a.keepDims ? keptShape : x!.shape.filter((_, i) => !axes.has(i)), out)];
  };
}

function lastAxisRows(x: RTensor): [number, number] {
  const d = x.shape[x.shape.length - 1]!;
  return [x.data.length / d, d];
}

const ROUND: Partial<Record<string, (v: number) => number>> = {
  f32: Math.fround,
  f16: roundToF16,
  bf16: roundToBf16,
  i32: Math.trunc,
  bool: (v) => (v ? 1 : 0),
};

/** A batched matmul's sizes: [..., m, k] @ [..., k, n], the broadcast batch, and each operand's batch offsets. */
export function matmulLayout(a: readonly number[], b: readonly number[]) {
  const [m, k] = a.slice(-2) as [number, number];
  const n = b[b.length - 1]!;
  const batchA = a.slice(0, -2);
  const batchB = b.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const batch = Array.from({ length: rank }, (_, i) => {
    const x = batchA[batchA.length - rank + i] ?? 1;
    return x === 1 ? (batchB[batchB.length - rank + i] ?? 1) : x;
  });
  return { m, k, n, batch, offA: broadcastOffsets(batchA, batch), offB: broadcastOffsets(batchB, batch) };
}

export const KERNELS: { [K in CoreOp]: Kernel<K> } = {
  constant: (_ins, a) => [tensor(a.dtype, [], a.dtype === "i32" || a.dtype === "bool" ? Int32Array.of(a.value) : Float32Array.of(a.value))],
  cast: ([x], a) => {
    const r = ROUND[a.dtype]!;
    const out = a.dtype === "i32" || a.dtype === "bool" ? new Int32Array(x!.data.length) : new Float32Array(x!.data.length);
    for (let i = 0; i < out.length; i++) out[i] = r(x!.data[i]!);
    return [tensor(a.dtype, x!.shape, out)];
  },
  add: binary((a, b) => a + b),
  sub: binary((a, b) => a - b),
  mul: binary((a, b) => a * b),
  div: binary((a, b) => a / b),
  pow: binary((a, b) => (b === 2 ? a * a : a ** b)),
  neg: ([x]) => map(x!, (v) => -v),
  exp: ([x]) => map(x!, Math.exp),
  tanh: ([x]) => map(x!, Math.tanh),
  erf: ([x]) => map(x!, erf),
  softcap: ([x], a) => map(x!, (v) => a.cap * Math.tanh(v / a.cap)),
  sqrt: ([x]) => map(x!, Math.sqrt),
  rsqrt: ([x]) => map(x!, (v) => 1 / Math.sqrt(v)),
  relu: ([x]) => map(x!, (v) => Math.max(v, 0)),
  sigmoid: ([x]) => map(x!, (v) => 1 / (1 + Math.exp(-v))),
  silu: ([x]) => map(x!, GATED_ACTS.silu),
  gelu: ([x], a) => map(x!, a.approximate === "tanh" ? geluTanh : gelu),
  matmul: ([a, b]) => {
    const { m, k, n, batch, offA, offB } = matmulLayout(a!.shape, b!.shape);
    const out = new Float32Array(numel(batch) * m * n);
    for (let bi = 0; bi < numel(batch); bi++) {
      const pa = offA[bi]! * m * k;
      const pb = offB[bi]! * k * n;
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let p = 0; p < k; p++) s += a!.data[pa + i * k + p]! * b!.data[pb + p * n + j]!;
          out[(bi * m + i) * n + j] = s;
        }
    }
    return [tensor(a!.dtype, [...batch, m, n], out)];
  },
  linear: ([x, w, b]) => {
    const [outF, inF] = w!.shape as [number, number];
    const rows = x!.data.length / inF;
    const out = new Float32Array(rows * outF);
    const xd = x!.data;
    const wd = w!.data;
    for (let r = 0; r < rows; r++)
      for (let o = 0; o < outF; o++) {
        let s = b ? b.data[o]! : 0;
        const xo = r * inF;
        const wo = o * inF;
        for (let i = 0; i < inF; i++) s += xd[xo + i]! * wd[wo + i]!;
        out[r * outF + o] = s;
      }
    return [tensor(x!.dtype, [...x!.shape.slice(0, -1), outF], out)];
  },
  embedding: ([table, ids]) => {
    const [vocab, dim] = table!.shape as [number, number];
    const out = new Float32Array(ids!.data.length * dim);
    ids!.data.forEach((id, r) => {
      if (!(id >= 0 && id < vocab)) throw new RangeError(`token id ${id} is out of range for a vocabulary of ${vocab}`);
      out.set(table!.data.subarray(id * dim, (id + 1) * dim), r * dim);
    });
    return [tensor(table!.dtype, [...ids!.shape, dim], out)];
  },
  softmax: ([x], a) => {
    const [outer, n, inner] = aroundAxis(x!.shape, axis(a.axis, x!));
    const out = new Float32Array(x!.data.length);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const base = o * n * inner + i;
        let max = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < n; j++) max = Math.max(max, x!.data[base + j * inner]!);
        let sum = 0;
        for (let j = 0; j < n; j++) sum += Math.exp(x!.data[base + j * inner]! - max);
        for (let j = 0; j < n; j++) out[base + j * inner] = Math.exp(x!.data[base + j * inner]! - max) / sum;
      }
    return [tensor(x!.dtype, x!.shape, out)];
  },
  reduce_mean: reduceKernel(
    0,
    (s, v) => s + v,
    (s, n) => s / n,
  ),
  reduce_sum: reduceKernel(
    0,
    (s, v) => s + v,
    (s) => s,
  ),
  reduce_max: reduceKernel(Number.NEGATIVE_INFINITY, Math.max, (s) => s),
  reshape: ([x], a, ctx) => [tensor(x!.dtype, concreteShape(a.shape, ctx.bindings), x!.data)],
  transpose: ([x], a) => {
    const shape = a.perm.map((p) => x!.shape[p]!);
    const inStr = strides(x!.shape);
    const permStr = a.perm.map((p) => inStr[p]!);
    const out = x!.data instanceof Int32Array ? new Int32Array(x!.data.length) : new Float32Array(x!.data.length);
    const idx = new Array<number>(shape.length).fill(0);
    let off = 0;
    for (let k = 0; k < out.length; k++) {
      out[k] = x!.data[off]!;
      for (let d = shape.length - 1; d >= 0; d--) {
        idx[d]!++;
        off += permStr[d]!;
        if (idx[d]! < shape[d]!) break;
        off -= permStr[d]! * shape[d]!;
        idx[d] = 0;
      }
    }
    return [tensor(x!.dtype, shape, out)];
  },
  split: ([x], a) => {
    const ax = axis(a.axis, x!);
    const [outer, n, inner] = aroundAxis(x!.shape, ax);
    let start = 0;
    return a.sizes.map((size) => {
      const out = x!.data instanceof Int32Array ? new Int32Array(outer * size * inner) : new Float32Array(outer * size * inner);
      for (let o = 0; o < outer; o++) out.set(x!.data.subarray((o * n + start) * inner, (o * n + start + size) * inner), o * size * inner);
      start += size;
      return tensor(
        x!.dtype,
        x!.shape.map((d, i) => (i === ax ? size : d)),
        out,
      );
    });
  },
  concat: (ins, a) => {
    const ax = axis(a.axis, ins[0]!);
    const total = ins.reduce((s, t) => s + t.shape[ax]!, 0);
    const shape = ins[0]!.shape.map((d, i) => (i === ax ? total : d));
    const [outer, , inner] = aroundAxis(shape, ax);
    const out = ins[0]!.data instanceof Int32Array ? new Int32Array(numel(shape)) : new Float32Array(numel(shape));
    for (let o = 0; o < outer; o++) {
      let at = o * total * inner;
      for (const t of ins) {
        const len = t.shape[ax]! * inner;
        out.set(t.data.subarray(o * len, (o + 1) * len), at);
        at += len;
      }
    }
    return [tensor(ins[0]!.dtype, shape, out)];
  },
  slice: ([x], a) => {
    const ax = axis(a.axis, x!);
    const [outer, n, inner] = aroundAxis(x!.shape, ax);
    const size = a.end - a.start;
    const out = x!.data instanceof Int32Array ? new Int32Array(outer * size * inner) : new Float32Array(outer * size * inner);
    for (let o = 0; o < outer; o++) out.set(x!.data.subarray((o * n + a.start) * inner, (o * n + a.end) * inner), o * size * inner);
    return [
      tensor(
        x!.dtype,
        x!.shape.map((d, i) => (i === ax ? size : d)),
        out,
      ),
    ];
  },
  repeat_interleave: ([x], a) => {
    const ax = axis(a.axis, x!);
    const [outer, n, inner] = aroundAxis(x!.shape, ax);
    const out = x!.data instanceof Int32Array ? new Int32Array(x!.data.length * a.repeats) : new Float32Array(x!.data.length * a.repeats);
    for (let o = 0; o < outer; o++)
      for (let j = 0; j < n; j++) {
        const src = x!.data.subarray((o * n + j) * inner, (o * n + j + 1) * inner);
        for (let r = 0; r < a.repeats; r++) out.set(src, ((o * n + j) * a.repeats + r) * inner);
      }
    return [
      tensor(
        x!.dtype,
        x!.shape.map((d, i) => (i === ax ? d * a.repeats : d)),
        out,
      ),
    ];
  },
  layer_norm: ([x, w, b], a) => {
    const [rows, d] = lastAxisRows(x!);
    const out = new Float32Array(x!.data.length);
    for (let r = 0; r < rows; r++) {
      let mean = 0;
      for (let i = 0; i < d; i++) mean += x!.data[r * d + i]!;
      mean /= d;
      let v = 0;
      for (let i = 0; i < d; i++) v += (x!.data[r * d + i]! - mean) ** 2;
      const inv = 1 / Math.sqrt(v / d + a.eps);
      for (let i = 0; i < d; i++) out[r * d + i] = (x!.data[r * d + i]! - mean) * inv * (w ? w.data[i]! : 1) + (b ? b.data[i]! : 0);
    }
    return [tensor(x!.dtype, x!.shape, out)];
  },
  rms_norm: ([x, w], a) => {
    const [rows, d] = lastAxisRows(x!);
    const out = new Float32Array(x!.data.length);
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let i = 0; i < d; i++) ss += x!.data[r * d + i]! ** 2;
      const inv = 1 / Math.sqrt(ss / d + a.eps);
      for (let i = 0; i < d; i++) out[r * d + i] = x!.data[r * d + i]! * inv * (w ? w.data[i]! : 1);
    }
    return [tensor(x!.dtype, x!.shape, out)];
  },
  rope: ([x, pos], a) => {
    const out = Float32Array.from(x!.data);
    const scaling = parseRopeScaling(a.scaling);
    // dynamic / longrope: the call's sequence length is max(position_ids) + 1 (transformers' dynamic_rope_update).
    const seqLen = ropeDependsOnLength(scaling) ? (pos!.data as Int32Array).reduce((m, p) => Math.max(m, p), -1) + 1 : 0;
    const inv = ropeInvFreq(a.rotaryDim, a.theta, scaling, seqLen);
    applyRope(out, x!.shape, pos!.data as Int32Array, pos!.shape[0]!, a.style, a.rotaryDim, inv, ropeAttentionFactor(scaling));
    return [tensor(x!.dtype, x!.shape, out)];
  },
  causal_mask: ([x]) => {
    const [q, k] = x!.shape.slice(-2) as [number, number];
    const out = Float32Array.from(x!.data);
    for (let base = 0; base < out.length; base += q * k)
      for (let i = 0; i < q; i++) for (let j = i + (k - q) + 1; j < k; j++) out[base + i * k + j] = Number.NEGATIVE_INFINITY;
    return [tensor(x!.dtype, x!.shape, out)];
  },
  gated_activation: ([x], a) => {
    const n = x!.shape[x!.shape.length - 1]! / 2;
    const rows = x!.data.length / (2 * n);
    const act = GATED_ACTS[a.act];
    const out = new Float32Array(rows * n);
    for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) out[r * n + i] = act(x!.data[r * 2 * n + n + i]!) * x!.data[r * 2 * n + i]!;
    return [tensor(x!.dtype, [...x!.shape.slice(0, -1), n], out)];
  },
  attention: ([q, k, v], a) => {
    const [b, s, h, d] = q!.shape as [number, number, number, number];
    const [, sk, kvh] = k!.shape as [number, number, number, number];
    const dv = v!.shape[3]!;
    const group = h / kvh;
    const out = new Float32Array(b * s * h * dv);
    const scores = new Float64Array(sk);
    for (let bi = 0; bi < b; bi++)
      for (let hi = 0; hi < h; hi++) {
        const kh = Math.floor(hi / group);
        for (let i = 0; i < s; i++) {
          const qo = ((bi * s + i) * h + hi) * d;
          const last = a.causal ? Math.min(sk - 1, i + (sk - s)) : sk - 1;
          // Sliding window (transformers masking_utils.sliding_window_overlay: kv_idx > q_idx - window).
          const first = a.window > 0 ? Math.max(0, i + (sk - s) - a.window + 1) : 0;
          let max = Number.NEGATIVE_INFINITY;
          for (let j = first; j <= last; j++) {
            const ko = ((bi * sk + j) * kvh + kh) * d;
            let dot = 0;
            for (let c = 0; c < d; c++) dot += q!.data[qo + c]! * k!.data[ko + c]!;
            scores[j] = dot * a.scale;
            // Soft-capping before the mask (transformers' eager_attention_forward: scores / softcap, tanh, * softcap).
            if (a.softcap > 0) scores[j] = a.softcap * Math.tanh(scores[j]! / a.softcap);
            if (scores[j]! > max) max = scores[j]!;
          }
          let sum = 0;
          for (let j = first; j <= last; j++) sum += scores[j] = Math.exp(scores[j]! - max);
          const oo = ((bi * s + i) * h + hi) * dv;
          for (let c = 0; c < dv; c++) {
            let acc = 0;
            for (let j = first; j <= last; j++) acc += scores[j]! * v!.data[((bi * sk + j) * kvh + kh) * dv + c]!;
            out[oo + c] = acc / sum;
          }
        }
      }
    return [tensor(q!.dtype, [b, s, h, dv], out)];
  },
  ...ROUTING_KERNELS,
};
