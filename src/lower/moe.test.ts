// `trtllm.moe` (TensorRT-LLM MixtureOfExperts / SharedMoE): the simulator kernel reproduces transformers' Mixtral and
// Qwen2-MoE sparse blocks (golden from testdata/make_moe_block_golden.py), and the per-rank shards of the stacked
// experts (moe_tp x moe_ep, docs/moe.md) reproduce them at tp 1, 2, 4 and ep 1, 2; planted layout bugs do not.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GraphBuilder, type Graph } from "../ir/graph.ts";
import { type RTensor, tensor } from "../interp/tensor.ts";
import { concat, type Dense, evalExpr, reshape, src, type WeightExpr } from "../weights/weight-map.ts";
import { paramRoles, shardWeights } from "./shard.ts";
import { simulateTensorParallel } from "./simulate.ts";
import type { LoweredModel } from "./to-trtllm.ts";

interface Block {
  x: number[][];
  y: number[][];
  router: number[][];
  gate: number[][][];
  up: number[][][];
  down: number[][][];
  shared_gate?: number[][];
  shared_up?: number[][];
  shared_down?: number[][];
  shared_expert_gate?: number[][];
}
const G = JSON.parse(readFileSync(new URL("./testdata/moe-block.golden.json", import.meta.url), "utf8")) as {
  hidden: number;
  experts: number;
  topK: number;
  inter: number;
  shared: number;
  mixtral: Block;
  qwen2_moe: Block;
};
const [H, E, I, S] = [G.hidden, G.experts, G.inter, G.shared];

const dense = (rows: number[][] | number[][][]): Dense => {
  const flat = (rows as unknown[]).flat(2) as number[];
  const shape = Array.isArray((rows as number[][][])[0]![0])
    ? [rows.length, rows[0]!.length, (rows as number[][][])[0]![0]!.length]
    : [rows.length, rows[0]!.length];
  return { shape, data: Float32Array.from(flat) };
};

/** Source tensors under HF-like names, and the lowered graph's weight expressions over them. */
function model(kind: "mixtral" | "qwen2_moe"): { low: LoweredModel; sources: Map<string, Dense> } {
  const blk = G[kind];
  const shared = kind === "qwen2_moe";
  const sources = new Map<string, Dense>([["gate", dense(blk.router)]]);
  for (let e = 0; e < E; e++) {
    sources.set(`experts.${e}.w1`, dense(blk.gate[e]!));
    sources.set(`experts.${e}.w3`, dense(blk.up[e]!));
    sources.set(`experts.${e}.w2`, dense(blk.down[e]!));
  }
  const stack = (w: string, rows: number, cols: number) =>
    reshape(concat(0, ...Array.from({ length: E }, (_, e) => src(`experts.${e}.${w}`))), [E, rows, cols]);
  // The converters' layout: fc = concat([stack(w3), stack(w1)], dim=-2), proj = stack(w2), router whole.
  const weights: Record<string, WeightExpr> = {
    "mlp.router.weight": src("gate"),
    "mlp.fc.weight": concat(1, stack("w3", I, H), stack("w1", I, H)),
    "mlp.proj.weight": stack("w2", H, I),
  };
  const b = new GraphBuilder(kind);
  const x = b.input("x", { dtype: "f32", shape: [1, "seq", H] });
  const ins = [
    x,
    b.param("mlp.router.weight", { dtype: "f32", shape: [E, H] }),
    b.param("mlp.fc.weight", { dtype: "f32", shape: [E, 2 * I, H] }),
    b.param("mlp.proj.weight", { dtype: "f32", shape: [E, H, I] }),
  ];
  if (shared) {
    for (const [k, v] of [
      ["shared.gate", blk.shared_gate],
      ["shared.up", blk.shared_up],
      ["shared.down", blk.shared_down],
      ["shared_expert_gate", blk.shared_expert_gate],
    ] as const)
      sources.set(k, dense(v!));
    weights["mlp.shared_expert.fc.weight"] = concat(0, src("shared.up"), src("shared.gate"));
    weights["mlp.shared_expert.proj.weight"] = src("shared.down");
    weights["mlp.shared_expert_gate.weight"] = src("shared_expert_gate");
    ins.push(
      b.param("mlp.shared_expert.fc.weight", { dtype: "f32", shape: [2 * S, H] }),
      b.param("mlp.shared_expert.proj.weight", { dtype: "f32", shape: [H, S] }),
      b.param("mlp.shared_expert_gate.weight", { dtype: "f32", shape: [1, H] }),
    );
  }
  const normalization = kind === "mixtral" ? "renormalize" : "none";
  const [y] = b.node("trtllm.moe", ins, { numExperts: E, topK: G.topK, normalization, act: "silu", shared }, { scope: "transformer.layers.0.mlp" });
  b.output("y", y!);
  const graph: Graph = b.build();
  return { low: { graph, weights, numLayers: 1 }, sources };
}

const shapeOf = (sources: Map<string, Dense>) => (n: string) => sources.get(n)?.shape;

/** Per-rank tensors of every parameter for a tp / moe_ep split, evaluated from the sources. */
function rankWeights(m: ReturnType<typeof model>, tp: number, ep: number, edit?: (name: string, r: number, d: Dense) => Dense): Map<string, RTensor[]> {
  const shards = shardWeights(m.low, tp, shapeOf(m.sources), { moeEp: ep });
  const out = new Map<string, RTensor[]>();
  for (const p of m.low.graph.params)
    out.set(
      p.name,
      shards.map((s, r) => {
        let d = evalExpr(s[p.name]!, (n) => m.sources.get(n)!);
        if (edit) d = edit(p.name, r, d);
        return tensor("f32", d.shape, Float32Array.from(d.data));
      }),
    );
  return out;
}

function run(m: ReturnType<typeof model>, w: Map<string, RTensor[]>, tp: number, kind: "mixtral" | "qwen2_moe"): Float32Array {
  const x = G[kind].x;
  const inputs = new Map([["x", tensor("f32", [1, x.length, H], Float32Array.from(x.flat()))]]);
  return simulateTensorParallel(m.low.graph, inputs, w, tp).get("y")!.data as Float32Array;
}

const relL2 = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
};

const SPLITS: [number, number][] = [
  [1, 1],
  [2, 1],
  [4, 1],
  [2, 2],
  [4, 2],
];

describe("trtllm.moe", () => {
  for (const kind of ["mixtral", "qwen2_moe"] as const) {
    it.each(SPLITS)(`${kind}: tp=%i moe_ep=%i reproduces transformers' sparse block`, (tp, ep) => {
      const m = model(kind);
      const y = run(m, rankWeights(m, tp, ep), tp, kind);
      expect(relL2(y, G[kind].y.flat())).toBeLessThan(1e-5);
    });
  }

  it("gives each rank the experts Mapping.ep_experts assigns and the [up_t ; gate_t] rows of its moe_tp rank", () => {
    const m = model("mixtral");
    const shards = shardWeights(m.low, 4, shapeOf(m.sources), { moeEp: 2 });
    const fc = shards.map((s) => evalExpr(s["mlp.fc.weight"]!, (n) => m.sources.get(n)!));
    expect(fc.map((d) => d.shape)).toEqual(Array(4).fill([2, I, H]));
    // rank 3: moe_ep rank 1 (experts 2, 3), moe_tp rank 1 (second half of each expert's up and gate rows)
    const up = m.sources.get("experts.2.w3")!;
    const gate = m.sources.get("experts.2.w1")!;
    const row = (d: Dense, r: number) => Array.from(d.data.slice(r * H, (r + 1) * H));
    expect(row(fc[3]!, 0)).toEqual(row(up, I / 2));
    expect(row(fc[3]!, I / 2)).toEqual(row(gate, I / 2));
    expect(paramRoles(m.low.graph).get("mlp.router.weight")).toEqual({ kind: "replicated" });
  });

  it("fails with swapped [gate ; up] halves in the stacked fc", () => {
    const m = model("mixtral");
    const swap = (name: string, _r: number, d: Dense): Dense => {
      if (name !== "mlp.fc.weight") return d;
      const [e, rows, h] = d.shape as [number, number, number];
      const out = new Float32Array(d.data.length);
      for (let k = 0; k < e; k++)
        for (let r = 0; r < rows; r++)
          out.set(d.data.subarray((k * rows + ((r + rows / 2) % rows)) * h, (k * rows + ((r + rows / 2) % rows) + 1) * h), (k * rows + r) * h);
      return { shape: d.shape, data: out };
    };
    expect(relL2(run(m, rankWeights(m, 2, 1, swap), 2, "mixtral"), G.mixtral.y.flat())).toBeGreaterThan(1e-2);
  });

  it("fails when ranks hold the wrong experts", () => {
    const m = model("qwen2_moe");
    const w = rankWeights(m, 2, 2);
    for (const name of ["mlp.fc.weight", "mlp.proj.weight"]) w.set(name, [...w.get(name)!].reverse());
    expect(relL2(run(m, w, 2, "qwen2_moe"), G.qwen2_moe.y.flat())).toBeGreaterThan(1e-2);
  });

  it("refuses a router that differs between ranks and an ep that does not divide tp", () => {
    const m = model("mixtral");
    const w = rankWeights(m, 2, 1, (name, r, d) => (name === "mlp.router.weight" && r === 1 ? { shape: d.shape, data: d.data.map((v) => v + 1) } : d));
    expect(() => run(m, w, 2, "mixtral")).toThrow(/router\.weight' differs between tp ranks/);
    expect(() => shardWeights(m.low, 2, shapeOf(m.sources), { moeEp: 4 })).toThrow(/moe_ep=4 does not divide tp=2/);
  });
});
