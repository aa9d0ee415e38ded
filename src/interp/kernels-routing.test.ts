// The routing and MoE reference kernels (kernels-routing.ts) against numbers worked out by hand, with the tie rule
// and out-of-range indices pinned down.

import { describe, expect, it } from "vitest";
import { KERNELS } from "./kernels.ts";
import { f32, i32, type RTensor, tensor } from "./tensor.ts";

const ctx = { bindings: new Map<string, number>() };
const run = (op: keyof typeof KERNELS, ins: RTensor[], attrs: object = {}) =>
  (KERNELS[op] as (i: RTensor[], a: object, c: typeof ctx) => RTensor[])(ins, attrs, ctx);
const F = (shape: number[], ...v: number[]) => f32(shape, Float32Array.from(v));
const I = (shape: number[], ...v: number[]) => i32(shape, Int32Array.from(v));
const B = (shape: number[], ...v: number[]) => tensor("bool", shape, Int32Array.from(v));
const vals = (t: RTensor) => [...t.data];

describe("routing kernels", () => {
  it("topk: largest first, ties to the lower index, along any axis", () => {
    const [v, i] = run("topk", [F([1, 4], 3, 1, 3, 2)], { k: 2, axis: -1 });
    expect([vals(v!), vals(i!), i!.dtype]).toEqual([[3, 3], [0, 2], "i32"]);
    const [v0, i0] = run("topk", [F([3, 2], 1, 5, 4, 2, 0, 6)], { k: 2, axis: 0 });
    expect([vals(v0!), vals(i0!), v0!.shape]).toEqual([
      [4, 6, 1, 5],
      [1, 2, 0, 0],
      [2, 2],
    ]);
  });

  it("argmax: first maximum", () => {
    expect(vals(run("argmax", [F([2, 3], 1, 7, 7, 9, 0, 2)], { axis: -1, keepDims: false })[0]!)).toEqual([1, 0]);
  });

  it("comparisons give bool with broadcasting", () => {
    const x = F([3], 1, 2, 3);
    const two = F([], 2);
    expect(vals(run("greater", [x, two])[0]!)).toEqual([0, 0, 1]);
    expect(vals(run("less", [x, two])[0]!)).toEqual([1, 0, 0]);
    const eq = run("equal", [x, two])[0]!;
    expect([vals(eq), eq.dtype]).toEqual([[0, 1, 0], "bool"]);
  });

  it("where picks per element, broadcasting a scalar branch", () => {
    expect(vals(run("where", [B([3], 1, 0, 1), F([3], 1, 2, 3), F([], 9)])[0]!)).toEqual([1, 9, 3]);
  });

  it("gather, index_select and one_hot index as torch does, and reject an index out of range", () => {
    const x = F([2, 3], 10, 11, 12, 20, 21, 22);
    expect(vals(run("gather", [x, I([2, 2], 2, 0, 1, 1)], { axis: 1 })[0]!)).toEqual([12, 10, 21, 21]);
    expect(vals(run("gather", [x, I([1, 3], 1, 0, 1)], { axis: 0 })[0]!)).toEqual([20, 11, 22]);
    expect(() => run("gather", [x, I([2, 1], 3, 0)], { axis: 1 })).toThrow(/gather: index 3 is out of range for an axis of 3/);
    expect(vals(run("index_select", [x, I([3], 1, 0, 1)], { axis: 0 })[0]!)).toEqual([20, 21, 22, 10, 11, 12, 20, 21, 22]);
    expect(vals(run("index_select", [x, I([1], 2)], { axis: 1 })[0]!)).toEqual([12, 22]);
    const hot = run("one_hot", [I([2], 2, 0)], { numClasses: 3, dtype: "f32" })[0]!;
    expect([vals(hot), hot.shape]).toEqual([
      [0, 0, 1, 1, 0, 0],
      [2, 3],
    ]);
    expect(() => run("one_hot", [I([1], 3)], { numClasses: 3, dtype: "f32" })).toThrow(/one_hot: index 3 is out of range/);
  });
});

describe("moe kernel", () => {
  // H = 2, I = 1, E = 3. x = [1, 0], so every projection reads its weight's first column.
  // Router logits [1, 0, 2]; softmax [0.244728, 0.090031, 0.665241]; top-2 = experts 2 then 0.
  // relu experts: e0 = relu(1) * 2 = 2 -> down [1, 0] -> [2, 0]; e2 = relu(3) * 1 = 3 -> down [0, 1] -> [0, 3];
  // e1 would add 25 * [7, 7] if it were (wrongly) picked.
  const x = F([1, 1, 2], 1, 0);
  const router = F([3, 2], 1, 0, 0, 0, 2, 0);
  const gate = F([3, 1, 2], 1, 0, 5, 0, 3, 0);
  const up = F([3, 1, 2], 2, 0, 5, 0, 1, 0);
  const down = F([3, 2, 1], 1, 0, 7, 7, 0, 1);
  const attrs = { numExperts: 3, topK: 2, scoring: "softmax", normalizeTopK: true, activation: "relu" };
  const moe = (ins: RTensor[], a: object = {}) => vals(run("moe", ins, { ...attrs, ...a })[0]!);

  it("routes to the top-k experts and weights them (renormalized, or not)", () => {
    // Renormalized: e^2 / (e^2 + e^1) = sigmoid(1) = 0.731059 and 0.268941.
    const out = moe([x, router, gate, up, down]);
    expect(out[0]).toBeCloseTo(2 * 0.268941, 5);
    expect(out[1]).toBeCloseTo(3 * 0.731059, 5);
    const raw = moe([x, router, gate, up, down], { normalizeTopK: false });
    expect(raw[0]).toBeCloseTo(2 * 0.244728, 5);
    expect(raw[1]).toBeCloseTo(3 * 0.665241, 5);
  });

  it("scores with sigmoid when asked", () => {
    // sigmoid(logits) = [0.731059, 0.5, 0.880797]: experts 2 and 0 again, weights unnormalized.
    const out = moe([x, router, gate, up, down], { scoring: "sigmoid", normalizeTopK: false });
    expect(out[0]).toBeCloseTo(2 * 0.731059, 5);
    expect(out[1]).toBeCloseTo(3 * 0.880797, 5);
  });

  it("adds the shared expert, scaled by its sigmoid gate when present", () => {
    // Shared: relu(1) * 1 = 1 -> down [1, 1]; gate sigmoid(0.5) = 0.622459.
    const sh = [F([1, 2], 1, 0), F([1, 2], 1, 0), F([2, 1], 1, 1)];
    const plain = moe([x, router, gate, up, down, ...sh]);
    expect(plain[0]).toBeCloseTo(2 * 0.268941 + 1, 5);
    expect(plain[1]).toBeCloseTo(3 * 0.731059 + 1, 5);
    const gated = moe([x, router, gate, up, down, ...sh, F([1, 2], 0.5, 0)]);
    expect(gated[0]).toBeCloseTo(2 * 0.268941 + 0.622459, 5);
    expect(gated[1]).toBeCloseTo(3 * 0.731059 + 0.622459, 5);
  });

  it("breaks a routing tie toward the lower expert index", () => {
    // Experts 0 and 1 get equal logits; top-1 must pick expert 0 ([2, 0]), not expert 1 (25 * [7, 7]).
    const tied = F([3, 2], 1, 0, 1, 0, 0, 0);
    expect(moe([x, tied, gate, up, down], { topK: 1 })).toEqual([2, 0]);
  });

  it("routes each token on its own", () => {
    // Token 2 = [0, 1]: every weight's second column is 0, so its output is 0 whatever the routing.
    const two = F([2, 2], 1, 0, 0, 1);
    const out = moe([two, router, gate, up, down]);
    expect(out.slice(2)).toEqual([0, 0]);
    expect(out[1]).toBeCloseTo(3 * 0.731059, 5);
  });
});
