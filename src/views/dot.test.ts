// Graphviz output: one nested cluster per module path, quoted and escaped identifiers, edges between declared nodes;
// when the `dot` program is installed, it must accept the file.

import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { FIXTURES } from "../../test/golden.ts";
import { GraphBuilder } from "../ir/graph.ts";
import { importModelFile } from "../driver/load-model-file.ts";
import { toDot } from "./dot.ts";
import { loadModelStages, STAGES } from "./model-stages.ts";
import { buildView } from "./view-graph.ts";

const hasDot = spawnSync("dot", ["-V"]).status === 0;
if (!hasDot) console.warn("SKIPPED Graphviz syntax check: the `dot` program is not installed (Debian: apt-get install graphviz)");

const clusters = (dot: string) => [...dot.matchAll(/subgraph "cluster_((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);

describe("toDot", () => {
  it("nests one cluster per module path and declares every edge endpoint", async () => {
    const s = await loadModelStages(await importModelFile("models/gpt2.ts"), { hfDir: `${FIXTURES}gpt2` });
    for (const stage of STAGES)
      for (const collapse of [false, true]) {
        const v = buildView(s.graph(stage), { collapse });
        const dot = toDot(v);
        const scopes = new Set(v.nodes.flatMap((n) => (n.scope ? n.scope.split(".").map((_, i, p) => p.slice(0, i + 1).join(".")) : [])));
        expect(clusters(dot).sort()).toEqual([...scopes].sort());
        const declared = new Set([...dot.matchAll(/^\s*"([^"]+)" \[label=/gm)].map((m) => m[1]!));
        expect(declared.size).toBe(v.nodes.length);
        for (const m of dot.matchAll(/^\s*"([^"]+)" -> "([^"]+)"/gm)) expect(declared.has(m[1]!) && declared.has(m[2]!)).toBe(true);
        if (hasDot) expect(spawnSync("dot", ["-Tsvg"], { input: dot }).status).toBe(0);
      }
    const dot = toDot(buildView(s.graph("fused")));
    expect(dot).toContain('subgraph "cluster_layers.0.attn" {');
    expect(dot).toMatch(/subgraph "cluster_layers" \{\n\s+label="layers";\n\s+subgraph "cluster_layers.0" \{/);
    expect(toDot(buildView(s.graph("trtllm"), { collapse: true }))).toContain(
      '"block:transformer.layers.1" [label="transformer.layers.1\\n× 1 identical layer", shape=box3d',
    );
  });

  it("escapes quotes and backslashes in names", () => {
    const b = new GraphBuilder('odd "name"');
    const x = b.input('x"\\', { dtype: "f32", shape: [2] });
    b.output("y", b.node("neg", [x], {}, { scope: 'blk."q"' })[0]!);
    const dot = toDot(buildView(b.build()));
    expect(dot).toContain('digraph "odd \\"name\\"" {');
    expect(dot).toContain('"in:x\\"\\\\" [label="x\\"\\\\\\nf32[2]"');
    expect(clusters(dot)).toEqual(["blk", 'blk.\\"q\\"']);
    if (hasDot) expect(spawnSync("dot", ["-Tsvg"], { input: dot }).status).toBe(0);
  });
});
