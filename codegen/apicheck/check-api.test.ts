// Tests for the TensorRT-LLM API checker, driven through the TS wrapper (needs python3 >= 3.9, stdlib only).
// testdata/*.py carry their expectations inline: `# error: <text>` on each line that must be reported
// (message contains <text>), `# unverified: <name>` on each line with a reference the manifest cannot check.

import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ApiCheckError, type ApiCheckResult, checkPythonApi, formatApiProblems } from "./check-api.ts";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const GOOD = here("./testdata/good_model.py");
const SECOND_MANIFEST = here("./testdata/second-manifest.json");
const DEFAULT_MANIFEST = here("./trtllm-1.2.json");
const tmp = mkdtempSync(join(tmpdir(), "kiln-apicheck-"));

interface Expected {
  line: number;
  text: string;
}

/** `# error:` / `# unverified:` annotations of a test file, one entry per annotation. */
function annotations(file: string, tag: "error" | "unverified"): Expected[] {
  const marker = `# ${tag}:`;
  return readFileSync(file, "utf8")
    .split("\n")
    .flatMap((src, i) =>
      src
        .split(marker)
        .slice(1)
        .map((t) => ({ line: i + 1, text: t.split("# ")[0]!.trim() })),
    );
}

/** Pairs each expectation with a distinct finding on its line whose text contains it; returns what is left over. */
function unmatched(expected: Expected[], found: { line: number; text: string }[]) {
  const left = [...found];
  const missing = expected.filter((e) => {
    const i = left.findIndex((f) => f.line === e.line && f.text.includes(e.text));
    if (i < 0) return true;
    left.splice(i, 1);
    return false;
  });
  return { missing, unexpected: left };
}

function expectAnnotated(file: string, result: ApiCheckResult) {
  const problems = result.problems.map((p) => ({ line: p.line, text: p.message }));
  const unverified = result.unverified.map((u) => ({ line: u.line, text: u.name }));
  expect(unmatched(annotations(file, "error"), problems), formatApiProblems(file, result)).toEqual({ missing: [], unexpected: [] });
  expect(unmatched(annotations(file, "unverified"), unverified)).toEqual({ missing: [], unexpected: [] });
}

const lineOf = (text: string, needle: string) => text.slice(0, text.indexOf(needle)).split("\n").length;

describe("checkPythonApi on the sample custom model", () => {
  const result = checkPythonApi(GOOD);

  it("accepts the LLaMA-style KilnFoo model with broad coverage", () => {
    expect(result.problems, formatApiProblems(GOOD, result)).toEqual([]);
    expect(result.ok).toBe(true);
    // 98 when written: imports, enum members, constructor/forward/super()/functional calls, MODEL_MAP entry.
    expect(result.checked).toBeGreaterThanOrEqual(95);
  });

  it("lists only the Mapping properties that live on a subclass as unverified", () => {
    expect(result.unverified.map((u) => [u.line, u.name])).toEqual([
      [66, "tensorrt_llm.mapping.Mapping.tp_group"],
      [72, "tensorrt_llm.mapping.Mapping.tp_group"],
    ]);
  });

  it("turns unverified references into problems with strict", () => {
    const strict = checkPythonApi(GOOD, { strict: true });
    expect(strict.ok).toBe(false);
    expect(strict.problems.map((p) => p.message)).toEqual([
      "not covered by the API manifest: tensorrt_llm.mapping.Mapping.tp_group",
      "not covered by the API manifest: tensorrt_llm.mapping.Mapping.tp_group",
    ]);
  });
});

describe("single mistakes in the sample model are caught on their line", () => {
  const source = readFileSync(GOOD, "utf8");
  const cases: { name: string; from: string; to: string; message: string }[] = [
    {
      name: "unknown keyword",
      from: "rotary_embedding_base=config.rotary_base",
      to: "rotary_base=config.rotary_base",
      message: "Attention(): unknown keyword argument 'rotary_base'",
    },
    {
      name: "too many positionals",
      from: "F.sum(squares, dim=-1, keepdim=True)",
      to: "F.sum(squares, -1, True, 0)",
      message: "F.sum(): takes at most 3 positional argument(s), 4 given",
    },
    {
      name: "partial op positional",
      from: "F.pow(hidden_states, 2.0)",
      to: "F.pow(hidden_states, 2.0, 0)",
      message: "F.pow(): takes at most 2 positional argument(s), 3 given; keyword-only: op",
    },
    { name: "enum member", from: "AttentionMaskType.causal", to: "AttentionMaskType.casual", message: "has no member 'casual' (did you mean 'causal'?)" },
    {
      name: "forward keyword",
      from: "lora_params=lora_params)",
      to: "lora_layer_params=lora_params)",
      message: "self.layers.forward(): unknown keyword argument 'lora_layer_params'",
    },
    { name: "Tensor method", from: "gathered.view(", to: "gathered.reshape(", message: "'tensorrt_llm.functional.Tensor' object has no method 'reshape'" },
    {
      name: "super().__init__ arity",
      from: "super().__init__(config, transformer, lm_head)",
      to: "super().__init__(config, transformer)",
      message: "missing required argument(s) 'lm_head'",
    },
    {
      name: "import path",
      from: "from tensorrt_llm.models import MODEL_MAP",
      to: "from tensorrt_llm.model import MODEL_MAP",
      message: "no module named 'tensorrt_llm.model' in the API manifest (did you mean 'models'?)",
    },
  ];

  it.each(cases)("$name", ({ name, from, to, message }) => {
    expect(source.split(from).length, `'${from}' must occur once in good_model.py`).toBe(2);
    const file = join(tmp, `${name.replace(/\W+/g, "_")}.py`);
    writeFileSync(file, source.replace(from, to));
    const result = checkPythonApi(file);
    expect(result.ok).toBe(false);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]!.line).toBe(lineOf(source, from));
    expect(result.problems[0]!.message).toContain(message);
  });
});

describe("annotated test files", () => {
  it.each(["bad_model.py", "tricky_ok.py"])("%s reports exactly its annotations", (name) => {
    const file = here(`./testdata/${name}`);
    const result = checkPythonApi(file);
    expectAnnotated(file, result);
    expect(result.ok).toBe(annotations(file, "error").length === 0);
  });

  it("bad_model.py covers every kind of problem", () => {
    // Guards against the annotated file silently losing cases.
    expect(annotations(here("./testdata/bad_model.py"), "error").length).toBeGreaterThanOrEqual(24);
  });
});

describe("several manifests", () => {
  const file = here("./testdata/plugin_user.py");

  it("leaves names outside the TensorRT-engine manifest unverified, not wrong", () => {
    const result = checkPythonApi(file);
    expect(result.problems).toEqual([]);
    expect(result.unverified.map((u) => u.name)).toEqual([
      "tensorrt_llm.python_plugin.PluginBase",
      "tensorrt_llm.python_plugin",
      "tensorrt_llm.python_plugin.trtllm_plugin",
    ]);
  });

  it("routes tensorrt_llm.python_plugin to the second manifest, also through tensorrt_llm's re-export", () => {
    const result = checkPythonApi(file, { manifest: [DEFAULT_MANIFEST, SECOND_MANIFEST] });
    expect(result.unverified).toEqual([]);
    expect(result.problems.map((p) => [p.line, p.message])).toEqual([
      [14, "super().shape_dtype_inference(): takes at most 1 positional argument(s), 2 given [tensorrt_llm.python_plugin.PluginBase.shape_dtype_inference]"],
      [17, "trtllm_plugin(): unknown keyword argument 'dep' (did you mean 'deps'?) [tensorrt_llm.python_plugin.trtllm_plugin]"],
    ]);
    expect(result.checked).toBe(10);
  });
});

describe("failures", () => {
  it("reports a syntax error as a problem on its line", () => {
    const file = join(tmp, "syntax.py");
    writeFileSync(file, "import tensorrt_llm\n\ndef broken(:\n    pass\n");
    const result = checkPythonApi(file);
    expect(result.ok).toBe(false);
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]!.line).toBe(3);
    expect(result.problems[0]!.message).toMatch(/^syntax error: /);
  });

  it("throws when the manifest cannot be read", () => {
    expect(() => checkPythonApi(GOOD, { manifest: join(tmp, "missing.json") })).toThrow(ApiCheckError);
    expect(() => checkPythonApi(GOOD, { manifest: join(tmp, "missing.json") })).toThrow(/missing\.json/);
  });

  it("throws when the interpreter does not exist", () => {
    expect(() => checkPythonApi(GOOD, { python: join(tmp, "no-python") })).toThrow(/cannot run .*no-python/);
  });
});
