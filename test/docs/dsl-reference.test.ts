// docs/dsl-reference.md is generated from the code (scripts/dsl-reference.ts): it must equal what the generator
// writes now, and every public Tensor method, F.* function, module, weight-map expression and HF helper must have a
// one-line example, so adding one without documenting it fails here.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { collectReference, missingExamples, REFERENCE_PATH, renderReference } from "../../scripts/dsl-reference.ts";

const reference = collectReference();

describe("docs/dsl-reference.md", () => {
  it("is up to date with the code (regenerate: npx tsx scripts/dsl-reference.ts)", () => {
    expect(readFileSync(REFERENCE_PATH, "utf8")).toBe(renderReference(reference));
  });

  it("has an example for every public item", () => {
    expect(missingExamples(reference)).toEqual([]);
  });

  it("covers what the DSL exports: every Tensor method, the attention window option, every weight-map expression", () => {
    const names = (title: string) => reference.sections.find((s) => s.title === title)!.items.map((i) => i.name);
    expect(names("Tensor methods")).toEqual(expect.arrayContaining(["add", "cast", "reshape", "split", "causalMask", "shape"]));
    expect(names("Modules")).toEqual(["Linear", "Embedding", "LayerNorm", "RMSNorm", "MLP", "GatedMLP", "Experts", "MoE", "Attention", "CausalLM"]);
    expect(names("Weight-map expressions")).toEqual(["src", "transpose", "concat", "slice", "pad", "repeatInterleave", "reshape", "zeros", "perLayer"]);
    expect(readFileSync(REFERENCE_PATH, "utf8")).toContain("`window?: number` Sliding window in tokens");
  });

  it("reports an undocumented item (the check can fail)", () => {
    const planted = { sections: [{ title: "t", intro: "", items: [{ key: "Tensor.frobnicate", name: "frobnicate", signature: "", doc: "" }] }] };
    expect(missingExamples(planted)).toEqual(["Tensor.frobnicate"]);
  });
});
