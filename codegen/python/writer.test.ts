// The Python writer: blocks and blank lines as PEP 8 wants them, calls that wrap past 79 columns, comments that
// stay comments, imports grouped and sorted.

import { describe, expect, it } from "vitest";
import { Imports, PyWriter, splitCall, wrapCall } from "./writer.ts";

describe("PyWriter", () => {
  it("indents blocks, writes pass for an empty body and collapses blank lines", () => {
    const w = new PyWriter();
    w.line("import x");
    w.blank(2).blank(2);
    w.block("class A:", () => {
      w.docstring(["Doc."]);
      w.blank();
      w.block("def f(self):", () => undefined);
    });
    expect(w.toString()).toBe('import x\n\n\nclass A:\n    """Doc."""\n\n    def f(self):\n        pass\n');
  });

  it("wraps a call one argument per line (black style) only when it does not fit", () => {
    expect(wrapCall("    ", "y = f", ["a", "b"])).toEqual(["    y = f(a, b)"]);
    const long = Array.from({ length: 8 }, (_, i) => `argument_${i}=value_${i}`);
    expect(wrapCall("        ", "self.x = Layer", long)).toEqual(["        self.x = Layer(", ...long.map((a) => `            ${a},`), "        )"]);
  });

  it("wraps a def header and indents its body", () => {
    const w = new PyWriter();
    w.blockCall("def forward", ["self", ...Array.from({ length: 6 }, (_, i) => `long_parameter_name_${i}=None`)], () => w.line("return 1"));
    const out = w.toString().split("\n");
    expect(out[0]).toBe("def forward(");
    expect(out.at(-3)).toBe("):");
    expect(out.at(-2)).toBe("    return 1");
  });

  it("wraps a long assignment in parentheses", () => {
    const w = new PyWriter();
    w.block("if x:", () => w.assign("hidden_states", "short * 2.0").assign("hidden_states", `${"a".repeat(40)} * ${"b".repeat(30)}`));
    expect(w.toString()).toBe(`if x:\n    hidden_states = short * 2.0\n    hidden_states = (\n        ${"a".repeat(40)} * ${"b".repeat(30)}\n    )\n`);
  });

  it("wraps a call too long even for parentheses one argument per line", () => {
    const w = new PyWriter();
    const args = ["x", ...Array.from({ length: 5 }, (_, i) => `self.mlp.experts.weight_${i}`), 'scoring="a, b"', "shape=(1, 2)"];
    w.block("if x:", () => w.assign("moe", `_kiln_moe(${args.join(", ")})`));
    expect(w.toString()).toBe(`if x:\n    moe = _kiln_moe(\n${args.map((a) => `        ${a},\n`).join("")}    )\n`);
    expect(splitCall("f(a)(b)")).toBeUndefined();
    expect(splitCall("f(a) + g(b)")).toBeUndefined();
    expect(splitCall('f(a, "x)", [1, 2])')).toEqual({ head: "f", args: ["a", '"x)"', "[1, 2]"] });
  });

  it("keeps comments on their own lines, wrapped and sanitized", () => {
    const w = new PyWriter();
    w.block("if x:", () => w.comment(`evil\nimport os ${"word ".repeat(20)}`));
    const out = w.toString().trimEnd().split("\n");
    expect(out.slice(1).every((l) => l.startsWith("    # ") && l.length <= 79)).toBe(true);
    expect(out[1]).toContain("evil\\u000aimport os");
  });
});

describe("Imports", () => {
  it("prints only used names, sorted, one statement per module, parenthesized when long", () => {
    const im = new Imports();
    expect(im.use("tensorrt_llm", "functional", "F")).toBe("F");
    for (const n of ["RmsNorm", "Attention", "GatedMLP", "AttentionMaskType", "Embedding", "ColumnLinear", "Attention"]) im.use("tensorrt_llm.layers", n);
    im.use("tensorrt_llm.models", "MODEL_MAP");
    expect(im.lines()).toEqual([
      "from tensorrt_llm import functional as F",
      "from tensorrt_llm.layers import (",
      "    Attention,",
      "    AttentionMaskType,",
      "    ColumnLinear,",
      "    Embedding,",
      "    GatedMLP,",
      "    RmsNorm,",
      ")",
      "from tensorrt_llm.models import MODEL_MAP",
    ]);
  });
});
