// recognize-moe: a mixture of experts written by hand (router -> softmax/sigmoid -> topk -> one-hot weighted sum of
// GatedMLP experts, + a shared expert) becomes one `moe` op computing the same function (random weights and inputs,
// rel L2 <= 1e-5, several seeds), and forms that differ are left alone with the reason. Also: the MoE module traces to
// the same op, and the hand-written form and the module agree when given the same weights.

import { describe, expect, it } from "vitest";
import { linear } from "../../dsl/functional.ts";
import { GatedMLP } from "../../dsl/modules/mlp.ts";
import { MoE } from "../../dsl/modules/moe.ts";
import { Module } from "../../dsl/module.ts";
import { Parameter } from "../../dsl/parameter.ts";
import type { Tensor } from "../../dsl/tensor.ts";
import { type TraceInput, traceModule } from "../../dsl/trace.ts";
import { runGraph } from "../../interp/run.ts";
import { relL2, tensor, type RTensor } from "../../interp/tensor.ts";
import { checkEquivalence, rng } from "../../interp/equivalence.ts";
import { runPasses } from "../manager.ts";
import { RECOGNIZE_MOE } from "../default-passes.ts";
import { applyAndCheck } from "../testing.ts";

const H = 8;
const X: TraceInput[] = [{ name: "x", dtype: "f32", shape: ["batch", "seq", H] }];

interface HandOpts {
  experts?: number;
  topK?: number;
  renormalize?: "sum" | "none" | "max";
  scoring?: "softmax" | "sigmoid";
  skipExpert?: number;
  shared?: "none" | "plain" | "gated";
  castRouter?: boolean;
}

/** A mixture of experts written from routing ops and GatedMLPs, the form docs/moe.md shows. */
class HandMoE extends Module {
  readonly router: Parameter;
  readonly experts: GatedMLP[];
  readonly shared?: GatedMLP;
  readonly sharedGate?: Parameter;

  constructor(private readonly o: HandOpts) {
    super();
    this.router = new Parameter([o.experts ?? 4, H]);
    this.experts = Array.from({ length: o.experts ?? 4 }, () => new GatedMLP(H, 6, "silu"));
    if (o.shared && o.shared !== "none") this.shared = new GatedMLP(H, 5, "silu");
    if (o.shared === "gated") this.sharedGate = new Parameter([1, H]);
  }

  forward(x: Tensor): Tensor {
    const e = this.experts.length;
    let logits = linear(x, this.router);
    if (this.o.castRouter) logits = logits.cast("f32");
    const scores = this.o.scoring === "sigmoid" ? logits.sigmoid() : logits.softmax(-1);
    let [w, idx] = scores.topk(this.o.topK ?? 2);
    if (this.o.renormalize === "sum") w = w.div(w.sum(-1));
    if (this.o.renormalize === "max") w = w.div(w.max(-1));
    const dense = idx
      .oneHot(e)
      .mul(w.reshape([...w.shape, 1]))
      .sum(-2, false);
    let out: Tensor | undefined;
    this.experts.forEach((mlp, i) => {
      if (i === this.o.skipExpert) return;
      const term = mlp.forward(x).mul(dense.slice(-1, i, i + 1));
      out = out ? out.add(term) : term;
    });
    if (this.shared) {
      const s = this.shared.forward(x);
      out = out!.add(this.sharedGate ? s.mul(linear(x, this.sharedGate).sigmoid()) : s);
    }
    return out!;
  }
}

const trace = (m: Module) => traceModule(m, "moe", X);

describe("recognize-moe", () => {
  const cases: [string, HandOpts, Record<string, unknown>][] = [
    ["Mixtral-style (softmax, renormalized top-2 of 4)", { renormalize: "sum" }, { normalizeTopK: true, scoring: "softmax", topK: 2, numExperts: 4 }],
    ["Qwen2-MoE-style (top-3 of 5, not renormalized)", { experts: 5, topK: 3, renormalize: "none" }, { normalizeTopK: false, topK: 3, numExperts: 5 }],
    ["sigmoid scoring with a cast router", { scoring: "sigmoid", castRouter: true, renormalize: "sum" }, { scoring: "sigmoid", normalizeTopK: true }],
  ];
  for (const [name, opts, attrs] of cases)
    it(`${name}: one moe op, same function`, () => {
      const r = applyAndCheck(trace(new HandMoE(opts)), [RECOGNIZE_MOE]);
      expect(r.counts).toEqual({ moe: 1 });
      expect(r.graph.nodes[0]!.attrs).toMatchObject({ activation: "silu", ...attrs });
      expect(r.graph.params.map((p) => p.name).sort()).toEqual(["experts.down", "experts.gate", "experts.up", "router"]);
      expect(r.equivalence).toMatchObject({ ok: true });
    });

  it("the equivalence check would catch a wrong routing attribute (planted bug)", () => {
    const g = trace(new HandMoE({ renormalize: "sum" }));
    const r = runPasses(g, [RECOGNIZE_MOE]);
    const planted = { ...r.graph, nodes: r.graph.nodes.map((n) => (n.op === "moe" ? { ...n, attrs: { ...n.attrs, normalizeTopK: false } } : n)) };
    expect(checkEquivalence(g, r.graph, r.params).ok).toBe(true);
    expect(checkEquivalence(g, planted, r.params).ok).toBe(false);
  });

  it("folds a shared expert, plain or behind a sigmoid gate", () => {
    const plain = applyAndCheck(trace(new HandMoE({ renormalize: "none", shared: "plain" })), [RECOGNIZE_MOE]);
    expect([plain.counts, plain.graph.nodes[0]!.inputs.length, plain.equivalence.ok]).toEqual([{ moe: 1 }, 8, true]);
    const gated = applyAndCheck(trace(new HandMoE({ renormalize: "none", shared: "gated" })), [RECOGNIZE_MOE]);
    expect([gated.counts, gated.graph.nodes[0]!.inputs.length, gated.equivalence.ok]).toEqual([{ moe: 1 }, 9, true]);
  });

  it("leaves a different renormalization alone (w / max(w) is not w / sum(w)), saying why", () => {
    const r = applyAndCheck(trace(new HandMoE({ renormalize: "max" })), [RECOGNIZE_MOE]);
    expect(r.counts.moe).toBeUndefined();
    expect(r.nearMisses).toContain(
      "recognize-moe(silu): check rejected: the routing weights are neither the top-k scores nor the top-k scores divided by their sum",
    );
    expect(r.equivalence).toMatchObject({ ok: true });
  });

  it("leaves a sum that misses an expert alone", () => {
    const r = applyAndCheck(trace(new HandMoE({ renormalize: "sum", skipExpert: 2 })), [RECOGNIZE_MOE]);
    expect(r.counts.moe).toBeUndefined();
    expect(r.nearMisses).toContainEqual(
      expect.stringMatching(/^recognize-moe\(silu\): check rejected: the sum has experts \[0, 1, 3\], a mixture needs each of 0\.\.3 once/),
    );
  });
});

/** Deterministic weights for every parameter of a graph. */
function weightsFor(g: ReturnType<typeof trace>, seed: number): Map<string, RTensor> {
  const next = rng(seed);
  return new Map(
    g.params.map((p) => {
      const shape = g.values.get(p.value)!.shape as number[];
      return [
        p.name,
        tensor(
          "f32",
          shape,
          Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => next()),
        ),
      ];
    }),
  );
}

describe("the MoE module", () => {
  it("traces to one moe op with stacked expert weights", () => {
    const g = trace(new MoE({ hidden: H, expertFfn: 6, numExperts: 4, topK: 2, normalizeTopK: true, sharedFfn: 5, sharedExpertGate: true }));
    expect(g.nodes.map((n) => n.op)).toEqual(["moe"]);
    expect(Object.fromEntries(g.params.map((p) => [p.name, g.values.get(p.value)!.shape]))).toEqual({
      "router.weight": [4, H],
      "experts.gate": [4, 6, H],
      "experts.up": [4, 6, H],
      "experts.down": [4, H, 6],
      "shared.gate.weight": [5, H],
      "shared.up.weight": [5, H],
      "shared.down.weight": [H, 5],
      "sharedExpertGate.weight": [1, H],
    });
    expect(() => new MoE({ hidden: H, expertFfn: 6, numExperts: 4, topK: 5, normalizeTopK: true })).toThrow(/MoE topK must be in 1\.\.numExperts \(4\), got 5/);
  });

  it("computes what the hand-written form computes with the same weights", () => {
    const hand = trace(new HandMoE({ renormalize: "none", shared: "gated" }));
    const mod = trace(new MoE({ hidden: H, expertFfn: 6, numExperts: 4, topK: 2, normalizeTopK: false, sharedFfn: 5, sharedExpertGate: true }));
    const w = weightsFor(hand, 3);
    const stack = (what: string) => {
      const parts = [0, 1, 2, 3].map((e) => w.get(`experts.${e}.${what}.weight`)!);
      return tensor("f32", [4, ...parts[0]!.shape], Float32Array.from(parts.flatMap((t) => [...t.data])));
    };
    const modWeights = new Map([
      ["router.weight", w.get("router")!],
      ["experts.gate", stack("gate")],
      ["experts.up", stack("up")],
      ["experts.down", stack("down")],
      ["shared.gate.weight", w.get("shared.gate.weight")!],
      ["shared.up.weight", w.get("shared.up.weight")!],
      ["shared.down.weight", w.get("shared.down.weight")!],
      ["sharedExpertGate.weight", w.get("sharedGate")!],
    ]);
    const next = rng(9);
    const x = new Map([
      [
        "x",
        tensor(
          "f32",
          [2, 3, H],
          Float32Array.from({ length: 2 * 3 * H }, () => next()),
        ),
      ],
    ]);
    const [a] = runGraph(hand, x, w).values();
    const [b] = runGraph(mod, x, modWeights).values();
    expect(relL2(b!.data, a!.data)).toBeLessThan(1e-6);
  });
});
