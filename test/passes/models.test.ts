// The default pipeline on whole models: each decoder layer ends up with the layer structure TensorRT-LLM builds
// (LLaMA: one QKV GEMM, one attention, one output GEMM, one fused gate/up GEMM, one down GEMM, two norms; GPT-2 and
// GPT-J likewise), a LLaMA written from primitives becomes the same fused graph as models/llama.ts, and the fused
// graphs still match the HF fixtures.

import { describe, expect, it } from "vitest";
import primitive from "../../examples/llama_from_primitives.ts";
import gpt2 from "../../models/gpt2.ts";
import gptj from "../../models/gptj.ts";
import llama from "../../models/llama.ts";
import type { ModelDefinition } from "../../src/dsl/define-model.ts";
import { CAUSAL_LM_INPUTS, traceModule } from "../../src/dsl/trace.ts";
import type { Graph, Node } from "../../src/ir/graph.ts";
import { causalLMLogits } from "../../src/interp/causal-lm.ts";
import { relL2 } from "../../src/interp/tensor.ts";
import { structuralSignature } from "../../src/passes/signature.ts";
import { instantiateFromDir, loadWeights } from "../../src/driver/instantiate.ts";
import { optimize } from "../../src/driver/optimize.ts";
import { readHFConfigJson, parseWith } from "../../src/weights/hf-config.ts";
import { FIXTURES, readGolden } from "../golden.ts";

const layerOf = (n: Node) => /^layers\.(\d+)/.exec(n.scope)?.[1];

/** Per layer: the ops, and the role of each GEMM (what feeds it / what it feeds). */
function layerStructure(g: Graph) {
  const def = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  const users = (n: Node) => g.nodes.filter((m) => m.inputs.includes(n.outputs[0]!));
  const role = (n: Node): string => {
    if (users(n).some((u) => u.op === "split")) return "qkv";
    if (users(n).some((u) => u.op === "gated_activation")) return "fused_gate_up";
    const src = def.get(n.inputs[0]!);
    const from = src?.op === "reshape" ? def.get(src.inputs[0]!)?.op : src?.op;
    return { attention: "dense", gated_activation: "down", gelu: "proj", mul: "down" }[from ?? ""] ?? "fc";
  };
  const layers = new Map<string, Record<string, number>>();
  for (const n of g.nodes) {
    const l = layerOf(n);
    if (l === undefined) continue;
    const counts = layers.get(l) ?? {};
    const key = n.op === "linear" ? `gemm:${role(n)}` : n.op;
    counts[key] = (counts[key] ?? 0) + 1;
    layers.set(l, counts);
  }
  return [...layers.values()];
}

const pick = (counts: Record<string, number>, keys: string[]) => Object.fromEntries(keys.map((k) => [k, counts[k] ?? 0]));
const LLAMA_KEYS = ["gemm:qkv", "attention", "gemm:dense", "gemm:fused_gate_up", "gemm:down", "gemm:fc", "rms_norm", "layer_norm"];

describe("default pipeline on models/", () => {
  it("LLaMA: per layer one QKV GEMM, one attention, one output GEMM, one fused gate/up GEMM, one down GEMM, two norms", () => {
    for (const f of ["llama", "llama3_gqa"]) {
      const layers = layerStructure(optimize(instantiateFromDir(llama, `${FIXTURES}${f}`)).graph);
      expect(layers.length).toBeGreaterThan(1);
      for (const l of layers)
        expect(pick(l, LLAMA_KEYS)).toEqual({
          "gemm:qkv": 1,
          attention: 1,
          "gemm:dense": 1,
          "gemm:fused_gate_up": 1,
          "gemm:down": 1,
          "gemm:fc": 0,
          rms_norm: 2,
          layer_norm: 0,
        });
    }
  });

  it("LLaMA with the gated-MLP fusion switched off by a hint keeps separate fc and gate GEMMs", () => {
    const cfg = parseWith(llama.config, readHFConfigJson(`${FIXTURES}llama`), "config.json");
    const model = llama.create(cfg);
    model.hints = { fuse: { gatedMlp: false } };
    const graph = traceModule(model, "llama", CAUSAL_LM_INPUTS);
    const opt = optimize({ graph, weights: llama.weights(cfg) });
    for (const l of layerStructure(opt.graph)) {
      expect(l.linear ?? 0).toBe(0);
      expect(pick(l, ["gemm:qkv", "gemm:fused_gate_up", "gemm:fc", "gemm:down", "silu", "mul"])).toEqual({
        "gemm:qkv": 1,
        "gemm:fused_gate_up": 0,
        "gemm:fc": 2,
        "gemm:down": 1,
        silu: 1,
        mul: 1,
      });
    }
    expect(opt.log.find((e) => e.pass === "fuse-gated-mlp")!.nearMisses[0]!.reason).toBe("disabled by hint fuse.gatedMlp=false");
  });

  it("GPT-2: per layer two LayerNorms, QKV GEMM, attention, dense, fc, proj (TensorRT-LLM GPTDecoderLayer)", () => {
    for (const l of layerStructure(optimize(instantiateFromDir(gpt2, `${FIXTURES}gpt2`)).graph))
      expect(pick(l, ["layer_norm", "gemm:qkv", "attention", "gemm:dense", "gemm:fc", "gemm:proj", "gelu"])).toEqual({
        layer_norm: 2,
        "gemm:qkv": 1,
        attention: 1,
        "gemm:dense": 1,
        "gemm:fc": 1,
        "gemm:proj": 1,
        gelu: 1,
      });
  });

  it("GPT-J: per layer one LayerNorm feeding a QKV GEMM with rope, attention, dense, fc, proj (parallel block)", () => {
    for (const l of layerStructure(optimize(instantiateFromDir(gptj, `${FIXTURES}gptj`)).graph))
      expect(pick(l, ["layer_norm", "gemm:qkv", "rope", "attention", "gemm:dense", "gemm:fc", "gemm:proj"])).toEqual({
        layer_norm: 1,
        "gemm:qkv": 1,
        rope: 2,
        attention: 1,
        "gemm:dense": 1,
        "gemm:fc": 1,
        "gemm:proj": 1,
      });
  });

  for (const f of ["llama", "llama3_gqa"])
    it(`rewrites the primitive LLaMA into the same fused graph as models/llama.ts (${f})`, () => {
      const a = optimize(instantiateFromDir(llama, `${FIXTURES}${f}`)).graph;
      const b = optimize(instantiateFromDir(primitive, `${FIXTURES}${f}`)).graph;
      expect(structuralSignature(b)).toBe(structuralSignature(a));
    });

  const parityCases: [string, ModelDefinition<any>, string][] = [
    ["models/llama.ts", llama, "llama"],
    ["models/llama.ts", llama, "llama3_gqa"],
    ["examples/llama_from_primitives.ts", primitive, "llama"],
    ["examples/llama_from_primitives.ts", primitive, "llama3_gqa"],
    ["models/gpt2.ts", gpt2, "gpt2"],
    ["models/gptj.ts", gptj, "gptj"],
  ];
  for (const [file, def, f] of parityCases)
    it(`fused ${file} still matches the HF fixture ${f}`, async () => {
      const opt = optimize(instantiateFromDir(def, `${FIXTURES}${f}`));
      const params = await loadWeights(opt, `${FIXTURES}${f}`);
      for (const g of await readGolden(`${FIXTURES}${f}`)) expect(relL2(causalLMLogits(opt.graph, params, g.ids).logits, g.logits)).toBeLessThanOrEqual(1e-5);
    });
});
