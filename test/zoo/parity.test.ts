// The zoo against transformers: every zoo fixture, read by its models/<family>.ts, run in the CPU interpreter,
// reproduces the logits transformers computed (relative L2 <= 1e-5, all positions, two prompts) and its greedy
// tokens exactly. The fixtures' sliding windows are shorter than the prompts, so a window that is ignored or off by
// one fails here (the negative test shows it).

import { describe, expect, it } from "vitest";
import { causalLMLogits, greedyGenerate } from "../../src/interp/causal-lm.ts";
import { relL2 } from "../../src/interp/tensor.ts";
import { instantiateFromDir, loadWeights } from "../../src/driver/instantiate.ts";
import { readGolden, ZOO, ZOO_FIXTURES, ZOO_MOE_FIXTURES } from "../golden.ts";
import { zooModel } from "./models.ts";

describe("zoo: HF parity in the interpreter", () => {
  for (const { fixture, model } of [...ZOO_FIXTURES, ...ZOO_MOE_FIXTURES])
    it(`${fixture} (models/${model}.ts)`, async () => {
      const dir = `${ZOO}${fixture}`;
      const inst = instantiateFromDir(zooModel(model), dir);
      const params = await loadWeights(inst, dir);
      for (const g of await readGolden(dir)) {
        expect(relL2(causalLMLogits(inst.graph, params, g.ids).logits, g.logits)).toBeLessThanOrEqual(1e-5);
        expect(greedyGenerate(inst.graph, params, g.ids, g.greedy.length)).toEqual(g.greedy);
      }
    });

  it("the sliding window matters: the mistral fixture with its window widened by one token misses the goldens", async () => {
    const dir = `${ZOO}mistral`;
    const inst = instantiateFromDir(zooModel("mistral"), dir);
    for (const n of inst.graph.nodes) if (n.op === "attention") (n.attrs as { window: number }).window += 1;
    const params = await loadWeights(inst, dir);
    const g = (await readGolden(dir))[0]!;
    expect(relL2(causalLMLogits(inst.graph, params, g.ids).logits, g.logits)).toBeGreaterThan(1e-3);
  });

  // The MoE fixtures' routing matters: experts differ, and every routing decision clears a 1e-3 logit margin
  // (make.py checks), so routing to one expert fewer, or renormalizing where HF does not, misses the goldens.
  for (const [fixture, model, plant] of [
    ["mixtral", "mixtral", { topK: 1 }],
    ["qwen2_moe", "qwen2_moe", { normalizeTopK: true }],
    ["qwen2_moe_norm", "qwen2_moe", { normalizeTopK: false }],
    ["qwen3_moe", "qwen3_moe", { normalizeTopK: false }],
  ] as const)
    it(`routing matters: ${fixture} with ${JSON.stringify(plant)} misses the goldens`, async () => {
      const dir = `${ZOO}${fixture}`;
      const inst = instantiateFromDir(zooModel(model), dir);
      const moes = inst.graph.nodes.filter((n) => n.op === "moe");
      expect(moes.length).toBeGreaterThan(0);
      for (const n of moes) Object.assign(n.attrs as object, plant);
      const params = await loadWeights(inst, dir);
      const g = (await readGolden(dir))[0]!;
      expect(relL2(causalLMLogits(inst.graph, params, g.ids).logits, g.logits)).toBeGreaterThan(1e-3);
    });
});
