// Float32 islands in a half-precision run: a large-magnitude sum that overflows float16 (64 values near 1500 sum to
// about 96000 > 65504) is finite and equal to the float32 result when it sits in an island, survives the default
// passes (island casts are never folded), and overflows when the island is removed (the negative control).

import { describe, expect, it } from "vitest";
import { Module } from "../dsl/module.ts";
import type { Tensor } from "../dsl/tensor.ts";
import { traceModule } from "../dsl/trace.ts";
import type { Graph } from "../ir/graph.ts";
import { islandValues } from "../ir/islands.ts";
import { DEFAULT_PASSES } from "../passes/default-passes.ts";
import { runPasses } from "../passes/manager.ts";
import { runGraph } from "./run.ts";
import { tensor } from "./tensor.ts";

class BigSum extends Module {
  constructor(readonly island: boolean) {
    super();
  }
  forward(x: Tensor): Tensor {
    const wide = this.island ? x.cast("float32") : x;
    const mean = wide.mul(1000).sum(-1).mul(1e-3);
    return this.island ? mean.cast("model") : mean;
  }
}

const trace = (island: boolean): Graph => traceModule(new BigSum(island), "bigsum", [{ name: "x", dtype: "f32", shape: [2, 64] }]);
const X = tensor(
  "f32",
  [2, 64],
  Float32Array.from({ length: 128 }, (_, i) => 1.25 + (i % 7) * 0.125),
);
const run = (g: Graph, half?: "f16" | "bf16") => runGraph(g, new Map([["x", X]]), new Map(), half ? { half } : {}).get("logits")!.data;

describe("float32 islands in a half-precision build", () => {
  it("the island's sum is float32 (finite, equal to the float32 run within float16 output rounding)", () => {
    const exact = run(trace(true));
    const half = run(trace(true), "f16");
    expect(exact[0]).toBeGreaterThan(65.504); // 1000x the sum would overflow float16
    for (let i = 0; i < 2; i++) {
      expect(Number.isFinite(half[i]!)).toBe(true);
      expect(Math.abs(half[i]! - exact[i]!) / exact[i]!).toBeLessThan(1e-3);
    }
  });

  it("without the island the same computation overflows float16 (so the test above would see a lost island)", () => {
    const half = run(trace(false), "f16");
    expect(Array.from(half).every((v) => v === Number.POSITIVE_INFINITY)).toBe(true);
    expect(Array.from(run(trace(false)))).toEqual(Array.from(run(trace(true))));
  });

  it("island casts survive the default passes, and the analysis marks exactly the values between them", () => {
    const g = runPasses(trace(true), DEFAULT_PASSES).graph;
    expect(g.nodes.filter((n) => n.op === "cast").map((n) => n.attrs.island)).toEqual(["enter", "exit"]);
    const inside = islandValues(g);
    const exit = g.nodes.find((n) => n.attrs.island === "exit")!;
    expect(inside.has(exit.inputs[0]!)).toBe(true);
    expect(inside.has(exit.outputs[0]!)).toBe(false);
    expect(Number.isFinite(run(g, "f16")[0]!)).toBe(true);
  });

  it("an island cast of a non-float tensor is refused, naming the dtypes", () => {
    class Bad extends Module {
      forward(x: Tensor): Tensor {
        return x.cast("float32");
      }
    }
    expect(() => traceModule(new Bad(), "bad", [{ name: "x", dtype: "i32", shape: [2] }])).toThrow(
      /float32 island enter casts a float tensor to f32, got i32 -> f32/,
    );
  });
});
