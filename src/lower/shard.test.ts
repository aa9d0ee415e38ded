// Sharding rules, checked against TensorRT-LLM's conventions with hand-worked cases.

import { describe, expect, it } from "vitest";
import { concat, evalExpr, src, type Dense } from "../weights/weight-map.ts";
import { placeParam, stageLayers } from "./mapping.ts";
import { qkvRankRows, rankExpr } from "./shard.ts";

const rows = (n: number, cols = 2): Dense => ({ shape: [n, cols], data: Float32Array.from({ length: n * cols }, (_, i) => Math.floor(i / cols)) });
const rowIds = (d: Dense) => Array.from({ length: d.shape[0]! }, (_, r) => d.data[r * d.shape[1]!]!);

describe("qkvRankRows", () => {
  it("splits q, k and v by heads separately ([q_r; k_r; v_r])", () => {
    // 4 q heads, 2 kv heads, head dim 1: rows q0..q3 | k0 k1 | v0 v1
    expect(qkvRankRows({ kind: "qkv", heads: 4, kvHeads: 2, headDim: 1 }, 2, 1, "t")).toEqual([
      [2, 4],
      [5, 6],
      [7, 8],
    ]);
  });

  it("replicates key/value heads when there are fewer than tp", () => {
    const role = { kind: "qkv", heads: 8, kvHeads: 2, headDim: 1 } as const;
    const kHeads = [0, 1, 2, 3].map((r) => qkvRankRows(role, 4, r, "t")[1]![0] - 8);
    expect(kHeads).toEqual([0, 0, 1, 1]);
  });

  it("rejects head counts tp does not divide", () => {
    expect(() => qkvRankRows({ kind: "qkv", heads: 6, kvHeads: 6, headDim: 1 }, 4, 0, "attn.qkv")).toThrow(
      /attn\.qkv query heads: size 6 is not divisible by tp=4/,
    );
    expect(() => qkvRankRows({ kind: "qkv", heads: 8, kvHeads: 3, headDim: 1 }, 4, 0, "attn.qkv")).toThrow(/not a multiple of 3 key\/value heads/);
  });
});

describe("rankExpr", () => {
  const shapeOf = (n: string) => ({ w: [10, 2], q: [4, 2], k: [2, 2], v: [2, 2] })[n];
  const load = (n: string) => rows(shapeOf(n)![0]!);

  it("pads lm_head rows to a multiple of tp with zeros, then splits", () => {
    const parts = [0, 1, 2, 3].map((r) => evalExpr(rankExpr("lm_head.weight", src("w"), { kind: "lm_head" }, [10, 2], 4, r, shapeOf), load));
    expect(parts.map((p) => p.shape[0])).toEqual([3, 3, 3, 3]);
    expect(rowIds(parts[3]!)).toEqual([9, 0, 0]);
    expect(Array.from(parts[3]!.data.slice(2))).toEqual([0, 0, 0, 0]);
  });

  it("puts GPT-J's reduced bias on rank 0 only, and everyone else's on every rank", () => {
    const e = src("w");
    expect(rankExpr("b", e, { kind: "row_bias", rank0Only: true }, [10, 2], 2, 1, shapeOf)).toEqual({ op: "zeros", shape: [10, 2] });
    expect(rankExpr("b", e, { kind: "row_bias", rank0Only: true }, [10, 2], 2, 0, shapeOf)).toEqual(e);
    expect(rankExpr("b", e, { kind: "row_bias", rank0Only: false }, [10, 2], 2, 1, shapeOf)).toEqual(e);
  });

  it("reads only the sources a rank needs for the fused QKV", () => {
    const e = rankExpr("qkv", concat(0, src("q"), src("k"), src("v")), { kind: "qkv", heads: 4, kvHeads: 2, headDim: 1 }, [8, 2], 2, 1, shapeOf);
    expect(e).toEqual(
      concat(
        0,
        { op: "slice", dim: 0, start: 2, end: 4, x: src("q") },
        { op: "slice", dim: 0, start: 1, end: 2, x: src("k") },
        { op: "slice", dim: 0, start: 1, end: 2, x: src("v") },
      ),
    );
  });

  it("splits column-parallel weights on dim 0 and row-parallel on dim 1", () => {
    expect(rankExpr("fc", src("w"), { kind: "column" }, [10, 2], 2, 1, shapeOf)).toEqual({ op: "slice", dim: 0, start: 5, end: 10, x: src("w") });
    expect(rankExpr("proj", src("w"), { kind: "row" }, [10, 2], 2, 1, shapeOf)).toEqual({ op: "slice", dim: 1, start: 1, end: 2, x: src("w") });
  });
});

describe("pipeline stages", () => {
  it("splits layers like torch.tensor_split and renames them locally", () => {
    expect(stageLayers(3, 2)).toEqual([
      [0, 2],
      [2, 3],
    ]);
    expect(stageLayers(10, 4)).toEqual([
      [0, 3],
      [3, 6],
      [6, 8],
      [8, 10],
    ]);
    expect(placeParam("transformer.layers.2.attention.qkv.weight", 3, 2)).toEqual({ stage: 1, localName: "transformer.layers.0.attention.qkv.weight" });
    expect(placeParam("transformer.vocab_embedding.weight", 3, 2)).toEqual({ stage: 0, localName: "transformer.vocab_embedding.weight" });
    expect(placeParam("lm_head.weight", 3, 2).stage).toBe(1);
    expect(placeParam("transformer.ln_f.weight", 3, 2).stage).toBe(1);
  });
});
