// HF parity: every fixture model, traced from models/*.ts and run in the CPU interpreter, reproduces the logits
// transformers computed (relative L2 <= 1e-5 over all positions) and its greedy tokens exactly.

import { describe, expect, it } from "vitest";
import gpt2 from "../models/gpt2.ts";
import gptj from "../models/gptj.ts";
import llama from "../models/llama.ts";
import primitiveLlama from "../examples/llama_from_primitives.ts";
import { causalLMLogits, greedyGenerate } from "../src/interp/causal-lm.ts";
import { relL2 } from "../src/interp/tensor.ts";
import { instantiateFromDir, loadWeights } from "../src/driver/instantiate.ts";
import type { ModelDefinition } from "../src/dsl/define-model.ts";
import { FIXTURE_MODELS, FIXTURES, hasRealModel, readGolden, REAL_TINYSTORIES } from "./golden.ts";

const MODELS: Record<string, ModelDefinition<any>> = { gpt2, gptj, llama };

async function checkParity(def: ModelDefinition<any>, dir: string, eos?: number) {
  const inst = instantiateFromDir(def, dir);
  const params = await loadWeights(inst, dir);
  for (const g of await readGolden(dir)) {
    const { logits } = causalLMLogits(inst.graph, params, g.ids);
    expect(relL2(logits, g.logits)).toBeLessThanOrEqual(1e-5);
    expect(greedyGenerate(inst.graph, params, g.ids, g.greedy.length, eos)).toEqual(g.greedy);
  }
}

describe("HF parity in the interpreter", () => {
  for (const { fixture, model } of FIXTURE_MODELS) it(`${fixture} (models/${model}.ts)`, () => checkParity(MODELS[model]!, `${FIXTURES}${fixture}`));
  for (const fixture of ["llama", "llama3_gqa"])
    it(`${fixture} (examples/llama_from_primitives.ts, a user-written model)`, () => checkParity(primitiveLlama, `${FIXTURES}${fixture}`));
  it.skipIf(!hasRealModel)("TinyStories 260K (real trained LLaMA)", () => checkParity(llama, REAL_TINYSTORIES));
});
