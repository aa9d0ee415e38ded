// KV-cached generation computes exactly what a full recompute computes: for every fixture model, each generated
// token's logits row is bit-identical with and without the cache. Graphs that are not position-wise (attention
// built from matmul + causal_mask, say) are recognised and decode by full recompute instead.

import { describe, expect, it } from "vitest";
import gpt2 from "../../models/gpt2.ts";
import gptj from "../../models/gptj.ts";
import llama from "../../models/llama.ts";
import primitiveLlama from "../../examples/llama_from_primitives.ts";
import type { ModelDefinition } from "../dsl/define-model.ts";
import { instantiateFromDir, loadWeights } from "../driver/instantiate.ts";
import { FIXTURE_MODELS, FIXTURES, readGolden } from "../../test/golden.ts";
import { generate } from "./causal-lm.ts";
import { kvCacheSupport } from "./kv-cache.ts";

const MODELS: Record<string, ModelDefinition<any>> = { gpt2, gptj, llama };

async function compare(def: ModelDefinition<any>, dir: string, expectCached: boolean) {
  const inst = instantiateFromDir(def, dir);
  const params = await loadWeights(inst, dir);
  const [golden] = await readGolden(dir);
  const ids = golden!.ids;
  const cached = generate(inst.graph, params, ids, 6, { cache: "auto" });
  const full = generate(inst.graph, params, ids, 6, { cache: "off" });
  expect(cached.cached).toBe(expectCached);
  expect(full.cached).toBe(false);
  expect(cached.tokens).toEqual(full.tokens);
  expect(cached.stepLogits.length).toBe(6);
  for (let s = 0; s < 6; s++)
    expect(
      Buffer.from(cached.stepLogits[s]!.buffer, cached.stepLogits[s]!.byteOffset, cached.stepLogits[s]!.byteLength).equals(
        Buffer.from(full.stepLogits[s]!.buffer, full.stepLogits[s]!.byteOffset, full.stepLogits[s]!.byteLength),
      ),
    ).toBe(true);
  expect(Array.from(cached.logits)).toEqual(Array.from(full.logits));
  return inst.graph;
}

describe("KV-cached greedy generation", () => {
  for (const { fixture, model } of FIXTURE_MODELS)
    it(`${fixture}: logits bit-identical to the full recompute`, () => compare(MODELS[model]!, `${FIXTURES}${fixture}`, true));

  it("a model whose attention is built from matmul and causal_mask decodes by full recompute, and says why", async () => {
    const g = await compare(primitiveLlama, `${FIXTURES}llama`, false);
    const support = kvCacheSupport(g);
    expect(support.ok).toBe(false);
    expect(!support.ok && support.why).toMatch(/sequence|position-wise/);
  });

  it("rejects non-causal attention and an attention attribute it does not know (planted in a supported graph)", () => {
    const inst = instantiateFromDir(llama, `${FIXTURES}llama`);
    expect(kvCacheSupport(inst.graph)).toEqual({ ok: true });
    const att = inst.graph.nodes.find((n) => n.op === "attention")!;
    const saved = att.attrs;
    try {
      (att as { attrs: object }).attrs = { ...saved, causal: false };
      expect(kvCacheSupport(inst.graph).ok).toBe(false);
      (att as { attrs: object }).attrs = { ...saved, window: 4 };
      expect(kvCacheSupport(inst.graph).ok).toBe(false);
    } finally {
      (att as { attrs: object }).attrs = saved;
    }
  });
});
