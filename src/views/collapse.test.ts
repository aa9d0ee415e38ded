// Repeated-layer detection: identical decoder layers form one run per module list (traced and lowered names alike);
// a layer whose attributes differ (GPT-2 with per-layer attention scaling) breaks the run.

import { describe, expect, it } from "vitest";
import { FIXTURES } from "../../test/golden.ts";
import { importModelFile } from "../driver/load-model-file.ts";
import { instantiate } from "../driver/instantiate.ts";
import { readHFConfigJson } from "../weights/hf-config.ts";
import { findRepeatedLayers, layerOfScope, runBlockLabel } from "./collapse.ts";
import { loadModelStages } from "./model-stages.ts";

describe("findRepeatedLayers", () => {
  it("parses module-list scopes", () => {
    expect(layerOfScope("layers.12.attn.q")).toEqual({ root: "layers.12", list: "layers", index: 12 });
    expect(layerOfScope("transformer.layers.3")).toEqual({ root: "transformer.layers.3", list: "transformer.layers", index: 3 });
    expect(layerOfScope("lm_head")).toBeUndefined();
  });

  it("finds the three identical layers of llama3_gqa at every stage", async () => {
    const s = await loadModelStages(await importModelFile("models/llama.ts"), { hfDir: `${FIXTURES}llama3_gqa` });
    const expected = { traced: ["layers", 20], fused: ["layers", 17], trtllm: ["transformer.layers", 6] } as const;
    for (const [stage, [list, perLayer]] of Object.entries(expected)) {
      const runs = findRepeatedLayers(s.graph(stage as keyof typeof expected));
      expect(runs).toHaveLength(1);
      expect(runs[0]!.list).toBe(list);
      expect(runs[0]!.layers).toEqual([0, 1, 2].map((i) => `${list}.${i}`));
      expect(runs[0]!.nodes.map((n) => n.length)).toEqual([perLayer, perLayer, perLayer]);
    }
    const run = findRepeatedLayers(s.graph("trtllm"))[0]!;
    expect(runBlockLabel(run)).toEqual({
      title: "transformer.layers.1 … transformer.layers.2",
      note: "× 2 identical layers (same as transformer.layers.0, 6 nodes each)",
    });
  });

  it("does not merge layers whose attributes differ", async () => {
    const def = await importModelFile("models/gpt2.ts");
    const hf = readHFConfigJson(`${FIXTURES}gpt2`) as Record<string, unknown>;
    expect(findRepeatedLayers(instantiate(def, { ...hf, n_layer: 4 }).graph).map((r) => r.layers.length)).toEqual([4]);
    // 1/(layer+1) attention scaling makes every layer different.
    expect(findRepeatedLayers(instantiate(def, { ...hf, n_layer: 4, scale_attn_by_inverse_layer_idx: true }).graph)).toEqual([]);
  });
});
