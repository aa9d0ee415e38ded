// Reference kernels for the routing and mixture-of-experts rows of the op table (src/ir/ops-routing.ts): top-k,
// argmax, comparisons, where, gathers, one-hot, and the sparse `moe` block. kernels.ts spreads them into KERNELS.
// Invariants: indices are Int32Array (i32), comparisons give bool (0/1 in an Int32Array); ties in top-k and argmax go
// to the lower index; `moe` computes the router, the routing weights and the weighted sum in float64 and rounds once
// to float32 on store, so it equals the sparse computation of HF's MixtralSparseMoeBlock / Qwen2MoeSparseMoeBlock
// (transformers/models/mixtral/modeling_mixtral.py and models/qwen2_moe/modeling_qwen2_moe.py @ v5.17.0).

import type { CoreAttrs } from "../ir/ops.ts";
import type { MoeAttrs } from "../ir/ops-routing.ts";
import { moeParts } from "../ir/ops-routing.ts";
import { normAxis } from "../ir/shape.ts";
import { GATED_ACTS } from "./activations.ts";
import { aroundAxis, broadcastOffsets, numel, type RTensor, strides, tensor } from "./tensor.ts";

type KernelFn<A> = (ins: RTensor[], attrs: A) => RTensor[];

const axis = (a: number, t: RTensor) => normAxis(a, t.shape.length)!;

function broadcastShape(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  return Array.from({ length: rank }, (_, i) => {
    let d = 1;
    for (const s of shapes) {
      const x = s[s.length - rank + i] ?? 1;
      if (x !== 1) d = x;
    }
    return d;
  });
}

function compare(fn: (a: number, b: number) => boolean): KernelFn<object> {
  return ([a, b]) => {
    const shape = broadcastShape(a!.shape, b!.shape);
    const [oa, ob] = [broadcastOffsets(a!.shape, shape), broadcastOffsets(b!.shape, shape)];
    const out = new Int32Array(numel(shape));
    for (let i = 0; i < out.length; i++) out[i] = fn(a!.data[oa[i]!]!, b!.data[ob[i]!]!) ? 1 : 0;
    return [tensor("bool", shape, out)];
  };
}

const like = (x: RTensor, n: number) => (x.data instanceof Int32Array ? new Int32Array(n) : new Float32Array(n));

/** Indices of the k largest of `row`, largest first; equal values keep the lower index first (a stable sort). */
export function topkIndices(row: ArrayLike<number>, k: number): number[] {
  const order = Array.from({ length: row.length }, (_, i) => i);
  order.sort((i, j) => row[j]! - row[i]! || i - j);
  return order.slice(0, k);
}

const topk: KernelFn<CoreAttrs<"topk">> = ([x], a) => {
  const ax = axis(a.axis, x!);
  const [outer, n, inner] = aroundAxis(x!.shape, ax);
  const shape = x!.shape.map((d, i) => (i === ax ? a.k : d));
  const values = like(x!, numel(shape));
  const indices = new Int32Array(numel(shape));
  const row = new Float64Array(n);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      for (let j = 0; j < n; j++) row[j] = x!.data[(o * n + j) * inner + i]!;
      topkIndices(row, a.k).forEach((j, r) => {
        values[(o * a.k + r) * inner + i] = row[j]!;
        indices[(o * a.k + r) * inner + i] = j;
      });
    }
  return [tensor(x!.dtype, shape, values), tensor("i32", shape, indices)];
};

const argmax: KernelFn<CoreAttrs<"argmax">> = ([x], a) => {
  const ax = axis(a.axis, x!);
  const [outer, n, inner] = aroundAxis(x!.shape, ax);
  const out = new Int32Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let best = 0;
      for (let j = 1; j < n; j++) if (x!.data[(o * n + j) * inner + i]! > x!.data[(o * n + best) * inner + i]!) best = j;
      out[o * inner + i] = best;
    }
  const shape = a.keepDims ? x!.shape.map((d, i) => (i === ax ? 1 : d)) : x!.shape.filter((_, i) => i !== ax);
  return [tensor("i32", shape, out)];
};

const where: KernelFn<object> = ([c, a, b]) => {
  const shape = broadcastShape(c!.shape, a!.shape, b!.shape);
  const [oc, oa, ob] = [c!, a!, b!].map((t) => broadcastOffsets(t.shape, shape)) as [Int32Array, Int32Array, Int32Array];
  const out = like(a!, numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = c!.data[oc[i]!] ? a!.data[oa[i]!]! : b!.data[ob[i]!]!;
  return [tensor(a!.dtype, shape, out)];
};

function checkIndex(v: number, size: number, op: string): number {
  if (!(Number.isInteger(v) && v >= 0 && v < size)) throw new RangeError(`${op}: index ${v} is out of range for an axis of ${size}`);
  return v;
}

const gather: KernelFn<CoreAttrs<"gather">> = ([x, idx], a) => {
  const ax = axis(a.axis, x!);
  const xs = strides(x!.shape);
  const is = strides(idx!.shape);
  const out = like(x!, idx!.data.length);
  for (let k = 0; k < out.length; k++) {
    let off = 0;
    for (let d = 0; d < idx!.shape.length; d++) {
      const at = Math.floor(k / is[d]!) % idx!.shape[d]!;
      off += (d === ax ? checkIndex(idx!.data[k]!, x!.shape[ax]!, "gather") : at) * xs[d]!;
    }
    out[k] = x!.data[off]!;
  }
  return [tensor(x!.dtype, idx!.shape, out)];
};

const indexSelect: KernelFn<CoreAttrs<"index_select">> = ([x, idx], a) => {
  const ax = axis(a.axis, x!);
  const [outer, n, inner] = aroundAxis(x!.shape, ax);
  const m = idx!.data.length;
  const out = like(x!, outer * m * inner);
  for (let o = 0; o < outer; o++)
    for (let r = 0; r < m; r++) {
      const j = checkIndex(idx!.data[r]!, n, "index_select");
      out.set(x!.data.subarray((o * n + j) * inner, (o * n + j + 1) * inner), (o * m + r) * inner);
    }
  return [
    tensor(
      x!.dtype,
      x!.shape.map((d, i) => (i === ax ? m : d)),
      out,
    ),
  ];
};

const oneHot: KernelFn<CoreAttrs<"one_hot">> = ([idx], a) => {
  const n = a.numClasses;
  const out = a.dtype === "i32" || a.dtype === "bool" ? new Int32Array(idx!.data.length * n) : new Float32Array(idx!.data.length * n);
  idx!.data.forEach((v, r) => {
    out[r * n + checkIndex(v, n, "one_hot")] = 1;
  });
  return [tensor(a.dtype, [...idx!.shape, n], out)];
};

/** y += scale * down (act(gate x) * up x) for one token: gate/up are [I, H] and down [H, I] at the given offsets. */
function gatedMlpInto(
  y: Float64Array,
  scale: number,
  x: ArrayLike<number>,
  xo: number,
  h: number,
  inter: number,
  w: { gate: ArrayLike<number>; up: ArrayLike<number>; down: ArrayLike<number>; off: number },
  act: (v: number) => number,
): void {
  const hidden = new Float64Array(inter);
  for (let i = 0; i < inter; i++) {
    let g = 0;
    let u = 0;
    const wo = w.off + i * h;
    for (let c = 0; c < h; c++) {
      g += x[xo + c]! * w.gate[wo + c]!;
      u += x[xo + c]! * w.up[wo + c]!;
    }
    hidden[i] = act(Math.fround(g)) * Math.fround(u);
  }
  for (let c = 0; c < h; c++) {
    let d = 0;
    const wo = w.off + c * inter;
    for (let i = 0; i < inter; i++) d += hidden[i]! * w.down[wo + i]!;
    y[c] = y[c]! + scale * d;
  }
}

/** The routing of one token: chosen experts (largest score first) and their weights. */
export function routeToken(logits: Float64Array, a: Pick<MoeAttrs, "topK" | "scoring" | "normalizeTopK">): { experts: number[]; weights: number[] } {
  const scores = new Float64Array(logits.length);
  if (a.scoring === "softmax") {
    const max = Math.max(...logits);
    let sum = 0;
    for (let e = 0; e < logits.length; e++) sum += scores[e] = Math.exp(logits[e]! - max);
    for (let e = 0; e < logits.length; e++) scores[e] = scores[e]! / sum;
  } else for (let e = 0; e < logits.length; e++) scores[e] = 1 / (1 + Math.exp(-logits[e]!));
  const experts = topkIndices(scores, a.topK);
  let weights = experts.map((e) => scores[e]!);
  if (a.normalizeTopK) {
    const total = weights.reduce((s, w) => s + w, 0);
    weights = weights.map((w) => w / total);
  }
  return { experts, weights };
}

const moe: KernelFn<MoeAttrs> = (ins, a) => {
  const [x, router, gate, up, down, sGate, sUp, sDown, sExpertGate] = ins;
  const h = x!.shape[x!.shape.length - 1]!;
  const inter = gate!.shape[1]!;
  const rows = x!.data.length / h;
  const act = GATED_ACTS[a.activation];
  const { shared, sharedGated } = moeParts(ins.length);
  const s = shared ? sGate!.shape[0]! : 0;
  const out = new Float32Array(x!.data.length);
  const logits = new Float64Array(a.numExperts);
  const y = new Float64Array(h);
  for (let r = 0; r < rows; r++) {
    const xo = r * h;
    for (let e = 0; e < a.numExperts; e++) {
      let l = 0;
      for (let c = 0; c < h; c++) l += x!.data[xo + c]! * router!.data[e * h + c]!;
      logits[e] = Math.fround(l);
    }
    y.fill(0);
    const { experts, weights } = routeToken(logits, a);
    experts.forEach((e, k) =>
      gatedMlpInto(y, weights[k]!, x!.data, xo, h, inter, { gate: gate!.data, up: up!.data, down: down!.data, off: e * inter * h }, act),
    );
    if (shared) {
      let scale = 1;
      if (sharedGated) {
        let g = 0;
        for (let c = 0; c < h; c++) g += x!.data[xo + c]! * sExpertGate!.data[c]!;
        scale = 1 / (1 + Math.exp(-g));
      }
      gatedMlpInto(y, scale, x!.data, xo, h, s, { gate: sGate!.data, up: sUp!.data, down: sDown!.data, off: 0 }, act);
    }
    for (let c = 0; c < h; c++) out[xo + c] = y[c]!;
  }
  return [tensor(x!.dtype, x!.shape, out)];
};

export const ROUTING_KERNELS = {
  topk,
  argmax,
  greater: compare((p, q) => p > q),
  less: compare((p, q) => p < q),
  equal: compare((p, q) => p === q),
  where,
  gather,
  index_select: indexSelect,
  one_hot: oneHot,
  moe,
};
