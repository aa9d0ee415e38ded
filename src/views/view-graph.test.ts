// The view model: expanded views hold one node per op, input and output with dataflow edges (parameters only in
// details); collapsed views replace every layer of a run but the first with one block, rerouting edges to it.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FIXTURES } from "../../test/golden.ts";
import { importModelFile } from "../driver/load-model-file.ts";
import { loadModelStages } from "./model-stages.ts";
import { buildView } from "./view-graph.ts";

const stages = await loadModelStages(await importModelFile("models/llama.ts"), { hfDir: `${FIXTURES}llama3_gqa` });

describe("buildView", () => {
  it("expanded: every op, input and output, edges between them, details with loc, attrs and params", () => {
    const g = stages.graph("fused");
    const v = buildView(g);
    expect(v.nodes).toHaveLength(g.nodes.length + 3);
    const ids = new Set(v.nodes.map((n) => n.id));
    for (const e of v.edges) expect(ids.has(e.from) && ids.has(e.to)).toBe(true);
    const add = v.nodes.find((n) => n.label === "add")!;
    // The residual add's line in models/llama.ts, found by its text so edits above it do not break the test.
    const addLine =
      readFileSync("models/llama.ts", "utf8")
        .split("\n")
        .findIndex((l) => l.includes("const h = x.add(this.attn.forward(")) + 1;
    expect(add.detail.loc).toMatch(new RegExp(`^models/llama\\.ts:${addLine}:\\d+$`));
    expect(add.scope).toBe("layers.0");
    const qkv = v.nodes.find((n) => n.detail.meta?.trtllm?.startsWith("Attention.qkv"))!;
    expect(qkv.detail.inputs.map((i) => i.name)).toEqual(["%24", "layers.0.attn.qkv.weight"]);
    expect(qkv.detail.inputs[1]!.type).toBe("f32[96, 64]");
    expect(qkv.sub).toBe("f32[batch, seq, 96]");
    const rope = v.nodes.find((n) => n.label === "rope")!;
    expect(rope.detail.attrs).toMatchObject({ style: "neox", rotaryDim: "8", theta: "500000" });
    // Parameters are never nodes; position_ids feeds every rope.
    expect(v.edges.filter((e) => e.from === "in:position_ids")).toHaveLength(6);
  });

  it("collapsed: layers 1-2 become one block wired like the layers it hides", () => {
    const g = stages.graph("fused");
    const full = buildView(g);
    const v = buildView(g, { collapse: true });
    const block = v.nodes.find((n) => n.kind === "block")!;
    expect(block.id).toBe("block:layers.1");
    expect(block.label).toBe("layers.1 … layers.2");
    expect(block.sub).toBe("× 2 identical layers");
    expect(v.nodes).toHaveLength(full.nodes.length - 2 * 17 + 1);
    const into = v.edges.filter((e) => e.to === block.id).map((e) => e.from);
    const lastAddOfLayer0 = full.nodes.filter((n) => n.scope === "layers.0" && n.label === "add").at(-1)!.id;
    expect(into.sort()).toEqual(["in:position_ids", lastAddOfLayer0].sort());
    const out = v.edges.filter((e) => e.from === block.id).map((e) => v.nodes.find((n) => n.id === e.to)!.scope);
    expect(out).toEqual(["norm"]);
    // Ids of shown nodes are the same as in the expanded view.
    for (const n of v.nodes) if (n.kind !== "block") expect(full.nodes.some((m) => m.id === n.id)).toBe(true);
  });
});
