// The example custom op end to end on the CPU: the fusion rewrites LLaMA (one fused op per decoder layer, none across
// layers), the rewritten model still matches the Hugging Face fixtures, the rewrite is proven equivalent, the graph
// round-trips through protobuf, lowering keeps the op (parameters renamed) and the tensor-parallel simulator runs it.

import { describe, expect, it } from "vitest";
import fusedLlama from "../llama_fused_norm/model.ts";
import { causalInputs, causalLMLogits } from "../../src/interp/causal-lm.ts";
import { checkEquivalence } from "../../src/interp/equivalence.ts";
import { relL2, type RTensor, tensor } from "../../src/interp/tensor.ts";
import { opCounts } from "../../src/ir/graph.ts";
import { printGraph } from "../../src/ir/print.ts";
import { parseGraph, serializeGraph } from "../../src/ir/serialize.ts";
import { simulateTensorParallel } from "../../src/lower/simulate.ts";
import { shardWeights } from "../../src/lower/shard.ts";
import { lowerToTrtllm } from "../../src/lower/to-trtllm.ts";
import { runPasses } from "../../src/passes/manager.ts";
import { DEFAULT_PASSES } from "../../src/passes/default-passes.ts";
import { instantiateFromDir, loadWeights } from "../../src/driver/instantiate.ts";
import { optimize } from "../../src/driver/optimize.ts";
import { openCheckpoint } from "../../src/weights/checkpoint.ts";
import { evalExpr } from "../../src/weights/weight-map.ts";
import { FIXTURES, readGolden } from "../../test/golden.ts";
import { FUSED_ADD_RMS_NORM } from "./op.ts";

const withOwnPasses = [...DEFAULT_PASSES, ...(fusedLlama.passes ?? [])];

async function fused(fixture: string) {
  const dir = `${FIXTURES}${fixture}`;
  const inst = instantiateFromDir(fusedLlama, dir);
  const opt = optimize(inst, withOwnPasses);
  return { dir, inst, opt, layers: (inst.config as { layers: number }).layers };
}

describe("llama_fused_norm (LLaMA rewritten to use fused_add_rms_norm)", () => {
  for (const fixture of ["llama", "llama3_gqa"])
    it(`${fixture}: one fused op per layer, and the HF logits (rel L2 <= 1e-5)`, async () => {
      const { dir, opt, layers } = await fused(fixture);
      const counts = opCounts(opt.graph);
      expect(counts.fused_add_rms_norm).toBe(layers);
      // Left unfused: each layer's input norm (its add is in the previous layer) and the final norm.
      expect(counts.rms_norm).toBe(layers + 1);
      const params = await loadWeights(opt, dir);
      for (const g of await readGolden(dir)) expect(relL2(causalLMLogits(opt.graph, params, g.ids).logits, g.logits)).toBeLessThanOrEqual(1e-5);
    });

  it("is equivalent to the unfused graph (bit for bit) and explains the adds it leaves", async () => {
    const { inst } = await fused("llama");
    const before = runPasses(inst.graph, DEFAULT_PASSES).graph;
    const r = runPasses(before, fusedLlama.passes!);
    expect(checkEquivalence(before, r.graph, r.params, { tolerance: 0 })).toMatchObject({ ok: true, worst: 0 });
    const misses = r.log[0]!.nearMisses.map((m) => m.reason);
    expect(misses.some((m) => /the add \(layers\.0\) and the norm \(layers\.1\.inputNorm\) are not in one decoder layer/.test(m))).toBe(true);
    expect(misses.some((m) => /the norm \(norm\) are not in one decoder layer/.test(m))).toBe(true);
  });

  it("prints, and round-trips through protobuf", async () => {
    const { opt } = await fused("llama");
    const text = printGraph(opt.graph);
    expect(text).toMatch(
      /%\d+: f32\[batch, seq, \d+\], %\d+: f32\[batch, seq, \d+\] = fused_add_rms_norm %\d+, %\d+, %\d+ eps=0\.00001 !trtllm="python_plugin KilnFusedAddRmsNorm" {2}# @layers\.0\.postNorm/,
    );
    expect(printGraph(parseGraph(serializeGraph(opt.graph)))).toBe(text);
  });

  it("lowers with the op kept and runs in the tensor-parallel simulator (tp=2 matches the HF logits)", async () => {
    const { dir, opt, layers } = await fused("llama");
    const ckpt = await openCheckpoint(dir);
    try {
      const shapeOf = (n: string) => ckpt.info(n)?.shape;
      const low = lowerToTrtllm(opt.graph, opt.weights.map, shapeOf);
      const kept = low.graph.nodes.filter((n) => n.op === "fused_add_rms_norm");
      expect(kept.map((n) => n.scope)).toEqual(Array.from({ length: layers }, (_, i) => `transformer.layers.${i}`));
      const names = new Map(low.graph.params.map((p) => [p.value, p.name]));
      expect(names.get(kept[0]!.inputs[2]!)).toBe("transformer.layers.0.postNorm.weight");
      expect(low.weights["transformer.layers.0.postNorm.weight"]).toEqual({ source: "model.layers.0.post_attention_layernorm.weight" });
      const hf = new Map<string, { shape: number[]; data: Float32Array }>();
      for (const n of ckpt.names()) hf.set(n, { shape: ckpt.info(n)!.shape, data: await ckpt.readF32(n) });
      const tp = 2;
      const ranks = shardWeights(low, tp, shapeOf);
      const weights = new Map<string, RTensor[]>(
        low.graph.params.map((p) => [
          p.name,
          ranks.map((w) => {
            const d = evalExpr(w[p.name]!, (s) => hf.get(s)!);
            return tensor("f32", d.shape, d.data);
          }),
        ]),
      );
      const [golden] = await readGolden(dir);
      const logits = simulateTensorParallel(low.graph, causalInputs(golden!.ids), weights, tp).get("logits")!;
      expect(relL2(logits.data, golden!.logits)).toBeLessThanOrEqual(1e-5);
    } finally {
      await ckpt.close();
    }
  });
});

describe("the op's reference", () => {
  it("computes x + residual and its RMS norm", () => {
    const t = (shape: number[], v: number[]) => tensor("f32", shape, Float32Array.from(v));
    const [normed, sum] = FUSED_ADD_RMS_NORM.decl.reference([t([2, 2], [1, 2, 3, 4]), t([2, 2], [0, 0, -2, -2]), t([2], [1, 2])], { eps: 0 });
    expect([...sum!.data]).toEqual([1, 2, 1, 2]);
    // rms of [1, 2] is sqrt(2.5): [1, 2] / sqrt(2.5) * [1, 2]
    const inv = 1 / Math.sqrt(2.5);
    expect([...normed!.data].map((v) => v.toFixed(6))).toEqual([inv, 4 * inv, inv, 4 * inv].map((v) => v.toFixed(6)));
  });
});
