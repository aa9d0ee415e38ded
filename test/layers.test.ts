// The layer check (scripts/check-layers.ts) on the real tree, and on planted violations it must catch.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkLayers, type ImportEdge, listSources, parseLayerTable, valueImports } from "../scripts/check-layers.ts";

const rows = parseLayerTable(readFileSync("docs/architecture.md", "utf8"));

describe("layer check", () => {
  it("passes on this tree: every value import points to a lower rank", () => {
    const files = listSources(".");
    expect(files.length).toBeGreaterThan(100);
    expect(checkLayers(rows, files, (f) => valueImports(".", f, readFileSync(f, "utf8")))).toEqual([]);
  });

  it("reads value imports, re-exports and dynamic imports, and skips type-only ones", () => {
    const text = [
      'import type { A } from "../quant/spec.ts";',
      'import { type B } from "../quant/spec.ts";',
      'import { C } from "../quant/schemes.ts";',
      'export { D } from "./half.ts";',
      'const m = await import("../driver/compile.ts");',
      'import { z } from "zod";',
      'import { Module } from "kiln";',
    ].join("\n");
    expect(valueImports(".", "src/weights/x.ts", text).map((e) => `${e.line}:${e.to}`)).toEqual([
      "3:src/quant/schemes.ts",
      "4:src/weights/half.ts",
      "5:src/driver/compile.ts",
      "7:src/index.ts",
    ]);
  });

  it("catches an import against the order (planted: weights imports quant)", () => {
    const edges: Record<string, ImportEdge[]> = {
      "src/weights/fp8-plan.ts": [{ from: "src/weights/fp8-plan.ts", line: 13, to: "src/quant/per-tensor.ts" }],
      "src/quant/per-tensor.ts": [{ from: "src/quant/per-tensor.ts", line: 2, to: "src/weights/half.ts" }],
    };
    const problems = checkLayers(rows, Object.keys(edges), (f) => edges[f] ?? []);
    expect(problems).toContain(
      "src/weights/fp8-plan.ts:13 imports src/quant/per-tensor.ts: src/weights (rank 3) may only import lower ranks, not src/quant (rank 7)",
    );
    expect(problems).toContain("import cycle between src/quant, src/weights");
  });

  it("catches sideways imports between folders of one rank, and files no row covers", () => {
    const edges: ImportEdge[] = [{ from: "codegen/hf/target.ts", line: 5, to: "codegen/trtllm-engine/emit.ts" }];
    const problems = checkLayers(rows, ["codegen/hf/target.ts", "newdir/x.ts"], (f) => (f === "codegen/hf/target.ts" ? edges : []));
    expect(problems).toEqual([
      "codegen/hf/target.ts:5 imports codegen/trtllm-engine/emit.ts: codegen/hf (rank 13) may only import lower ranks, not codegen/trtllm-engine (rank 13)",
      "newdir/x.ts: no row of the layer table in docs/architecture.md covers this file",
    ]);
  });
});
