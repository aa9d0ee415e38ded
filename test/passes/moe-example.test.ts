// examples/moe_by_hand.ts (the worked example of docs/moe.md): a Mixtral written with routing ops and GatedMLP
// experts reproduces the Mixtral fixture's transformers logits and greedy tokens as traced, and after the default
// passes, where recognize-moe has turned every layer's routing and experts into one `moe` op with stacked weights.

import { describe, expect, it } from "vitest";
import byHand from "../../examples/moe_by_hand.ts";
import mixtral from "../../models/mixtral.ts";
import { opCounts } from "../../src/ir/graph.ts";
import { causalLMLogits, greedyGenerate } from "../../src/interp/causal-lm.ts";
import { relL2 } from "../../src/interp/tensor.ts";
import { instantiateFromDir, loadWeights } from "../../src/driver/instantiate.ts";
import { optimize } from "../../src/driver/optimize.ts";
import { structuralSignature } from "../../src/passes/signature.ts";
import { readGolden, ZOO } from "../golden.ts";

const dir = `${ZOO}mixtral`;

describe("examples/moe_by_hand.ts", () => {
  for (const stage of ["traced", "optimized"] as const)
    it(`matches transformers' Mixtral (${stage})`, async () => {
      const traced = instantiateFromDir(byHand, dir);
      const inst = stage === "traced" ? traced : optimize(traced);
      const params = await loadWeights(inst, dir);
      for (const g of await readGolden(dir)) {
        expect(relL2(causalLMLogits(inst.graph, params, g.ids).logits, g.logits)).toBeLessThanOrEqual(1e-5);
        expect(greedyGenerate(inst.graph, params, g.ids, g.greedy.length)).toEqual(g.greedy);
      }
    });

  it("becomes one moe op per layer, the graph models/mixtral.ts optimizes to", () => {
    const hand = optimize(instantiateFromDir(byHand, dir)).graph;
    const counts = opCounts(hand);
    expect(counts.moe).toBe(3);
    for (const op of ["topk", "one_hot", "softmax", "slice"]) expect(counts[op], op).toBeUndefined();
    expect(structuralSignature(hand)).toBe(structuralSignature(optimize(instantiateFromDir(mixtral, dir)).graph));
  });
});
