// Shape rules of the routing and MoE ops (ops-routing.ts): output types, one rejected input per op, and the round trip
// of a graph using all of them through the printer, the text parser and protobuf.

import { describe, expect, it } from "vitest";
import { GraphBuilder } from "./graph.ts";
import { opDef, type ValueType } from "./ops.ts";
import { printGraph } from "./print.ts";
import { parseGraph, serializeGraph } from "./serialize.ts";
import { verifyProblems } from "./verify.ts";

const v = (dtype: ValueType["dtype"], ...shape: (number | string)[]): ValueType => ({ dtype, shape });
const infer = (op: string, ins: ValueType[], attrs: Record<string, unknown> = {}) => opDef(op)!.infer(ins, attrs as never);
const MOE = { numExperts: 4, topK: 2, scoring: "softmax", normalizeTopK: true, activation: "silu" };
const moeIns = (h = 6, i = 5, e = 4) => [v("f32", "batch", "seq", h), v("f32", e, h), v("f32", e, i, h), v("f32", e, i, h), v("f32", e, h, i)];
const shared = (h = 6, s = 3) => [v("f32", s, h), v("f32", s, h), v("f32", h, s)];

describe("routing op shape rules", () => {
  it("topk gives values of the input dtype and i32 indices, k along the axis", () => {
    expect(infer("topk", [v("f32", "seq", 8)], { k: 2, axis: -1 })).toEqual([v("f32", "seq", 2), v("i32", "seq", 2)]);
    expect(() => infer("topk", [v("f32", "seq", 8)], { k: 9, axis: -1 })).toThrow(/topk k=9 must be in 1\.\.8/);
    expect(() => infer("topk", [v("f32", 3, "seq")], { k: 1, axis: 1 })).toThrow(/axis 1 of \[3, seq\] must be concrete/);
  });

  it("argmax drops or keeps the axis and gives i32", () => {
    expect(infer("argmax", [v("f32", 2, 7)], { axis: 1, keepDims: false })).toEqual([v("i32", 2)]);
    expect(infer("argmax", [v("f32", 2, 7)], { axis: -1, keepDims: true })).toEqual([v("i32", 2, 1)]);
    expect(() => infer("argmax", [v("f32", 2, 7)], { axis: 2, keepDims: false })).toThrow(/axis 2 out of range for \[2, 7\]/);
  });

  it("comparisons broadcast to bool and need one dtype", () => {
    for (const op of ["greater", "less", "equal"]) expect(infer(op, [v("f32", "seq", 4), v("f32", 4)])).toEqual([v("bool", "seq", 4)]);
    expect(() => infer("greater", [v("f32", 4), v("i32", 4)])).toThrow(/dtype mismatch: f32\[4\] vs i32\[4\]/);
    expect(() => infer("less", [v("f32", 3), v("f32", 4)])).toThrow(/shapes \[3\] and \[4\] do not broadcast/);
  });

  it("where broadcasts all three and needs a bool condition", () => {
    expect(infer("where", [v("bool", "seq", 4), v("f32", 4), v("f32")])).toEqual([v("f32", "seq", 4)]);
    expect(() => infer("where", [v("f32", 4), v("f32", 4), v("f32", 4)])).toThrow(/where condition must be bool, got f32\[4\]/);
  });

  it("gather takes its output shape from the indices; index_select replaces one axis", () => {
    expect(infer("gather", [v("f32", 3, 8), v("i32", 3, 2)], { axis: 1 })).toEqual([v("f32", 3, 2)]);
    expect(() => infer("gather", [v("f32", 3, 8), v("i32", 4, 2)], { axis: 1 })).toThrow(/must match input \[3, 8\] on every axis but 1/);
    expect(() => infer("gather", [v("f32", 3, 8), v("f32", 3, 2)], { axis: 1 })).toThrow(/gather indices must be i32/);
    expect(infer("index_select", [v("f32", 5, 8), v("i32", 3)], { axis: 0 })).toEqual([v("f32", 3, 8)]);
    expect(() => infer("index_select", [v("f32", 5, 8), v("i32", 3, 1)], { axis: 0 })).toThrow(/index must be 1-D/);
  });

  it("one_hot appends the class axis in the asked dtype", () => {
    expect(infer("one_hot", [v("i32", "seq", 2)], { numClasses: 5, dtype: "f32" })).toEqual([v("f32", "seq", 2, 5)]);
    expect(() => infer("one_hot", [v("f32", 2)], { numClasses: 5, dtype: "f32" })).toThrow(/one_hot input must be i32/);
  });
});

describe("moe shape rule", () => {
  it("gives x's type for 5, 8 and 9 inputs", () => {
    const out = [v("f32", "batch", "seq", 6)];
    expect(infer("moe", moeIns(), MOE)).toEqual(out);
    expect(infer("moe", [...moeIns(), ...shared()], MOE)).toEqual(out);
    expect(infer("moe", [...moeIns(), ...shared(), v("f32", 1, 6)], MOE)).toEqual(out);
  });

  it("names the tensor at fault", () => {
    const bad = moeIns();
    bad[4] = v("f32", 4, 5, 6); // down as [E, I, H] instead of [E, H, I]
    expect(() => infer("moe", bad, MOE)).toThrow(/moe expertDown must be \[4, 6, 5\] .* got f32\[4, 5, 6\]/);
    expect(() => infer("moe", moeIns(6, 5, 3), MOE)).toThrow(/moe routerWeight must be \[4, 6\]/);
    expect(() => infer("moe", moeIns(), { ...MOE, topK: 5 })).toThrow(/topK 5 must be in 1\.\.numExperts \(4\)/);
    expect(() => infer("moe", [...moeIns(), v("f32", 3, 6)], MOE)).toThrow(/moe takes 5 inputs .* got 6/);
    expect(() => infer("moe", [...moeIns(), ...shared(), v("f32", 2, 6)], MOE)).toThrow(/sharedExpertGate must be \[1, 6\]/);
  });
});

describe("routing ops in a graph", () => {
  it("survive the verifier, the printer and both serializations", () => {
    const b = new GraphBuilder("routing");
    const x = b.input("x", v("f32", "seq", 6));
    const router = b.param("router", v("f32", 4, 6));
    const [gate, up, down] = [b.param("gate", v("f32", 4, 5, 6)), b.param("up", v("f32", 4, 5, 6)), b.param("down", v("f32", 4, 6, 5))];
    const [logits] = b.node("linear", [x, router], {});
    const [vals, idx] = b.node("topk", [logits!], { k: 2, axis: -1 });
    const [hot] = b.node("one_hot", [idx!], { numClasses: 4, dtype: "f32" });
    const [best] = b.node("argmax", [logits!], { axis: -1, keepDims: true });
    const [picked] = b.node("gather", [logits!, best!], { axis: -1 });
    const [pos] = b.node("greater", [picked!, vals!], {});
    const [sel] = b.node("where", [pos!, picked!, vals!], {});
    const [m] = b.node("moe", [x, router, gate!, up!, down!], MOE);
    b.output("sel", sel!);
    b.output("hot", hot!);
    b.output("moe", m!);
    const g = b.build();
    expect(verifyProblems(g)).toEqual([]);
    const text = printGraph(g);
    expect(text).toMatch(/%\d+: f32\[seq, 2\], %\d+: i32\[seq, 2\] = topk %\d+ k=2 axis=-1/);
    expect(text).toMatch(/: bool\[seq, 2\] = greater /);
    expect(text).toMatch(/: f32\[seq, 6\] = moe %0, %1, %2, %3, %4 numExperts=4 topK=2 scoring=softmax normalizeTopK=true activation=silu/);
    expect(printGraph(parseGraph(serializeGraph(g)))).toBe(text);
  });
});
