// The zoo against transformers: every zoo fixture, read by its models/<family>.ts, run in the CPU interpreter,
// reproduces the logits transformers computed (relative L2 <= 1e-5, all positions, two prompts) and its greedy
// tokens exactly. The fixtures' sliding windows are shorter than the prompts, so a window that is ignored or off by
// one fails here (the negative test shows it).

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseWith } from "../../src/weights/hf-config.ts";
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

  it("rope scaling matters: each scaled fixture without its scaling, and longrope with only its short factors, misses", async () => {
    for (const [fixture, model] of [
      ["llama_yarn", "llama"],
      ["llama_dynamic", "llama"],
      ["phi3_longrope", "phi3"],
    ] as const) {
      const dir = `${ZOO}${fixture}`;
      const g = (await readGolden(dir))[0]!; // 11 tokens: past dynamic's 8 positions and longrope's original 8
      const inst = instantiateFromDir(zooModel(model), dir);
      const params = await loadWeights(inst, dir);
      const ropes = inst.graph.nodes.filter((n) => n.op === "rope");
      const original = ropes.map((n) => n.attrs.scaling);
      for (const n of ropes) (n.attrs as { scaling: unknown }).scaling = null;
      expect(relL2(causalLMLogits(inst.graph, params, g.ids).logits, g.logits), fixture).toBeGreaterThan(1e-3);
      if (fixture === "phi3_longrope") {
        ropes.forEach((n, i) => {
          const s = original[i] as { shortFactor: number[] };
          (n.attrs as { scaling: unknown }).scaling = { ...s, longFactor: s.shortFactor };
        });
        expect(relL2(causalLMLogits(inst.graph, params, g.ids).logits, g.logits)).toBeGreaterThan(1e-3);
      }
    }
  });

  it("falcon refuses the variants it does not cover in one line naming the field", async () => {
    const config = JSON.parse(readFileSync(`${ZOO}falcon/config.json`, "utf8"));
    expect(() => parseWith(zooModel("falcon").config, { ...config, new_decoder_architecture: true }, "config.json")).toThrow(
      /^config\.json: new_decoder_architecture: new_decoder_architecture must be false \(Kiln's Falcon covers the 7B-style block\)$/,
    );
    expect(() => parseWith(zooModel("falcon").config, { ...config, alibi: true }, "config.json")).toThrow(/alibi must be false/);
  });

  it("soft-capping matters: the gemma2 fixture without its attention cap, or without its final cap, misses the goldens", async () => {
    const dir = `${ZOO}gemma2`;
    const g = (await readGolden(dir))[0]!;
    const attnOff = instantiateFromDir(zooModel("gemma2"), dir);
    for (const n of attnOff.graph.nodes) if (n.op === "attention") (n.attrs as { softcap: number }).softcap = 0;
    expect(relL2(causalLMLogits(attnOff.graph, await loadWeights(attnOff, dir), g.ids).logits, g.logits)).toBeGreaterThan(1e-3);
    const finalOff = instantiateFromDir(zooModel("gemma2"), dir);
    for (const n of finalOff.graph.nodes) if (n.op === "softcap") (n.attrs as { cap: number }).cap = 1e9;
    expect(relL2(causalLMLogits(finalOff.graph, await loadWeights(finalOff, dir), g.ids).logits, g.logits)).toBeGreaterThan(1e-3);
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
