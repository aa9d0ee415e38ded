// Checking that two graphs compute the same function, without a GPU: run both in the interpreter on fresh random
// inputs and weights over several seeds and compare every output with a stated tolerance. The second graph's
// parameters are derived from the first's through the pass derivation (weight expressions), exactly as the
// converter will derive them from a checkpoint. The first diverging value is reported by name.

import type { Graph } from "../ir/graph.ts";
import { concreteShape } from "../ir/shape.ts";
import { evalExpr, type WeightExpr } from "../weights/weight-map.ts";
import { runGraph } from "./run.ts";
import { numel, type RTensor, tensor } from "./tensor.ts";

export interface EquivalenceOptions {
  readonly seeds?: readonly number[];
  /** Relative L2 tolerance per output. */
  readonly tolerance?: number;
  /** Sizes for symbolic dims (default batch=2, seq=5, others 3). */
  readonly dims?: Readonly<Record<string, number>>;
  /** Exclusive upper bound for each i32 input (default: the smallest table an embedding gathers from, or the seq length). */
  readonly intRange?: Readonly<Record<string, number>>;
}

export interface EquivalenceReport {
  readonly ok: boolean;
  readonly worst: number;
  readonly tolerance: number;
  /** e.g. "output 'logits' (seed 2): rel L2 3.1e-2 > 1e-5; first differing element [0, 3, 17]: 0.512 vs 0.498". */
  readonly firstDivergence?: string;
}

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function intBound(g: Graph, input: string, dims: Record<string, number>): number {
  const v = g.inputs.find((i) => i.name === input)!.value;
  const tables = g.nodes.filter((n) => n.op === "embedding" && n.inputs[1] === v).map((n) => g.values.get(n.inputs[0]!)!.shape[0] as number);
  return tables.length ? Math.min(...tables) : (dims.seq ?? 5);
}

function randomInputs(g: Graph, dims: Record<string, number>, ranges: Readonly<Record<string, number>>, rand: () => number): Map<string, RTensor> {
  const bind = new Map(Object.entries(dims));
  for (const i of g.inputs) for (const d of g.values.get(i.value)!.shape) if (typeof d === "string" && !bind.has(d)) bind.set(d, 3);
  return new Map(
    g.inputs.map((i) => {
      const t = g.values.get(i.value)!;
      const shape = concreteShape(t.shape, bind);
      if (t.dtype !== "i32")
        return [
          i.name,
          tensor(
            t.dtype,
            shape,
            Float32Array.from({ length: numel(shape) }, () => rand() * 2 - 1),
          ),
        ];
      const hi = ranges[i.name] ?? intBound(g, i.name, Object.fromEntries(bind));
      return [
        i.name,
        tensor(
          "i32",
          shape,
          Int32Array.from({ length: numel(shape) }, () => Math.floor(rand() * hi)),
        ),
      ];
    }),
  );
}

function firstDiff(a: RTensor, b: RTensor): string {
  let worst = 0;
  let at = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    if (d > worst || Number.isNaN(d)) [worst, at] = [Number.isNaN(d) ? Infinity : d, i];
  }
  const idx: number[] = [];
  let rest = at;
  for (let k = a.shape.length - 1; k >= 0; k--) {
    idx.unshift(rest % a.shape[k]!);
    rest = Math.floor(rest / a.shape[k]!);
  }
  return `largest difference at [${idx.join(", ")}]: ${a.data[at]} vs ${b.data[at]}`;
}

/** Checks `after` computes what `before` computes; `derive` gives each of after's params from before's. */
export function checkEquivalence(before: Graph, after: Graph, derive: Readonly<Record<string, WeightExpr>>, opts: EquivalenceOptions = {}): EquivalenceReport {
  const tolerance = opts.tolerance ?? 1e-5;
  const dims = { batch: 2, seq: 5, ...opts.dims };
  let worst = 0;
  for (const seed of opts.seeds ?? [1, 2, 3]) {
    const rand = rng(seed);
    const inputs = randomInputs(before, dims, opts.intRange ?? {}, rand);
    const pa = new Map<string, RTensor>(
      before.params.map((p) => {
        const shape = before.values.get(p.value)!.shape as number[];
        return [
          p.name,
          tensor(
            "f32",
            shape,
            Float32Array.from({ length: numel(shape) }, () => (rand() * 2 - 1) * 0.5),
          ),
        ];
      }),
    );
    const pb = new Map(
      after.params.map((p) => {
        const e = derive[p.name];
        if (!e) throw new Error(`no derivation for parameter '${p.name}' of the second graph`);
        const d = evalExpr(e, (s) => {
          const t = pa.get(s);
          if (!t) throw new Error(`derivation of '${p.name}' reads '${s}', which the first graph does not have`);
          return { shape: t.shape, data: t.data as Float32Array };
        });
        return [p.name, tensor("f32", d.shape, d.data)];
      }),
    );
    const oa = runGraph(before, inputs, pa);
    const ob = runGraph(after, inputs, pb);
    for (const [name, a] of oa) {
      const b = ob.get(name);
      if (!b) return { ok: false, worst: Infinity, tolerance, firstDivergence: `output '${name}' is missing from the second graph` };
      if (a.shape.join() !== b.shape.join())
        return { ok: false, worst: Infinity, tolerance, firstDivergence: `output '${name}' has shape [${b.shape}], expected [${a.shape}]` };
      let num = 0;
      let den = 0;
      for (let i = 0; i < a.data.length; i++) {
        num += (a.data[i]! - b.data[i]!) ** 2;
        den += a.data[i]! ** 2;
      }
      const err = Math.sqrt(num) / Math.sqrt(den || 1);
      worst = Math.max(worst, Number.isNaN(err) ? Infinity : err);
      if (!(err <= tolerance))
        return {
          ok: false,
          worst,
          tolerance,
          firstDivergence: `output '${name}' (seed ${seed}): rel L2 ${err.toExponential(2)} > ${tolerance}; ${firstDiff(a, b)}`,
        };
    }
  }
  return { ok: true, worst, tolerance };
}
