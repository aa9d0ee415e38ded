// ONNX export: every stage of every fixture model encodes to a ModelProto that decodes with the vendored onnx.proto
// and is well formed (each node input defined before use, one ValueInfo per IR value, custom ops in the kiln
// domains with typed attributes, source lines in doc strings). The standard-op part runs in onnxruntime-node and
// matches the interpreter: a graph holding every standard lowering, and the standard prefix of each real model.

import { beforeAll, describe, expect, it } from "vitest";
import { FIXTURE_MODELS, FIXTURES } from "../../test/golden.ts";
import { GraphBuilder, type Graph, type Node, type ValueId } from "../ir/graph.ts";
import { runGraph } from "../interp/run.ts";
import { relL2, type RTensor, tensor } from "../interp/tensor.ts";
import { causalInputs } from "../interp/causal-lm.ts";
import { importModelFile } from "../driver/load-model-file.ts";
import { loadModelStages, loadStageWeights, STAGES } from "./model-stages.ts";
import { customOpName, isStandardNode, ONNX_OPSET, reshapeTarget, STANDARD_OPS, toOnnxBytes } from "./onnx.ts";
import { decodeOnnxModel, type OnnxModel } from "./onnx-proto.ts";

type Ort = typeof import("onnxruntime-node");
let ort: Ort | undefined;
try {
  ort = await import("onnxruntime-node");
} catch (e) {
  console.warn(`SKIPPED onnxruntime-node cross-checks: onnxruntime-node is not installed (${(e as Error).message.split("\n")[0]})`);
}

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

/** Every node input is a graph input, an initializer or an earlier node's output; every output is defined once. */
function checkWellFormed(m: OnnxModel): void {
  const defined = new Set([...m.graph.input.map((i) => i.name), ...(m.graph.initializer ?? []).map((t) => t.name!)]);
  for (const n of m.graph.node) {
    for (const i of n.input) expect(defined.has(i), `${n.name} reads undefined '${i}'`).toBe(true);
    for (const o of n.output) {
      expect(defined.has(o), `${o} defined twice`).toBe(false);
      defined.add(o);
    }
  }
  for (const o of m.graph.output) expect(defined.has(o.name)).toBe(true);
}

describe("ONNX export of the fixture models", () => {
  for (const { fixture, model } of FIXTURE_MODELS)
    it(`${fixture}: all stages decode as onnx.ModelProto and are well formed`, async () => {
      const stages = await loadModelStages(await importModelFile(`models/${model}.ts`), { hfDir: `${FIXTURES}${fixture}` });
      for (const stage of STAGES) {
        const g = stages.graph(stage);
        const m = decodeOnnxModel(toOnnxBytes(g));
        expect(m.ir_version).toBe(11);
        expect(m.opset_import).toContainEqual({ domain: "", version: ONNX_OPSET });
        expect(m.graph.name).toBe(g.name);
        checkWellFormed(m);
        // Parameters are graph inputs without --with-weights; every IR value has a typed ValueInfo.
        expect(m.graph.input.map((i) => i.name)).toEqual([...g.inputs, ...g.params].map((x) => x.name));
        expect(m.graph.value_info.length + m.graph.output.length).toBe(g.nodes.reduce((s, n) => s + n.outputs.length, 0));
        expect(m.graph.input[0]!.type.tensor_type.shape.dim).toEqual([{ dim_param: "batch" }, { dim_param: "seq" }]);
        const logits = m.graph.output.find((o) => o.name === "logits")!;
        expect(logits.type.tensor_type.shape.dim.at(-1)).toEqual({ dim_value: 512 });
        // Custom ops live in declared kiln domains; the rest is standard.
        const domains = new Set(m.graph.node.map((n) => n.domain ?? ""));
        for (const d of domains) expect(m.opset_import.some((o) => o.domain === d)).toBe(true);
        const custom = g.nodes.filter((n) => !isStandardNode(g, n));
        expect(m.graph.node.filter((n) => n.domain).length).toBe(custom.length);
        if (stage === "trtllm") {
          const att = m.graph.node.find((n) => n.op_type === "Attention" && n.domain === "kiln.trtllm")!;
          const a = Object.fromEntries(att.attribute!.map((x) => [x.name, x]));
          const src = g.nodes.find((n) => n.op === "trtllm.attention")!;
          expect(a.heads!.i).toBe(src.attrs.heads);
          expect(a.scale!.f).toBeCloseTo(src.attrs.scale as number, 6);
          expect(text(a.rope!.s)).toBe(src.attrs.rope);
          expect(a.qkvBias!.i).toBe(src.attrs.qkvBias ? 1 : 0);
          expect(att.doc_string).toMatch(/module transformer\.layers\.0\.attention\nat src\/dsl\/modules\/linear\.ts:\d+:\d+\ntrtllm: Attention/);
        }
        if (stage === "traced") expect(m.graph.node.some((n) => n.domain === "kiln" && n.op_type === "Attention")).toBe(true);
      }
    });

  it("embeds weights as initializers with --with-weights", async () => {
    const dir = `${FIXTURES}llama`;
    const stages = await loadModelStages(await importModelFile("models/llama.ts"), { hfDir: dir });
    const weights = await loadStageWeights(stages, "trtllm", dir);
    const g = stages.graph("trtllm");
    const m = decodeOnnxModel(toOnnxBytes(g, { weights }));
    expect(m.graph.input.map((i) => i.name)).toEqual(["input_ids", "position_ids"]);
    const qkv = m.graph.initializer.find((t) => t.name === "transformer.layers.1.attention.qkv.weight")!;
    expect(qkv.dims).toEqual([192, 64]);
    const data = new Float32Array(Uint8Array.from(qkv.raw_data!).buffer);
    expect(data).toEqual(weights.get("transformer.layers.1.attention.qkv.weight")!.data);
  });
});

describe("ONNX pieces", () => {
  it("names custom ops by domain", () => {
    expect(customOpName("attention")).toEqual({ domain: "kiln", opType: "Attention" });
    expect(customOpName("trtllm.gated_mlp")).toEqual({ domain: "kiln.trtllm", opType: "GatedMlp" });
  });
  it("writes reshape targets with 0 (copy) and at most one -1", () => {
    expect(reshapeTarget(["batch", "seq", 64], ["batch", "seq", 4, 16])).toEqual([0, 0, 4, 16]);
    expect(reshapeTarget(["batch", "seq", 4, 16], ["batch", 64, "seq"])).toEqual([0, 64, -1]);
    expect(reshapeTarget(["a", "b"], ["b", "a"])).toBeUndefined();
  });
});

// ---- onnxruntime-node cross-checks -------------------------------------------------------------------------------

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

/** A graph exercising every standard lowering, with concrete batch so the interpreter and ORT see the same data. */
function everyStandardOp(): { g: Graph; covered: Set<string> } {
  const b = new GraphBuilder("standard_ops");
  const covered = new Set<string>();
  const op = (name: string, ins: ValueId[], attrs: Record<string, unknown> = {}) => {
    covered.add(name);
    return b.node(name, ins, attrs);
  };
  const x = b.input("x", { dtype: "f32", shape: ["batch", 4, 6] });
  const ids = b.input("ids", { dtype: "i32", shape: ["batch", 4] });
  const table = b.param("table", { dtype: "f32", shape: [10, 6] });
  const w = b.param("w", { dtype: "f32", shape: [8, 6] });
  const bias = b.param("bias", { dtype: "f32", shape: [8] });
  const m = b.param("m", { dtype: "f32", shape: [6, 5] });
  const gamma = b.param("gamma", { dtype: "f32", shape: [8] });
  const beta = b.param("beta", { dtype: "f32", shape: [8] });
  const [e] = op("embedding", [table, ids]);
  const [a] = op("add", [x, e!]);
  const [one] = op("constant", [], { value: 1, dtype: "f32" });
  const [half] = op("cast", [op("cast", [a!], { dtype: "f16", island: "none" })[0]!], { dtype: "f32", island: "none" });
  const [pos] = op("add", [op("exp", [half!])[0]!, one!]);
  const [d] = op("div", [op("sub", [a!, op("neg", [x])[0]!])[0]!, pos!]);
  const [p] = op("pow", [op("sqrt", [pos!])[0]!, op("constant", [], { value: 3, dtype: "f32" })[0]!]);
  const [r] = op("mul", [op("rsqrt", [pos!])[0]!, op("tanh", [d!])[0]!]);
  const [acts] = op("add", [op("relu", [op("sigmoid", [r!])[0]!])[0]!, op("erf", [op("silu", [p!])[0]!])[0]!]);
  const [g1] = op("gelu", [acts!], { approximate: "none" });
  const [g2] = op("gelu", [g1!], { approximate: "tanh" });
  const [lin] = op("linear", [g2!, w, bias]);
  const [lin2] = op("linear", [g2!, w]);
  const [ln] = op("layer_norm", [lin!, gamma, beta], { eps: 1e-5 });
  const [ln0] = op("layer_norm", [lin2!], { eps: 1e-5 });
  const [rms] = op("rms_norm", [ln!, gamma], { eps: 1e-6 });
  const [rms0] = op("rms_norm", [ln0!], { eps: 1e-6 });
  const [mm] = op("matmul", [g2!, m]);
  const [sm] = op("softmax", [mm!], { axis: -1 });
  const [rs] = op("reshape", [rms!], { shape: ["batch", 4, 2, 4] });
  const [tr] = op("transpose", [rs!], { perm: [0, 2, 1, 3] });
  const [s0, s1] = op("split", [tr!], { axis: -1, sizes: [1, 3] });
  const [cat] = op("concat", [s1!, s0!], { axis: -1 });
  const [sl] = op("slice", [cat!], { axis: 2, start: 1, end: 3 });
  const [rm] = op("reduce_mean", [sl!], { axes: [-1], keepDims: true });
  const [rsum] = op("reduce_sum", [rms0!], { axes: [1], keepDims: false });
  const [rmax] = op("reduce_max", [sm!], { axes: [1, 2], keepDims: false });
  // Routing ops (issue 14): random scores have no ties, so TopK/ArgMax agree on indices with the interpreter.
  const [tv, ti] = op("topk", [mm!], { k: 2, axis: -1 });
  const [am] = op("argmax", [mm!], { axis: -1, keepDims: true });
  const [ga] = op("gather", [mm!, ti!], { axis: -1 });
  const [oh] = op("one_hot", [am!], { numClasses: 5, dtype: "f32" });
  const [isel] = op("index_select", [mm!, b.input("sel", { dtype: "i32", shape: [3] })], { axis: -1 });
  const [zero] = op("constant", [], { value: 0, dtype: "f32" });
  const [wh] = op("where", [op("greater", [mm!, zero!])[0]!, mm!, sm!]);
  const [lt] = op("less", [mm!, zero!]);
  const [eq] = op("equal", [ga!, tv!]);
  for (const [name, v] of Object.entries({ tv, ti, am, oh, isel, wh, lt, eq })) b.output(name, v!);
  b.output("sl", sl!);
  b.output("rm", rm!);
  b.output("rsum", rsum!);
  b.output("rmax", rmax!);
  b.output("sm", sm!);
  return { g: b.build(), covered };
}

function randomTensor(dtype: "f32" | "i32", shape: number[], next: () => number, maxInt = 10): RTensor {
  const n = shape.reduce((a, c) => a * c, 1);
  return dtype === "i32"
    ? tensor(
        "i32",
        shape,
        Int32Array.from({ length: n }, () => Math.floor(((next() + 1) / 2) * maxInt)),
      )
    : tensor("f32", shape, Float32Array.from({ length: n }, next));
}

const toOrt = (o: Ort, t: RTensor) => new o.Tensor(t.dtype === "i32" ? "int32" : "float32", t.data, [...t.shape]);

async function runOrt(o: Ort, g: Graph, weights: ReadonlyMap<string, RTensor>, inputs: ReadonlyMap<string, RTensor>): Promise<Record<string, Float32Array>> {
  const session = await o.InferenceSession.create(
    toOnnxBytes(g, { weights: new Map([...weights].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])) }),
    { logSeverityLevel: 3 },
  );
  const result = await session.run(Object.fromEntries([...inputs].map(([k, t]) => [k, toOrt(o, t)])));
  return Object.fromEntries(Object.entries(result).map(([k, t]) => [k, t.data as Float32Array]));
}

/** The nodes that become standard ONNX ops and read only graph inputs, parameters and each other. */
function standardPrefix(g: Graph): Graph {
  const avail = new Set<ValueId>([...g.inputs, ...g.params].map((x) => x.value));
  const kept: Node[] = [];
  for (const n of g.nodes)
    if (isStandardNode(g, n) && n.inputs.every((v) => avail.has(v))) {
      kept.push(n);
      n.outputs.forEach((o) => avail.add(o));
    }
  const used = new Set(kept.flatMap((n) => n.inputs));
  return {
    ...g,
    inputs: g.inputs.filter((i) => used.has(i.value)),
    params: g.params.filter((p) => used.has(p.value)),
    nodes: kept,
    outputs: kept.flatMap((n) => n.outputs.map((o) => ({ name: `v${o}`, value: o }))),
  };
}

describe.skipIf(!ort)("onnxruntime-node runs the standard ops like the interpreter", () => {
  beforeAll(() => expect(ort).toBeDefined());

  it("every standard lowering", async () => {
    const { g, covered } = everyStandardOp();
    expect([...covered].sort()).toEqual([...Object.keys(STANDARD_OPS), "reshape"].sort());
    expect(g.nodes.every((n) => isStandardNode(g, n))).toBe(true);
    const next = rng(7);
    const inputs = new Map([
      ["x", randomTensor("f32", [2, 4, 6], next)],
      ["ids", randomTensor("i32", [2, 4], next)],
      ["sel", randomTensor("i32", [3], next, 5)],
    ]);
    const weights = new Map(g.params.map((p) => [p.name, randomTensor("f32", g.values.get(p.value)!.shape as number[], next)]));
    const want = runGraph(g, inputs, weights);
    const got = await runOrt(ort!, g, weights, inputs);
    for (const [name, t] of want) {
      expect(got[name]!.length, name).toBe(t.data.length);
      expect(relL2(got[name]!, t.data as Float32Array), name).toBeLessThan(1e-6);
    }
  });

  for (const { fixture, model } of FIXTURE_MODELS)
    it(`the standard-op prefix of ${fixture} (traced and fused)`, async () => {
      const dir = `${FIXTURES}${fixture}`;
      const stages = await loadModelStages(await importModelFile(`models/${model}.ts`), { hfDir: dir });
      for (const stage of ["traced", "fused"] as const) {
        const g = stages.graph(stage);
        const weights = new Map([...(await loadStageWeights(stages, stage, dir))].map(([k, d]) => [k, tensor("f32", d.shape, d.data)]));
        const sub = standardPrefix(g);
        expect(sub.nodes.length).toBeGreaterThanOrEqual(4);
        const inputs = causalInputs([3, 17, 400, 5, 99]);
        const values = new Map<ValueId, RTensor>();
        runGraph(g, inputs, weights, { onNode: (n, outs) => n.outputs.forEach((o, k) => values.set(o, outs[k]!)) });
        const got = await runOrt(
          ort!,
          sub,
          new Map(sub.params.map((p) => [p.name, weights.get(p.name)!])),
          new Map(sub.inputs.map((i) => [i.name, inputs.get(i.name)!])),
        );
        for (const o of sub.outputs) expect(relL2(got[o.name]!, values.get(o.value)!.data as Float32Array), `${stage} ${o.name}`).toBeLessThan(1e-6);
      }
    });
});
