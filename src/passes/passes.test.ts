// Every pass: it fires where it should (op counts), the result computes the same function (random inputs and
// weights over several seeds, rel L2 <= 1e-5), and it does not fire where it must not, saying why.

import { describe, expect, it } from "vitest";
import { attention, linear } from "../dsl/functional.ts";
import { Attention } from "../dsl/modules/attention.ts";
import { GatedMLP } from "../dsl/modules/mlp.ts";
import { Parameter } from "../dsl/parameter.ts";
import type { Tensor } from "../dsl/tensor.ts";
import type { TraceInput } from "../dsl/trace.ts";
import { CSE, DCE, FOLD_SHAPES } from "./cleanup.ts";
import { FUSE_QKV } from "./fuse-qkv.ts";
import { HintError } from "./hints.ts";
import { printGraph } from "../ir/print.ts";
import { runPasses } from "./manager.ts";
import { keepParams, type Pass, PassError } from "./pass.ts";
import { FOLD_BIAS_ADD, FUSE_GATED_MLP, RECOGNIZE_ATTENTION, RECOGNIZE_LINEAR, RECOGNIZE_NORMS } from "./default-passes.ts";
import { applyAndCheck, traceFn } from "./testing.ts";

const X: TraceInput[] = [{ name: "x", dtype: "f32", shape: ["batch", "seq", 8] }];
const params = (shapes: Record<string, number[]>) => (m: any) => Object.entries(shapes).forEach(([k, s]) => (m[k] = new Parameter(s)));

describe("recognize-linear and fold-bias", () => {
  const g = traceFn(params({ w: [6, 8], b: [6] }), (m, x) => x.matmul(m.w.transpose([1, 0])).add(m.b), X);

  it("turns x @ W^T + b into one biased linear", () => {
    const r = applyAndCheck(g, [RECOGNIZE_LINEAR, FOLD_BIAS_ADD]);
    expect(r.counts).toEqual({ linear: 1 });
    expect(r.graph.nodes[0]!.inputs).toHaveLength(3);
    expect(r.equivalence).toMatchObject({ ok: true });
  });

  it("folds a bias added on the left too (add is commutative)", () => {
    const h = traceFn(params({ w: [6, 8], b: [6] }), (m, x) => m.b.add(linear(x, m.w)), X);
    expect(applyAndCheck(h, [FOLD_BIAS_ADD]).counts).toEqual({ linear: 1 });
  });

  it("does not fold a bias of the wrong shape, and says why", () => {
    const h = traceFn(params({ w: [6, 8], b: [1] }), (m, x) => linear(x, m.w).add(m.b), X);
    const r = applyAndCheck(h, [FOLD_BIAS_ADD]);
    expect(r.counts).toEqual({ add: 1, linear: 1 });
    expect(r.nearMisses).toEqual(["fold-bias-add-into-linear: check rejected: bias shape [1] is not [out] of weight [6,8]"]);
  });

  it("does not treat x @ y^T as a linear when y is not a parameter", () => {
    const h = traceFn(
      () => {},
      (_m, x, y) => x.matmul(y!.transpose([1, 0])),
      [...X, { name: "y", dtype: "f32", shape: [6, 8] }],
    );
    expect(applyAndCheck(h, [RECOGNIZE_LINEAR]).counts).toEqual({ matmul: 1, transpose: 1 });
  });
});

describe("recognize-norms", () => {
  const rmsVariants: [string, (x: Tensor, w: Tensor) => Tensor][] = [
    ["pow + rsqrt", (x, w) => x.mul(x.pow(2).mean(-1, true).add(1e-5).rsqrt()).mul(w)],
    ["x*x + rsqrt", (x, w) => x.mul(x.mul(x).mean(2, true).add(1e-5).rsqrt()).mul(w)],
    ["div sqrt, weight first", (x, w) => w.mul(x.div(x.pow(2).mean(-1, true).add(1e-6).sqrt()))],
  ];
  for (const [name, f] of rmsVariants)
    it(`recognizes RMSNorm written as ${name}`, () => {
      const r = applyAndCheck(
        traceFn(params({ w: [8] }), (m, x) => f(x, m.w), X),
        [RECOGNIZE_NORMS],
      );
      expect(r.counts).toEqual({ rms_norm: 1 });
      expect(r.equivalence).toMatchObject({ ok: true });
    });

  it("keeps the epsilon value it matched", () => {
    const r = applyAndCheck(
      traceFn(params({ w: [8] }), (m, x) => rmsVariants[2]![1](x, m.w), X),
      [RECOGNIZE_NORMS],
    );
    expect(r.graph.nodes[0]!.attrs).toEqual({ eps: 1e-6 });
  });

  it("does not fire when epsilon is added after the rsqrt (a different function)", () => {
    const g = traceFn(params({ w: [8] }), (m, x) => x.mul(x.pow(2).mean(-1, true).rsqrt().add(1e-5)).mul(m.w), X);
    const r = applyAndCheck(g, [RECOGNIZE_NORMS]);
    expect(r.counts.rms_norm).toBeUndefined();
    expect(r.equivalence).toMatchObject({ ok: true, worst: 0 });
  });

  it("does not fire when the mean runs over the wrong axis", () => {
    const g = traceFn(params({ w: [8] }), (m, x) => x.mul(x.pow(2).mean(1, true).add(1e-5).rsqrt()).mul(m.w), X);
    expect(applyAndCheck(g, [RECOGNIZE_NORMS]).counts.rms_norm).toBeUndefined();
  });

  it("recognizes LayerNorm with and without bias", () => {
    const ln = (x: Tensor, eps: number) => {
      const c = x.sub(x.mean(-1, true));
      return c.mul(c.pow(2).mean(-1, true).add(eps).rsqrt());
    };
    const withBias = applyAndCheck(
      traceFn(params({ w: [8], b: [8] }), (m, x) => ln(x, 1e-5).mul(m.w).add(m.b), X),
      [RECOGNIZE_NORMS],
    );
    expect(withBias.counts).toEqual({ layer_norm: 1 });
    expect(withBias.equivalence).toMatchObject({ ok: true });
    const noBias = applyAndCheck(
      traceFn(params({ w: [8] }), (m, x) => ln(x, 1e-5).mul(m.w), X),
      [RECOGNIZE_NORMS],
    );
    expect(noBias.counts).toEqual({ layer_norm: 1 });
    expect(noBias.equivalence).toMatchObject({ ok: true });
  });

  it("does not take an uncentered variance for LayerNorm", () => {
    const g = traceFn(params({ w: [8], b: [8] }), (m, x) => x.sub(x.mean(-1, true)).mul(x.pow(2).mean(-1, true).add(1e-5).rsqrt()).mul(m.w).add(m.b), X);
    expect(applyAndCheck(g, [RECOGNIZE_NORMS]).counts.layer_norm).toBeUndefined();
  });

  it("is switched off by the norms hint", () => {
    const g = traceFn(
      (m) => {
        params({ w: [8] })(m);
        m.hints = { fuse: { norms: false } };
      },
      (m, x) => x.mul(x.pow(2).mean(-1, true).add(1e-5).rsqrt()).mul(m.w),
      X,
    );
    const r = applyAndCheck(g, [RECOGNIZE_NORMS]);
    expect(r.counts.rms_norm).toBeUndefined();
    expect(r.nearMisses[0]).toMatch(/disabled by hint fuse\.norms=false/);
  });
});

describe("recognize-attention", () => {
  const QKV: TraceInput[] = [
    { name: "q", dtype: "f32", shape: ["batch", "seq", 4, 2] },
    { name: "k", dtype: "f32", shape: ["batch", "seq", 2, 2] },
    { name: "v", dtype: "f32", shape: ["batch", "seq", 2, 2] },
  ];
  const sdpa = (q: Tensor, k: Tensor, v: Tensor, { mask = true, div = false, rep = 2 } = {}) => {
    const kh = k.repeatInterleave(rep, 2).swap(1, 2);
    const vh = v.repeatInterleave(rep, 2).swap(1, 2);
    let s = q.swap(1, 2).matmul(kh.swap(2, 3));
    s = div ? s.div(Math.SQRT2) : s.mul(Math.SQRT1_2);
    return (mask ? s.causalMask() : s).softmax(-1).matmul(vh).swap(1, 2);
  };
  const pipeline = [FOLD_SHAPES, RECOGNIZE_ATTENTION];

  for (const div of [false, true])
    it(`recognizes causal GQA attention with the scale as a ${div ? "division" : "multiplication"}`, () => {
      const r = applyAndCheck(
        traceFn(
          () => {},
          (_m, q, k, v) => sdpa(q!, k!, v!, { div }),
          QKV,
        ),
        pipeline,
      );
      expect(r.counts).toEqual({ attention: 1 });
      expect(r.graph.nodes[0]!.attrs.causal).toBe(true);
      expect(r.graph.nodes[0]!.attrs.scale).toBeCloseTo(Math.SQRT1_2, 15);
      expect(r.graph.values.get(r.graph.nodes[0]!.inputs[1]!)!.shape).toEqual(["batch", "seq", 2, 2]);
      expect(r.equivalence).toMatchObject({ ok: true });
    });

  it("does not turn attention without a causal mask into causal attention", () => {
    const r = applyAndCheck(
      traceFn(
        () => {},
        (_m, q, k, v) => sdpa(q!, k!, v!, { mask: false }),
        QKV,
      ),
      pipeline,
    );
    expect(r.counts.attention).toBeUndefined();
    expect(r.nearMisses.some((m) => /expected causal_mask, found mul/.test(m))).toBe(true);
    expect(r.equivalence).toMatchObject({ ok: true });
  });

  it("recognizes plain multi-head attention (no repeats)", () => {
    const mha: TraceInput[] = QKV.map((i) => ({ ...i, shape: ["batch", "seq", 4, 2] }));
    const r = applyAndCheck(
      traceFn(
        () => {},
        (_m, q, k, v) => sdpa(q!, k!, v!, { rep: 1 }),
        mha,
      ),
      [CSE, DCE, ...pipeline],
    );
    expect(r.counts.attention).toBe(1);
    expect(r.equivalence).toMatchObject({ ok: true });
  });
});

describe("fuse-qkv", () => {
  const H: TraceInput[] = [...X, { name: "pos", dtype: "i32", shape: ["batch", "seq"] }];
  const attn =
    (opts: object = {}) =>
    (m: any) =>
      (m.attn = new Attention({ hidden: 8, heads: 4, kvHeads: 2, rope: { style: "neox", rotaryDim: 2, theta: 1e4, scaling: null }, ...opts }));

  it("merges q, k, v into one GEMM whose weight is concat0(q, k, v) in the weight map", () => {
    const g = traceFn(attn({ qkvBias: true }), (m, x, pos) => m.attn.forward(x, pos), H);
    const r = runPasses(g, [FUSE_QKV]);
    const linears = r.graph.nodes.filter((n) => n.op === "linear");
    expect(linears).toHaveLength(2);
    expect(linears[0]!.meta).toEqual({ trtllm: "Attention.qkv (fused QKV ColumnLinear)" });
    expect(r.params["attn.qkv.weight"]).toEqual({
      op: "concat",
      dim: 0,
      xs: [{ source: "attn.q.weight" }, { source: "attn.k.weight" }, { source: "attn.v.weight" }],
    });
    expect(r.graph.values.get(r.graph.params.find((p) => p.name === "attn.qkv.bias")!.value)!.shape).toEqual([16]);
    expect(applyAndCheck(g, [FUSE_QKV]).equivalence).toMatchObject({ ok: true });
  });

  it("leaves projections of different inputs alone", () => {
    const g = traceFn(
      params({ wq: [8, 8], wk: [4, 8], wv: [4, 8] }),
      (m, x, y) => {
        const r4 = (t: Tensor, h: number) => t.reshape([t.dim(0), t.dim(1), h, 2]);
        return attention(r4(linear(x, m.wq), 4), r4(linear(y!, m.wk), 2), r4(linear(y!, m.wv), 2), { causal: true, scale: 1 });
      },
      [...X, { name: "y", dtype: "f32", shape: ["batch", "seq", 8] }],
    );
    const r = applyAndCheck(g, [FUSE_QKV]);
    expect(r.counts.linear).toBe(3);
    expect(r.nearMisses).toEqual(["fuse-qkv: q, k and v project different inputs"]);
  });

  it("is switched off per module by the qkv hint", () => {
    const g = traceFn(
      (m) => {
        attn()(m);
        m.attn.hints = { fuse: { qkv: false } };
      },
      (m, x, pos) => m.attn.forward(x, pos),
      H,
    );
    const r = applyAndCheck(g, [FUSE_QKV]);
    expect(r.counts.linear).toBe(4);
    expect(r.nearMisses).toEqual(["fuse-qkv: disabled by hint fuse.qkv=false"]);
  });
});

describe("fuse-gated-mlp", () => {
  it("fuses gate and up into one [up; gate] GEMM with gated_activation", () => {
    const g = traceFn(
      (m) => (m.mlp = new GatedMLP(8, 12, "silu", { bias: true })),
      (m, x) => m.mlp.forward(x),
      X,
    );
    const r = runPasses(g, [FUSE_GATED_MLP]);
    expect(r.graph.nodes.map((n) => n.op)).toEqual(["linear", "gated_activation", "linear"]);
    expect(r.params["mlp.fused_gate_up.weight"]).toEqual({ op: "concat", dim: 0, xs: [{ source: "mlp.up.weight" }, { source: "mlp.gate.weight" }] });
    expect(applyAndCheck(g, [FUSE_GATED_MLP]).equivalence).toMatchObject({ ok: true });
  });

  it("fuses GELU-gated MLPs too, and leaves different inputs alone", () => {
    const gelu = traceFn(
      (m) => (m.mlp = new GatedMLP(8, 12, "gelu_new")),
      (m, x) => m.mlp.forward(x),
      X,
    );
    const r = applyAndCheck(gelu, [FUSE_GATED_MLP]);
    expect(r.graph.nodes.find((n) => n.op === "gated_activation")!.attrs).toEqual({ act: "gelu_tanh" });
    expect(r.equivalence).toMatchObject({ ok: true });
    const two = traceFn(params({ wg: [12, 8], wu: [12, 8] }), (m, x, y) => linear(x, m.wg).silu().mul(linear(y!, m.wu)), [
      ...X,
      { name: "y", dtype: "f32", shape: ["batch", "seq", 8] },
    ]);
    expect(applyAndCheck(two, [FUSE_GATED_MLP]).counts.gated_activation).toBeUndefined();
  });
});

describe("cleanup passes", () => {
  it("CSE merges repeated computations and DCE drops unused ones", () => {
    const g = traceFn(
      params({ w: [8] }),
      (m, x) => {
        x.exp(); // dead
        return x.mul(m.w).add(x.mul(m.w));
      },
      X,
    );
    const r = applyAndCheck(g, [DCE, CSE]);
    expect(r.counts).toEqual({ add: 1, mul: 1 });
    expect(r.equivalence).toMatchObject({ ok: true });
  });

  it("folds reshape chains, identity reshapes and transpose pairs", () => {
    const g = traceFn(
      () => {},
      (_m, x) =>
        x
          .reshape([x.dim(0), x.dim(1), 2, 4])
          .reshape([x.dim(0), x.dim(1), 8])
          .reshape([x.dim(0), x.dim(1), 8])
          .swap(0, 1)
          .swap(0, 1)
          .exp(),
      X,
    );
    const r = applyAndCheck(g, [FOLD_SHAPES]);
    expect(r.counts).toEqual({ exp: 1 });
    expect(r.equivalence).toMatchObject({ ok: true });
  });
});

describe("hints", () => {
  it("rejects contradictory plugin hints before any pass runs", () => {
    const g = traceFn(
      (m) => {
        m.hints = { plugins: { gptAttention: false, pagedKvCache: true } };
        params({ w: [8] })(m);
      },
      (m, x) => x.mul(m.w),
      X,
    );
    expect(() => runPasses(g, [])).toThrow(HintError);
    expect(() => runPasses(g, [])).toThrow(/plugins\.pagedKvCache needs the GPT attention plugin, but plugins\.gptAttention is false/);
  });
});

describe("pass manager verification", () => {
  const g = traceFn(params({ w: [6, 8], b: [6] }), (m, x) => x.matmul(m.w.transpose([1, 0])).add(m.b), X);
  /** Drops the graph's first node, so a later node reads a value nothing defines. */
  const BREAK: Pass = {
    name: "break",
    description: "drops a node",
    run: (h) => ({ graph: { ...h, nodes: h.nodes.slice(1) }, params: keepParams(h), rewrites: 1, nearMisses: [] }),
  };
  /** A pass that crashes on a graph with undefined values, as a real pass may. */
  const TRIP: Pass = {
    name: "trip",
    description: "crashes on dangling values",
    run: (h) => {
      const defined = new Set([...h.inputs.map((i) => i.value), ...h.params.map((p) => p.value), ...h.nodes.flatMap((n) => n.outputs)]);
      if (h.nodes.some((n) => n.inputs.some((v) => !defined.has(v)))) throw new TypeError("cannot read the producer of an undefined value");
      return { graph: h, params: keepParams(h), rewrites: 0, nearMisses: [] };
    },
  };

  it("names the pass that broke the graph, also when a later pass crashes on it first", () => {
    expect(() => runPasses(g, [RECOGNIZE_LINEAR, BREAK, CSE])).toThrow(/^pass 'break' produced an invalid graph: /);
    expect(() => runPasses(g, [BREAK, TRIP])).toThrow(PassError);
    expect(() => runPasses(g, [BREAK, TRIP])).toThrow(/^pass 'break' produced an invalid graph: /);
    expect(() => runPasses(g, [BREAK], { verifyEach: true })).toThrow(/^pass 'break' produced an invalid graph: /);
  });

  it("a valid pipeline gives the same graph and log with or without verification after each pass", () => {
    const passes = [DCE, RECOGNIZE_LINEAR, FOLD_BIAS_ADD, CSE];
    const [lazy, eager] = [runPasses(g, passes), runPasses(g, passes, { verifyEach: true })];
    expect(printGraph(lazy.graph)).toBe(printGraph(eager.graph));
    expect(lazy.log.map((e) => [e.pass, e.before, e.after, e.rewrites])).toEqual(eager.log.map((e) => [e.pass, e.before, e.after, e.rewrites]));
  });
});
