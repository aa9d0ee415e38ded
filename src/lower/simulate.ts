// Runs a TensorRT-LLM level graph on the CPU with per-rank weights, computing each tensor-parallel rank's part the
// way TensorRT-LLM's layers do and combining them as its collectives would: all-reduce (sum) after row-parallel
// projections, all-gather of lm_head columns. Each rank reads its weights exactly as stored (fused QKV as
// [q_r; k_r; v_r], local heads), so a wrong layout gives wrong numbers. Replicated weights must be identical on all
// ranks. With one rank per tensor this is also the plain interpreter for lowered graphs.
// Optional hooks see (and may replace) each Linear's input and the K/V written to the KV cache, per rank, named by
// TensorRT-LLM module path: calibration observes them, quantization simulation fake-quantizes them.

import { describeNode, type Graph, type ValueId } from "../ir/graph.ts";
import { INTERP_KERNELS } from "../interp/fast/kernels.ts";
import { kernelFor, registerKernel, runGraph } from "../interp/run.ts";
import { type RTensor, tensor } from "../interp/tensor.ts";
import type { CoreAttrs } from "../ir/ops.ts";
import "./trtllm-ops.ts"; // registers the TensorRT-LLM ops in the op table
import type { TrtllmAttrs, TrtllmNodeOf, TrtllmOp } from "./trtllm-ops.ts";

export class SimulationError extends Error {}

/** Per-rank views into the layers; each returns what the layer goes on with (the input itself when observing). */
export interface SimulationHooks {
  /** The input of Linear `module` (e.g. transformer.layers.0.attention.qkv) on tp rank `rank`, before its GEMM. */
  readonly linearInput?: (module: string, x: RTensor, rank: number) => RTensor;
  /** K (after rotary) or V of attention `module` as the KV cache stores it: [batch, seq, local kv heads, head dim]. */
  readonly kvCache?: (module: string, which: "k" | "v", t: RTensor, rank: number) => RTensor;
  /** The output of Linear `module` on tp rank `rank` given its input, before any all-reduce or bias that comes after
   * the reduction: where TensorRT-LLM's LoRA plugin adds its low-rank term (lora/plugin-simulation.ts). */
  readonly linearOutput?: (module: string, x: RTensor, y: RTensor, rank: number) => RTensor;
}

const NO_HOOKS: SimulationHooks = {};

const ctx = { bindings: new Map<string, number>() };
const K = INTERP_KERNELS;

function sum(ts: RTensor[]): RTensor {
  const out = new Float32Array(ts[0]!.data.length);
  for (const t of ts) for (let i = 0; i < out.length; i++) out[i]! += t.data[i]!;
  return tensor(ts[0]!.dtype, ts[0]!.shape, out);
}

function reshape(t: RTensor, shape: number[]): RTensor {
  return tensor(t.dtype, shape, t.data);
}

function expectShape(t: RTensor, shape: number[], what: string) {
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
    throw new SimulationError(`${what} is [${t.shape}] on this rank, expected [${shape}]`);
}

/** Adds a bias that is either whole on every rank (added once after the reduction) or spread over ranks (summed). */
function addBias(acc: RTensor, biases: RTensor[] | undefined, rank0Only: boolean): RTensor {
  if (!biases) return acc;
  const b = rank0Only ? sum(biases) : biases[0]!;
  return K.add([acc, b], {}, ctx)[0]!;
}

type AttentionAttrs = TrtllmAttrs<"trtllm.attention">;

/** Applies the hooks of one rank; `at` is the module path of the layer they belong to. */
function rankHooks(h: SimulationHooks, at: string, rank: number) {
  return {
    lin: (name: string, x: RTensor) => (h.linearInput ? h.linearInput(`${at}.${name}`, x, rank) : x),
    kv: (which: "k" | "v", t: RTensor) => (h.kvCache ? h.kvCache(at, which, t, rank) : t),
    out: (name: string, x: RTensor, y: RTensor) => (h.linearOutput ? h.linearOutput(`${at}.${name}`, x, y, rank) : y),
  };
}

function attentionRank(
  x: RTensor,
  pos: RTensor,
  qkvW: RTensor,
  qkvB: RTensor | undefined,
  denseW: RTensor,
  a: AttentionAttrs,
  tp: number,
  what: string,
  hk: ReturnType<typeof rankHooks>,
  qkNorm?: [RTensor, RTensor],
): RTensor {
  const [b, s] = x.shape as [number, number];
  const hl = a.heads / tp;
  const kvl = a.kvHeads >= tp ? a.kvHeads / tp : 1;
  const hd = a.headDim;
  expectShape(qkvW, [(hl + 2 * kvl) * hd, x.shape[2]!], `${what}.qkv.weight`);
  const xq = hk.lin("qkv", x);
  const qkv = hk.out("qkv", xq, K.linear(qkvB ? [xq, qkvW, qkvB] : [xq, qkvW], {}, ctx)[0]!);
  let [q, k, v] = K.split([qkv], { axis: -1, sizes: [hl * hd, kvl * hd, kvl * hd] }, ctx) as [RTensor, RTensor, RTensor];
  q = reshape(q, [b, s, hl, hd]);
  k = reshape(k, [b, s, kvl, hd]);
  v = reshape(v, [b, s, kvl, hd]);
  if (qkNorm) {
    // TensorRT-LLM Attention(qk_layernorm=True, layernorm_type=RmsNorm): per-head norms before the rotary embedding.
    q = K.rms_norm([q, qkNorm[0]], { eps: a.qkNormEps }, ctx)[0]!;
    k = K.rms_norm([k, qkNorm[1]], { eps: a.qkNormEps }, ctx)[0]!;
  }
  if (a.rope !== "none") {
    const rope = { style: a.rope, rotaryDim: a.rotaryDim, theta: a.ropeTheta, scaling: a.ropeScaling } as CoreAttrs<"rope">;
    q = K.rope([q, pos], rope, ctx)[0]!;
    k = K.rope([k, pos], rope, ctx)[0]!;
  }
  const out = K.attention([q, hk.kv("k", k), hk.kv("v", v)], { causal: true, scale: a.scale, window: a.window, softcap: a.softcap }, ctx)[0]!;
  expectShape(denseW, [x.shape[2]!, hl * hd], `${what}.dense.weight`);
  const xd = hk.lin("dense", reshape(out, [b, s, hl * hd]));
  return hk.out("dense", xd, K.linear([xd, denseW], {}, ctx)[0]!);
}

const GATED: Record<string, (x: RTensor) => RTensor> = {
  silu: (x) => K.silu([x], {}, ctx)[0]!,
  relu: (x) => K.relu([x], {}, ctx)[0]!,
  gelu: (x) => K.gelu([x], { approximate: "none" }, ctx)[0]!,
  gelu_tanh: (x) => K.gelu([x], { approximate: "tanh" }, ctx)[0]!,
};

/** TensorRT-LLM's ACT2FN swiglu on one rank's fc output: halves [x; gate] -> silu(gate) * x. */
function swiglu(y: RTensor): RTensor {
  const half = y.shape.at(-1)! / 2;
  const [a, gate] = K.split([y], { axis: -1, sizes: [half, half] }, ctx) as [RTensor, RTensor];
  return K.mul([a, GATED.silu!(gate)], {}, ctx)[0]!;
}

/** Per-rank values of each input: activations are shared, parameters come per rank. */
type RankInputs = (RTensor | RTensor[])[];
const perRank = (v: RTensor | RTensor[]): RTensor[] => (Array.isArray(v) ? v : [v]);

/** `x @ w.T (+ b)` for Linear `name` of the layer, its input passed through the hooks. */
const linearOf = (hk: ReturnType<typeof rankHooks>, name: string, x: RTensor, w: RTensor, b: RTensor | undefined) => {
  const xq = hk.lin(name, x);
  return hk.out(name, xq, K.linear(b ? [xq, w, b] : [xq, w], {}, ctx)[0]!);
};

/** Which experts a rank holds: its fc is [local experts, ...]; moe_ep = E / local, moe_ep_rank = tp_rank % moe_ep
 *  (Mapping: moe_tp_rank = tp_rank // moe_ep), so a rank file with the wrong experts computes wrong numbers. */
function localExperts(fc: RTensor, numExperts: number, r: number, what: string): number {
  const local = fc.shape[0]!;
  if (!local || numExperts % local) throw new SimulationError(`${what}: fc.weight holds ${local} experts, not a divisor of ${numExperts}`);
  return (r % (numExperts / local)) * local;
}

/** Top-k routing in float32: expert ids and weights per token (TensorRT-LLM MixtureOfExperts.forward). */
function route(x: ArrayLike<number>, router: RTensor, n: number, d: number, a: TrtllmAttrs<"trtllm.moe">): { ids: Int32Array; w: Float32Array } {
  const E = a.numExperts;
  const ids = new Int32Array(n * a.topK);
  const w = new Float32Array(n * a.topK);
  const logits = new Float64Array(E);
  for (let t = 0; t < n; t++) {
    for (let e = 0; e < E; e++) {
      let acc = 0;
      for (let h = 0; h < d; h++) acc += x[t * d + h]! * router.data[e * d + h]!;
      logits[e] = Math.fround(acc);
    }
    const order = [...logits.keys()].sort((i, j) => logits[j]! - logits[i]! || i - j).slice(0, a.topK);
    // "none": softmax over all E, then the top k; "renormalize": softmax over the top-k logits only.
    const pool = a.normalization === "renormalize" ? order : [...logits.keys()];
    const max = Math.max(...pool.map((e) => logits[e]!));
    const total = pool.reduce((s, e) => s + Math.exp(logits[e]! - max), 0);
    order.forEach((e, k) => {
      ids[t * a.topK + k] = e;
      w[t * a.topK + k] = Math.fround(Math.exp(logits[e]! - max) / total);
    });
  }
  return { ids, w };
}

/** y += scale * (down @ (silu(gate) * up)) for one token, with up/gate the two halves of fc @ x. */
function gatedExpert(
  x: ArrayLike<number>,
  xo: number,
  fc: ArrayLike<number>,
  fo: number,
  down: ArrayLike<number>,
  dof: number,
  inter: number,
  d: number,
  scale: number,
  y: Float32Array,
  yo: number,
) {
  const act = new Float32Array(inter);
  for (let i = 0; i < inter; i++) {
    let up = 0;
    let gate = 0;
    for (let h = 0; h < d; h++) {
      up += fc[fo + i * d + h]! * x[xo + h]!;
      gate += fc[fo + (inter + i) * d + h]! * x[xo + h]!;
    }
    const g = Math.fround(gate);
    act[i] = Math.fround((g / (1 + Math.exp(-g))) * Math.fround(up));
  }
  for (let h = 0; h < d; h++) {
    let acc = 0;
    for (let i = 0; i < inter; i++) acc += down[dof + h * inter + i]! * act[i]!;
    y[yo + h] = Math.fround(y[yo + h]! + scale * Math.fround(acc));
  }
}

function moeRank(
  x: RTensor,
  router: RTensor,
  fc: RTensor,
  proj: RTensor,
  shared: RTensor[] | undefined,
  a: TrtllmAttrs<"trtllm.moe">,
  r: number,
  what: string,
): RTensor {
  const d = x.shape.at(-1)!;
  const n = x.data.length / d;
  const first = localExperts(fc, a.numExperts, r, what);
  const local = fc.shape[0]!;
  const inter = fc.shape[1]! / 2;
  expectShape(proj, [local, d, inter], `${what}.proj.weight`);
  const { ids, w } = route(x.data, router, n, d, a);
  const y = new Float32Array(n * d);
  for (let t = 0; t < n; t++)
    for (let k = 0; k < a.topK; k++) {
      const e = ids[t * a.topK + k]! - first;
      if (e < 0 || e >= local) continue;
      gatedExpert(x.data, t * d, fc.data, e * 2 * inter * d, proj.data, e * d * inter, inter, d, w[t * a.topK + k]!, y, t * d);
    }
  if (shared) {
    const [sFc, sProj, sGate] = shared as [RTensor, RTensor, RTensor];
    const s = sFc.shape[0]! / 2;
    expectShape(sProj, [d, s], `${what}.shared_expert.proj.weight`);
    for (let t = 0; t < n; t++) {
      let g = 0;
      for (let h = 0; h < d; h++) g += sGate.data[h]! * x.data[t * d + h]!;
      const sig = Math.fround(1 / (1 + Math.exp(-Math.fround(g))));
      gatedExpert(x.data, t * d, sFc.data, 0, sProj.data, 0, s, d, sig, y, t * d);
    }
  }
  return tensor(x.dtype, [...x.shape], y);
}

type TpKernel<K extends TrtllmOp> = (ins: RankInputs, n: TrtllmNodeOf<K>, tp: number, h: SimulationHooks) => RTensor;

/** One tensor-parallel kernel per TensorRT-LLM op (complete over the op table of src/lower/trtllm-ops.ts). */
const TP_KERNELS: { readonly [K in TrtllmOp]: TpKernel<K> } = {
  "trtllm.attention": (ins, n, tp, h) => {
    const a = n.attrs;
    const [x, pos] = ins as [RTensor, RTensor];
    const params = ins.slice(2).map(perRank);
    let i = 0;
    const qkvW = params[i++]!;
    const qkvB = a.qkvBias ? params[i++] : undefined;
    const denseW = params[i++]!;
    const denseB = a.denseBias ? params[i++] : undefined;
    const qkNorm = a.qkNorm ? [params[i++]!, params[i++]!] : undefined;
    const partials = Array.from({ length: tp }, (_, r) =>
      attentionRank(
        x,
        pos,
        qkvW[r]!,
        qkvB?.[r],
        denseW[r]!,
        a,
        tp,
        `${n.scope} (tp rank ${r})`,
        rankHooks(h, n.scope, r),
        qkNorm && [qkNorm[0]![r]!, qkNorm[1]![r]!],
      ),
    );
    return addBias(sum(partials), denseB, a.reduce === "layer");
  },
  "trtllm.gated_mlp": (ins, n, tp, h) => {
    const x = ins[0] as RTensor;
    const [fc, gate, proj, fcB, gateB, projB] = ins.slice(1).map(perRank) as RTensor[][];
    const act = GATED[n.attrs.act]!;
    const partials = Array.from({ length: tp }, (_, r) => {
      const hk = rankHooks(h, n.scope, r);
      const inter = K.mul([act(linearOf(hk, "fc", x, fc![r]!, fcB?.[r])), linearOf(hk, "gate", x, gate![r]!, gateB?.[r])], {}, ctx)[0]!;
      return linearOf(hk, "proj", inter, proj![r]!, undefined);
    });
    return addBias(sum(partials), projB, n.attrs.reduce === "layer");
  },
  "trtllm.mlp": (ins, n, tp, h) => {
    const x = ins[0] as RTensor;
    const [fc, proj, fcB, projB] = ins.slice(1).map(perRank) as RTensor[][];
    const act = n.attrs.act === "swiglu" ? swiglu : GATED[n.attrs.act]!;
    const partials = Array.from({ length: tp }, (_, r) => {
      const hk = rankHooks(h, n.scope, r);
      return linearOf(hk, "proj", act(linearOf(hk, "fc", x, fc![r]!, fcB?.[r])), proj![r]!, undefined);
    });
    return addBias(sum(partials), projB, n.attrs.reduce === "layer");
  },
  "trtllm.moe": (ins, n, tp) => {
    const x = ins[0] as RTensor;
    const [router, fc, proj, ...shared] = ins.slice(1).map(perRank) as RTensor[][];
    // The router is replicated (RowLinear with tp_size=1) and read in float32 whatever the checkpoint dtype.
    if (router!.some((t) => !sameTensor(t, router![0]!))) throw new SimulationError(`replicated parameter '${n.scope}.router.weight' differs between tp ranks`);
    const partials = Array.from({ length: tp }, (_, r) =>
      moeRank(x, router![0]!, fc![r]!, proj![r]!, n.attrs.shared ? shared.map((p) => p[r]!) : undefined, n.attrs, r, `${n.scope} (tp rank ${r})`),
    );
    return sum(partials);
  },
  "trtllm.lm_head": (ins, n, tp) => {
    const x = ins[0] as RTensor;
    const [w, b] = ins.slice(1).map(perRank) as RTensor[][];
    const parts = Array.from({ length: tp }, (_, r) => K.linear(b ? [x, w![r]!, b[r]!] : [x, w![r]!], {}, ctx)[0]!);
    const gathered = K.concat(parts, { axis: -1 }, ctx)[0]!;
    const vocab = n.attrs.vocab;
    const logits = gathered.shape.at(-1) === vocab ? gathered : K.slice([gathered], { axis: -1, start: 0, end: vocab }, ctx)[0]!;
    return n.attrs.softcap > 0 ? K.softcap([logits], { cap: n.attrs.softcap }, ctx)[0]! : logits;
  },
};

// Single-rank kernels, so the plain interpreter can run lowered graphs with full (unsharded) weights.
/** The kernel of a node's op, when it is a TensorRT-LLM op (the node then carries that op's attrs). */
const tpKernelFor = (op: string): TpKernel<TrtllmOp> | undefined =>
  Object.hasOwn(TP_KERNELS, op) ? (TP_KERNELS[op as TrtllmOp] as TpKernel<TrtllmOp>) : undefined;

for (const op of Object.keys(TP_KERNELS))
  registerKernel(op, (ins, attrs) => [tpKernelFor(op)!(ins, { op, attrs, inputs: [], outputs: [], scope: op } as TrtllmNodeOf<TrtllmOp>, 1, NO_HOOKS)]);

function sameTensor(a: RTensor, b: RTensor): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]) && a.data.every((v, i) => Object.is(v, b.data[i]));
}

/** A vocab-parallel embedding's table (TensorRT-LLM's Embedding with sharding_dim 0): each rank looks up its own
 *  rows, zeros elsewhere, and the all-reduce sums them, which is the lookup in the rows stacked in rank order (the
 *  padding past `vocab` is never read). */
function vocabRows(shards: RTensor[], vocab: number): RTensor {
  const table = K.concat(shards, { axis: 0 }, ctx)[0]!;
  if (table.shape[0]! < vocab) throw new SimulationError(`embedding shards hold ${table.shape[0]} rows, fewer than the vocabulary's ${vocab}`);
  return table.shape[0] === vocab ? table : K.slice([table], { axis: 0, start: 0, end: vocab }, ctx)[0]!;
}

/** Runs the lowered graph with per-rank weights (global parameter names -> one tensor per tp rank). */
export function simulateTensorParallel(
  g: Graph,
  inputs: ReadonlyMap<string, RTensor>,
  weights: ReadonlyMap<string, RTensor[]>,
  tp: number,
  hooks: SimulationHooks = NO_HOOKS,
): Map<string, RTensor> {
  const paramOf = new Map(g.params.map((p) => [p.value, p.name]));
  const env = new Map<ValueId, RTensor | RTensor[]>();
  const bindings = new Map<string, number>();
  for (const i of g.inputs) {
    const t = inputs.get(i.name);
    if (!t) throw new SimulationError(`missing input '${i.name}'`);
    g.values.get(i.value)!.shape.forEach((d, k) => typeof d === "string" && bindings.set(d, t.shape[k]!));
    env.set(i.value, t);
  }
  for (const p of g.params) {
    const ts = weights.get(p.name);
    if (!ts || ts.length !== tp) throw new SimulationError(`no weights for '${p.name}' on ${tp} rank(s)`);
    env.set(p.value, ts);
  }
  for (const n of g.nodes) {
    const ins = n.inputs.map((v) => env.get(v)!);
    let outs: RTensor[];
    try {
      const tpKernel = tpKernelFor(n.op);
      if (tpKernel) outs = [tpKernel(ins, n as TrtllmNodeOf<TrtllmOp>, tp, hooks)];
      else {
        const single = ins.map((v, k) => {
          if (!Array.isArray(v)) return v;
          if (n.op === "embedding" && k === 0 && v.some((t) => !sameTensor(t, v[0]!))) return vocabRows(v, g.values.get(n.inputs[0]!)!.shape[0] as number);
          if (v.some((t) => !sameTensor(t, v[0]!))) throw new SimulationError(`replicated parameter '${paramOf.get(n.inputs[k]!)}' differs between tp ranks`);
          return v[0]!;
        });
        // Core and custom ops (registered kernels) on replicated inputs.
        const kernel = kernelFor(n.op);
        if (!kernel) throw new SimulationError(`no interpreter kernel for op '${n.op}'`);
        outs = kernel(single, n.attrs, { bindings });
      }
    } catch (e) {
      if (e instanceof SimulationError) throw new SimulationError(`${describeNode(n)}: ${e.message}`);
      throw e;
    }
    n.outputs.forEach((o, k) => env.set(o, outs[k]!));
  }
  return new Map(g.outputs.map((o) => [o.name, env.get(o.value) as RTensor]));
}

/** Convenience: plain interpreter run of a lowered graph with full weights. */
export function runLowered(g: Graph, inputs: ReadonlyMap<string, RTensor>, weights: ReadonlyMap<string, RTensor>): Map<string, RTensor> {
  return runGraph(g, inputs, weights);
}
