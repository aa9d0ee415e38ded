// Identifiers and literals for generated Python, checked against Python itself: names are identifiers Python
// accepts and that shadow nothing, string and float literals evaluate back to exactly the input, comments stay one
// printable line whatever the input holds.

import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isPlainAttribute, Namespace, pascalCase, pyCommentText, pyFloat, pyInt, pyLiteral, pyString, sanitizeIdentifier } from "./identifiers.ts";

const python = process.env.KILN_PYTHON ?? "python3";
function py(code: string, input: string): string {
  const r = spawnSync(python, ["-c", code], { input, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

const NASTY = [
  'x"); import os #',
  "a\nb\r\nc",
  "tab\there",
  "back\\slash",
  "quote'\"",
  "\u202eevil",
  "\u2028line",
  "\x00\x1f\x7f",
  "😀 emoji",
  "\ud800 lone",
  "lone \udfff",
  "é",
  "",
  "\\x41",
  "'''",
  '"""',
];

describe("Namespace", () => {
  it("hands out unique, safe names torch.fx style", () => {
    const ns = new Namespace(["hidden_states", "F"]);
    expect(["add", "add", "add_1", "class", "max", "3d", "a-b c", "hidden_states", "F", "__secret", "", "x_2", "x_2", "None"].map((c) => ns.create(c))).toEqual(
      ["add", "add_1", "add_2", "class_1", "max_1", "_3d", "a_b_c", "hidden_states_1", "F_1", "_secret", "_unnamed", "x_2", "x_3", "None_1"],
    );
  });

  it("always returns identifiers Python accepts that are neither keywords nor builtins, never twice", () => {
    const names: string[] = [];
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "grapheme", maxLength: 12 }), { maxLength: 20 }), (cands) => {
        const ns = new Namespace();
        const out = cands.map((c) => ns.create(c));
        expect(new Set(out).size).toBe(out.length);
        names.push(...out);
      }),
      { numRuns: 50 },
    );
    const verdict = py(
      "import builtins, json, keyword, sys\nnames = json.load(sys.stdin)\nprint(all(n.isidentifier() and n.isascii() and not keyword.iskeyword(n) and not keyword.issoftkeyword(n) and not hasattr(builtins, n) for n in names))",
      JSON.stringify(names),
    );
    expect(verdict).toBe("True");
  });

  it("sanitizes any string to an identifier shape", () => {
    expect(sanitizeIdentifier("layers.0.attn")).toBe("layers_0_attn");
    expect(sanitizeIdentifier("0abc")).toBe("_0abc");
    expect(sanitizeIdentifier("ñ")).toBe("_");
  });
});

describe("names from user input", () => {
  it("pascalCase keeps ASCII letters and digits only", () => {
    expect(["llama_from_primitives", "gpt2", "parallel-llama", 'x"); import os #', "模型", "class", "3b", "a\nb"].map(pascalCase)).toEqual([
      "LlamaFromPrimitives",
      "Gpt2",
      "ParallelLlama",
      "XImportOs",
      "Custom",
      "Class",
      "3b",
      "AB",
    ]);
  });

  it("isPlainAttribute refuses what Python would change or reject", () => {
    expect(["weight", "qkv", "_x", "w2", "__init__"].every(isPlainAttribute)).toBe(true);
    // keywords, non-ASCII (NFKC-normalized by Python), name-mangled, not identifiers
    expect(["class", "in", "None", "ﬁ", "ñ", "__secret", "0w", "a-b", "$x", ""].some(isPlainAttribute)).toBe(false);
  });
});

describe("literals", () => {
  it("pyString round-trips every string through Python's parser and prints only ASCII", () => {
    const samples = [...NASTY, ...fc.sample(fc.string({ unit: "binary", maxLength: 20 }), 300)];
    const lits = samples.map(pyString);
    for (const l of lits) expect(l).toMatch(/^"[\x20-\x7e]*"$/);
    const verdict = py(
      "import ast, json, sys\nd = json.load(sys.stdin)\nprint(all(ast.literal_eval(l) == s for l, s in zip(d['lits'], d['samples'])))",
      JSON.stringify({ lits, samples }),
    );
    expect(verdict).toBe("True");
  });

  it("pyFloat evaluates to the same double (NaN, infinities and -0.0 too)", () => {
    const values = [0.1, 1, -0, 1e-7, 1e21, 5e-324, Number.MAX_VALUE, Infinity, -Infinity, NaN, 0.35355339059327373, ...fc.sample(fc.double(), 300)];
    const lits = values.map(pyFloat);
    const bits = values.map((v) => (Number.isNaN(v) ? "nan" : Buffer.from(new Float64Array([v]).buffer).toString("hex")));
    const code =
      "import json, math, struct, sys\nd = json.load(sys.stdin)\nok = True\nfor l, b in zip(d['lits'], d['bits']):\n    v = eval(l, {'float': float})\n    ok = ok and isinstance(v, float) and (math.isnan(v) if b == 'nan' else struct.pack('<d', v).hex() == b)\nprint(ok)";
    expect(py(code, JSON.stringify({ lits, bits }))).toBe("True");
  });

  it("pyInt refuses integers Python source cannot hold exactly from a double", () => {
    expect(pyInt(64)).toBe("64");
    expect(() => pyInt(2 ** 60)).toThrow(RangeError);
    expect(() => pyInt(1.5)).toThrow(RangeError);
  });

  it("pyLiteral writes JSON values as Python literals", () => {
    expect(pyLiteral({ type: "llama3", factor: 8, low: 1.5, on: true, none: null, list: [1, "a"] })).toBe(
      '{"type": "llama3", "factor": 8, "low": 1.5, "on": True, "none": None, "list": [1, "a"]}',
    );
  });

  it("comment text is one line of printable ASCII whatever the input", () => {
    for (const s of [...NASTY, ...fc.sample(fc.string({ unit: "binary", maxLength: 20 }), 200)]) expect(pyCommentText(s)).toMatch(/^[\x20-\x7e]*$/);
    expect(pyCommentText("a\nimport os")).toBe("a\\u000aimport os");
  });
});
