// Multi-output fusions: the replacement takes over the root's output and the extra values; a match whose extra value
// is read before the root is left alone and reported.

import { describe, expect, it } from "vitest";
import type { Tensor } from "../dsl/tensor.ts";
import { tensor } from "../interp/tensor.ts";
import { pattern } from "../passes/pattern.ts";
import { applyAndCheck, traceFn } from "../passes/testing.ts";
import { defineOp } from "./custom-op.ts";
import { fusionPass, fusionRule } from "./fusion.ts";

// (a, b) -> (a + b, exp(a + b)): two outputs, like a fused residual add + norm.
const ADD_EXP = defineOp({
  name: "test.add_exp",
  doc: "s = a + b; (exp(s), s)",
  attrs: {},
  inputs: ["a", "b"],
  outputs: ["e", "s"],
  infer: ([a]) => [a!, a!],
  reference: ([a, b]) => {
    const s = Float32Array.from(a!.data, (v, i) => v + b!.data[i]!);
    return [tensor(a!.dtype, a!.shape, Float32Array.from(s, Math.exp)), tensor(a!.dtype, a!.shape, s)];
  },
});

const FUSE = fusionPass("fuse-add-exp", "exp(a + b) -> add_exp", [
  fusionRule({
    name: "add+exp",
    pattern: pattern("exp of a sum", { a: "value", b: "value" }, ({ a, b }) => a.add(b).exp()),
    alsoReplaces: (m) => [m.root.inputs[0]!],
    rewrite: ({ t }) => ADD_EXP.apply([t.a, t.b], {}),
    enables: "test",
  }),
]);

const trace = (fwd: (a: Tensor, b: Tensor) => Tensor) =>
  traceFn(
    () => {},
    (_m, a, b) => fwd(a!, b!),
    [
      { name: "a", dtype: "f32", shape: ["n", 3] },
      { name: "b", dtype: "f32", shape: ["n", 3] },
    ],
  );

describe("fusionPass", () => {
  it("replaces the root and the extra value, so the old sum disappears", () => {
    const out = applyAndCheck(
      trace((a, b) => {
        const s = a.add(b);
        return s.exp().mul(s.neg());
      }),
      [FUSE],
      0,
    );
    expect(out.counts).toEqual({ "test.add_exp": 1, neg: 1, mul: 1 });
    expect(out.equivalence).toMatchObject({ ok: true, worst: 0 });
    const fused = out.graph.nodes.find((n) => n.op === "test.add_exp")!;
    expect(fused.meta).toEqual({ trtllm: "test" });
    expect(out.graph.nodes.find((n) => n.op === "neg")!.inputs).toEqual([fused.outputs[1]]);
  });

  it("leaves a match alone when the extra value is read before the root, and says why", () => {
    const out = applyAndCheck(
      trace((a, b) => {
        const s = a.add(b);
        const early = s.neg();
        return s.exp().mul(early);
      }),
      [FUSE],
      0,
    );
    expect(out.counts).toEqual({ add: 1, neg: 1, exp: 1, mul: 1 });
    expect(out.nearMisses).toEqual([
      expect.stringMatching(/^add\+exp: check rejected: %\d+ is also read before the fused op's position \(by neg at .*fusion\.test\.ts:\d+/),
    ]);
  });

  it("fuses every match, including chained ones", () => {
    const out = applyAndCheck(
      trace((a, b) => a.add(b).exp().add(b).exp()),
      [FUSE],
      0,
    );
    expect(out.counts).toEqual({ "test.add_exp": 2 });
    expect(out.equivalence.ok).toBe(true);
  });
});
