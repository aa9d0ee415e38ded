// Incremental decoding with a KV cache for traced causal LMs: the prompt runs once, then each new token runs
// alone while every attention node reads the keys and values of all earlier positions from the cache.
// Invariants: the cache is used only where it provably computes what a full recompute computes: every node is
// position-wise along the sequence (its outputs at a position depend only on that position's inputs) except
// causal attention nodes with whitelisted attributes, checked statically by `kvCacheSupport` (the reason is
// returned when not). The kernels compute each row independently (fast/kernels.test.ts), so cached logits are
// bit-identical to the full recompute's (kv-cache.test.ts); unsupported graphs decode by full recompute.

import type { Graph, Node } from "../ir/graph.ts";
import { normAxis, type Shape } from "../ir/shape.ts";
import { fastAttentionUnderstands, INTERP_KERNELS } from "./fast/kernels.ts";
import { type AnyKernel, runGraph } from "./run.ts";
import { i32, type RTensor, tensor } from "./tensor.ts";
import { parseRopeScaling, ropeDependsOnLength } from "./rope.ts";
import type { JsonValue } from "../ir/attrs.ts";

/** Ops whose output at a sequence position depends only on their inputs at that position (axis-free ops). */
const POSITIONWISE = new Set([
  "constant",
  "cast",
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "neg",
  "exp",
  "tanh",
  "softcap",
  "erf",
  "sqrt",
  "rsqrt",
  "relu",
  "sigmoid",
  "silu",
  "gelu",
  "layer_norm",
  "rms_norm",
  "rope",
  "gated_activation",
  "embedding",
  "linear",
]);
/** Ops with an axis (or axes): position-wise when none of them is the sequence dim. */
const AXIS_OPS = new Set(["softmax", "reduce_mean", "reduce_sum", "reduce_max", "split", "concat", "slice", "repeat_interleave", "transpose"]);

export type CacheSupport = { readonly ok: true } | { readonly ok: false; readonly why: string };

function axesOf(n: Node, rank: number): number[] {
  const a = n.attrs as { axis?: number; axes?: number[]; perm?: number[] };
  if (a.perm) return a.perm.flatMap((p, i) => (p === i ? [] : [i]));
  return (a.axes ?? (a.axis === undefined ? [] : [a.axis])).map((x) => normAxis(x, rank) ?? -1);
}

const count = (s: Shape, sym: string) => s.filter((d) => d === sym).length;

/** Whether incremental decoding of `g` with a KV cache is exact, and if not, why. */
export function kvCacheSupport(g: Graph): CacheSupport {
  const ids = g.inputs.find((i) => i.name === "input_ids");
  const seq = ids && g.values.get(ids.value)!.shape[1];
  if (typeof seq !== "string") return { ok: false, why: "input_ids has no symbolic sequence dim" };
  const shapeOf = (v: number) => g.values.get(v)!.shape;
  const hasSeq = (v: number) => count(shapeOf(v), seq) > 0;
  let attentions = 0;
  for (const n of g.nodes) {
    const fail = (why: string): CacheSupport => ({ ok: false, why: `${n.op} node '${n.scope}': ${why}` });
    // dynamic / longrope frequencies follow the whole call's length: keys rotated earlier would be stale.
    if (n.op === "rope" && ropeDependsOnLength(parseRopeScaling(n.attrs.scaling as JsonValue))) return fail("its rope scaling depends on the sequence length");
    if (POSITIONWISE.has(n.op)) {
      if (n.op === "linear" && n.inputs.slice(1).some(hasSeq)) return fail("weights vary along the sequence");
      continue;
    }
    if (AXIS_OPS.has(n.op)) {
      for (const v of n.inputs) {
        const s = shapeOf(v);
        if (axesOf(n, s.length).some((a) => a < 0 || s[a] === seq)) return fail("works along the sequence dim");
      }
      continue;
    }
    if (n.op === "reshape") {
      if (count(shapeOf(n.inputs[0]!), seq) !== 1 || count(shapeOf(n.outputs[0]!), seq) !== 1) return fail("merges or splits the sequence dim");
      continue;
    }
    if (n.op === "matmul") {
      const [a, b] = n.inputs.map(shapeOf) as [Shape, Shape];
      if (count(b, seq) > 0 || a[a.length - 1] === seq) return fail("contracts or mixes along the sequence dim");
      continue;
    }
    if (n.op === "attention") {
      const a = n.attrs as { causal?: unknown };
      if (a.causal !== true || !fastAttentionUnderstands(n.attrs)) return fail("only causal attention with causal/scale attributes is cached");
      if (n.inputs.some((v) => shapeOf(v)[1] !== seq)) return fail("q, k and v must have the sequence at dim 1");
      attentions++;
      continue;
    }
    return fail("not known to be position-wise");
  }
  return attentions > 0 ? { ok: true } : { ok: false, why: "the graph has no attention node" };
}

/** Keys or values of one attention node: [1, positions, kv heads, dim] rows in a buffer that grows by doubling, so
 * a step appends its new rows instead of copying the whole cache (batch 1, float32: what `feed` produces). */
class GrowingRows {
  private buf = new Float32Array(0);
  private rows = 0;

  constructor(private readonly rowShape: readonly number[]) {}

  static accepts(t: RTensor): boolean {
    return t.shape[0] === 1 && t.data instanceof Float32Array;
  }

  /** Appends t's positions; returns the whole cache as a tensor viewing the buffer (valid until the next append). */
  append(t: RTensor): RTensor {
    const width = this.rowShape.reduce((a, b) => a * b, 1);
    const add = t.shape[1]!;
    const need = (this.rows + add) * width;
    if (need > this.buf.length) {
      const grown = new Float32Array(Math.max(need, 2 * this.buf.length));
      grown.set(this.buf.subarray(0, this.rows * width));
      this.buf = grown;
    }
    this.buf.set(t.data as Float32Array, this.rows * width);
    this.rows += add;
    return tensor(t.dtype, [1, this.rows, ...this.rowShape], this.buf.subarray(0, need));
  }
}

/** One prompt's decoding state: the keys and values every attention node has seen, [batch, positions, kv heads, dim]. */
export class KvCacheSession {
  private readonly cache = new Map<Node, { k: RTensor; v: RTensor }>();
  private readonly rows = new Map<Node, { k: GrowingRows; v: GrowingRows }>();
  private position = 0;
  private readonly override: (n: Node) => AnyKernel | undefined;

  constructor(
    private readonly g: Graph,
    private readonly params: ReadonlyMap<string, RTensor>,
  ) {
    const attention: AnyKernel = INTERP_KERNELS.attention;
    const concat: AnyKernel = INTERP_KERNELS.concat;
    this.override = (n) => {
      if (n.op !== "attention") return undefined;
      return (ins, attrs, ctx) => {
        const [q, k, v] = ins as [RTensor, RTensor, RTensor];
        let rows = this.rows.get(n);
        if (!rows && !this.cache.has(n) && GrowingRows.accepts(k) && GrowingRows.accepts(v)) {
          rows = { k: new GrowingRows(k.shape.slice(2)), v: new GrowingRows(v.shape.slice(2)) };
          this.rows.set(n, rows);
        }
        if (rows && GrowingRows.accepts(k) && GrowingRows.accepts(v)) return attention([q, rows.k.append(k), rows.v.append(v)], attrs, ctx);
        if (rows) throw new Error("the KV cache holds batch-1 float32 rows, but this step's keys are not");
        const prev = this.cache.get(n);
        const all = prev ? { k: concat([prev.k, k], { axis: 1 }, ctx)[0]!, v: concat([prev.v, v], { axis: 1 }, ctx)[0]! } : { k, v };
        this.cache.set(n, all);
        return attention([q, all.k, all.v], attrs, ctx);
      };
    };
  }

  /** Runs `ids` at the next positions; returns the logits output, [1, ids.length, vocab]. */
  feed(ids: readonly number[]): RTensor {
    const T = ids.length;
    const inputs = new Map([
      ["input_ids", i32([1, T], Int32Array.from(ids))],
      [
        "position_ids",
        i32(
          [1, T],
          Int32Array.from({ length: T }, (_, i) => this.position + i),
        ),
      ],
    ]);
    const out = runGraph(this.g, inputs, this.params, { kernelOverride: this.override }).get("logits");
    if (!out) throw new Error(`graph '${this.g.name}' has no 'logits' output`);
    this.position += T;
    return out;
  }
}
