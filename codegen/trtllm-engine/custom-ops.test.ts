// Custom-op emission, both routes: the Python plugin package for the example op (class, registration, kernel copy)
// and the model.py expressions, all checked by check_api.py against TensorRT-LLM 1.2 (including the
// tensorrt_llm.python_plugin manifest); lowering to an existing TensorRT-LLM callable, and its errors.

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { FUSED_ADD_RMS_NORM } from "../../examples/fused_add_rms_norm/op.ts";
import type { Node } from "../../src/ir/graph.ts";
import type { Shape } from "../../src/ir/shape.ts";
import { defineOp } from "../../src/custom-ops/custom-op.ts";
import { checkPythonApi, formatApiProblems } from "../apicheck/check-api.ts";
import { Imports } from "../python/writer.ts";
import { checkLowering, CustomOpEmitError, customOpFiles, customOpGlue, PYTHON_PLUGIN_MANIFEST, pluginPythonPath, TRTLLM_MANIFEST } from "./custom-ops.ts";
import type { AnyGlueCtx } from "./model-py-ops.ts";

const tmp = mkdtempSync(join(tmpdir(), "kiln-custom-ops-"));
const H: Shape = ["batch", "seq", 64];

function write(rel: string, text: string): string {
  const p = join(tmp, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
  return p;
}

function apiCheck(rel: string, text: string) {
  const file = write(rel, text);
  const r = checkPythonApi(file, { manifest: [TRTLLM_MANIFEST, PYTHON_PLUGIN_MANIFEST] });
  return { ...r, text: formatApiProblems(file, r) };
}

function glue(op: string, attrs: Record<string, unknown>, args: string[]): { code: string; imports: string[] } {
  const imports = new Imports();
  const node: Node = { op, inputs: [], outputs: [0, 1], attrs, scope: "transformer.layers.0", loc: { file: "m.ts", line: 7, col: 1 } };
  const ctx: AnyGlueCtx = {
    node,
    args: args.map((expr) => ({ expr, shape: H, literal: false, dtype: "f16" })),
    outShapes: [H, H],
    F: (n) => `${imports.use("tensorrt_llm", "functional", "F")}.${n}`,
    helper: (h) => h,
    dtype: () => "self.config.dtype",
  };
  const code = customOpGlue(op, imports)!(ctx);
  return { code, imports: imports.lines() };
}

/** A module that uses glue expressions the way model.py does: inside a tensorrt_llm Module's forward. */
const probe = (imports: string[], body: string[]) =>
  [
    ...imports,
    "from tensorrt_llm.module import Module",
    "",
    "",
    "class Probe(Module):",
    "",
    "    def forward(self, x, residual, weight):",
    ...body.map((l) => `        ${l}`),
    "",
  ].join("\n");

const torchPython = [process.env.KILN_PYTHON, ".venv/bin/python", "/usr/bin/python3", "python3"]
  .map((py) => (py?.includes("/") ? resolve(py) : py))
  .find((py) => py && (!py.includes("/") || existsSync(py)) && spawnSync(py, ["-c", "import torch"], { stdio: "ignore" }).status === 0);

const STUB_PYTHON_PLUGIN = `import inspect
import typing

import torch

REGISTERED = {}


class SymTensor:
    def __init__(self, dtype, shape):
        self.dtype, self.shape = dtype, shape


class PluginBase:
    def __init__(self):
        pass

    def __call__(self, *args):
        syms = self.shape_dtype_inference([SymTensor(a.dtype, list(a.shape)) for a in args])
        syms = list(syms) if isinstance(syms, (list, tuple)) else [syms]
        outs = [torch.empty(s.shape, dtype=s.dtype) for s in syms]
        self.forward(args, outs)
        return outs


def trtllm_plugin(plugin_name, **options):
    def register(cls):
        ann = inspect.signature(cls.shape_dtype_inference).return_annotation
        n = len(typing.get_args(ann)) if typing.get_origin(ann) is tuple else 1 if ann is SymTensor else None
        assert n is not None, "no output count"
        cls.num_outputs = n
        REGISTERED[plugin_name] = cls
        return cls
    return register
`;

const STUB_KERNEL = `import torch

SEEN = {}


def launch(inputs, outputs, eps):
    SEEN["eps"] = eps
    x, residual, weight = inputs
    s = x + residual
    outputs[1].copy_(s)
    outputs[0].copy_(s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + eps) * weight)
`;

const RUN_PLUGIN = `import json, sys
sys.path.insert(0, ".")
import torch
import kiln_plugins
from kiln_plugins import fused_add_rms_norm_kernel as k
from tensorrt_llm.python_plugin import REGISTERED
(name, cls), = REGISTERED.items()
assert cls is kiln_plugins.FusedAddRmsNormPlugin
x, r, w = torch.randn(3, 8), torch.randn(3, 8), torch.randn(8)
normed, s = cls(eps=1e-3)(x, r, w)
print(json.dumps({"name": name, "outputs": cls.num_outputs, "shapes": [list(normed.shape), list(s.shape)],
                  "sum_exact": bool(torch.equal(s, x + r)), "eps_seen": k.SEEN["eps"]}))
`;

describe("python_plugin route (the example op)", () => {
  const graph = { nodes: [{ op: "fused_add_rms_norm" }, { op: "add" }, { op: "fused_add_rms_norm" }] } as never;
  const files = customOpFiles(graph);

  it("writes the kiln_plugins package: registration import, plugin class, the user's kernel", () => {
    expect(Object.keys(files).sort()).toEqual(["kiln_plugins/__init__.py", "kiln_plugins/fused_add_rms_norm.py", "kiln_plugins/fused_add_rms_norm_kernel.py"]);
    expect(files["kiln_plugins/fused_add_rms_norm_kernel.py"]).toBe(readFileSync(FUSED_ADD_RMS_NORM.kernelPath!, "utf8"));
    expect(files["kiln_plugins/__init__.py"]).toContain('from .fused_add_rms_norm import FusedAddRmsNormPlugin\n\n__all__ = ["FusedAddRmsNormPlugin"]\n');
    expect(files["kiln_plugins/__init__.py"]).toMatch(/must happen in every\nprocess that builds or loads the engine/);
    expect(files["kiln_plugins/fused_add_rms_norm.py"]).toMatchInlineSnapshot(`
      """"TensorRT-LLM Python plugin of the Kiln custom op fused_add_rms_norm.

      Generated by Kiln; do not edit. forward() calls
      \`launch\` of fused_add_rms_norm_kernel.py, a copy of the user's Triton kernel module.
      TensorRT-LLM registers the plugin when this module is imported
      (see kiln_plugins/__init__.py).
      """
      from typing import Sequence, Tuple

      from tensorrt_llm._utils import convert_to_torch_tensor
      from tensorrt_llm.python_plugin import PluginBase, SymTensor, trtllm_plugin

      from .fused_add_rms_norm_kernel import launch as _launch


      _Outputs = Tuple[SymTensor, SymTensor]


      @trtllm_plugin("KilnFusedAddRmsNorm")
      class FusedAddRmsNormPlugin(PluginBase):
          """Inputs: x, residual, weight. Outputs: normed, new_residual."""

          # new_residual = x + residual; normed = new_residual /
          # sqrt(mean(new_residual^2) + eps) * weight (last axis)

          def __init__(self, eps):
              super().__init__()
              self.kiln_attrs = {"eps": eps}

          def shape_dtype_inference(self, inputs: Sequence[SymTensor]) -> _Outputs:
              # Each output has the shape and dtype of one input.
              like = (0, 0)
              return tuple(SymTensor(inputs[k].dtype, inputs[k].shape) for k in like)

          def forward(self, inputs, outputs):
              _launch([convert_to_torch_tensor(t) for t in inputs],
                      [convert_to_torch_tensor(t) for t in outputs], **self.kiln_attrs)
      "
    `);
  });

  it("the plugin module uses only real tensorrt_llm.python_plugin API", () => {
    const r = apiCheck("pkg/kiln_plugins/fused_add_rms_norm.py", files["kiln_plugins/fused_add_rms_norm.py"]!);
    expect(r.problems, r.text).toEqual([]);
    expect(r.checked).toBeGreaterThanOrEqual(6);
    // Only the helper that views TensorRT's buffers as torch tensors lies outside the manifests.
    expect(r.unverified.map((u) => u.name)).toEqual(expect.arrayContaining(["tensorrt_llm._utils"]));
  });

  it("model.py imports the class (registering it) and calls it on the op's inputs, attributes by keyword", () => {
    const { code, imports } = glue("fused_add_rms_norm", { eps: 1e-5 }, ["hidden_states", "attention_output", "self.postNorm.weight.value"]);
    expect(code).toBe("FusedAddRmsNormPlugin(eps=0.00001)(hidden_states, attention_output, self.postNorm.weight.value)");
    expect(imports).toEqual(["from kiln_plugins import FusedAddRmsNormPlugin"]);
    const r = apiCheck(
      "probe_plugin.py",
      probe(imports, [
        `normed, new_residual = ${code.replace("hidden_states", "x").replace("attention_output", "residual").replace("self.postNorm.weight.value", "weight")}`,
        "return normed + new_residual",
      ]),
    );
    expect(r.problems, r.text).toEqual([]);
  });

  it.skipIf(!torchPython)("runs: trtllm_plugin sees two outputs, forward passes torch tensors and the attributes to launch", () => {
    // A stand-in for tensorrt_llm (our own, minimal: the annotation-based output count and the eager call path) and a
    // kernel module whose launch does the math in PyTorch, so the generated class runs on a CPU.
    const root = join(tmp, "run");
    const put = (rel: string, text: string) => write(join("run", rel), text);
    put("tensorrt_llm/__init__.py", "");
    put("tensorrt_llm/_utils.py", "def convert_to_torch_tensor(t):\n    return t\n");
    put("tensorrt_llm/python_plugin.py", STUB_PYTHON_PLUGIN);
    for (const [rel, text] of Object.entries(files)) if (!rel.endsWith("_kernel.py")) put(rel, text);
    put("kiln_plugins/fused_add_rms_norm_kernel.py", STUB_KERNEL);
    const out = execFileSync(torchPython!, ["-c", RUN_PLUGIN], { cwd: root, encoding: "utf8" });
    expect(JSON.parse(out)).toEqual({
      name: "KilnFusedAddRmsNorm",
      outputs: 2,
      shapes: [
        [3, 8],
        [3, 8],
      ],
      sum_exact: true,
      eps_seen: 0.001,
    });
  });

  it("says how the checkpoint directory reaches PYTHONPATH", () => {
    expect(pluginPythonPath("/ckpt")).toBe("PYTHONPATH=/ckpt${PYTHONPATH:+:$PYTHONPATH}");
  });
});

describe("the tensorrt_llm.python_plugin manifest", () => {
  it("names its source and holds the real registration signature", () => {
    const m = JSON.parse(readFileSync(PYTHON_PLUGIN_MANIFEST, "utf8"));
    expect(m.module_prefixes).toEqual(["tensorrt_llm.python_plugin"]);
    expect(m.source["tensorrt_llm/python_plugin.py"]).toMatchObject({
      repo: "NVIDIA/TensorRT-LLM",
      commit: "7c0308be681f9e352d8556097b9622201ef515e7",
      chars: 20993,
      sha256: "bb7edc9a1a6c34293531a021dc43d0919636a3bcf6f86df99bd4be0e38b7a8ba",
    });
    const mod = m.modules["tensorrt_llm.python_plugin"];
    expect(mod.functions.trtllm_plugin.params.map((p: { name: string; kind: string }) => `${p.name}:${p.kind}`)).toEqual([
      "plugin_name:positional_or_keyword",
      "plugin_version:keyword_only",
      "plugin_namespace:keyword_only",
      "plugin_num_outputs:keyword_only",
      "deepcopy_clone:keyword_only",
      "no_serialize_attr:keyword_only",
    ]);
    expect(Object.keys(mod.classes).sort()).toEqual(["DimensionExpr", "PluginBase", "PluginCreatorBase", "PluginInfo", "ShapeExpr", "SymTensor"]);
  });

  it("routes python_plugin names (also tensorrt_llm.PluginBase) to it and rejects what the real API lacks", () => {
    const r = apiCheck(
      "plugin_misuse.py",
      [
        "from tensorrt_llm import PluginBase",
        "from tensorrt_llm.python_plugin import SymTensor, trtllm_plugin",
        "",
        "",
        '@trtllm_plugin("P", deps=None)',
        "class P(PluginBase):",
        "    def __init__(self):",
        "        super().__init__(1)",
        "",
        "",
        "SymTensor(None)",
        "",
      ].join("\n"),
    );
    expect(r.problems.map((p) => `${p.line}: ${p.message.split(" [")[0]}`)).toEqual([
      "5: trtllm_plugin(): unknown keyword argument 'deps'",
      "8: super().__init__(): takes at most 0 positional argument(s), 1 given",
      "11: SymTensor(): missing required argument(s) 'shape'",
    ]);
  });
});

describe("trtllm route (an existing TensorRT-LLM functional op)", () => {
  const SWIGLU = defineOp({
    name: "test.swiglu",
    doc: "silu(x[..., n:]) * x[..., :n]",
    attrs: {},
    inputs: ["x"],
    outputs: ["y"],
    infer: ([x]) => [{ dtype: x!.dtype, shape: [...x!.shape.slice(0, -1), (x!.shape.at(-1) as number) / 2] }],
    reference: ([x]) => [x!],
    lowering: { kind: "trtllm", callee: "tensorrt_llm.functional.swiglu", args: { input: { input: 0 } } },
  });
  const NORM = defineOp({
    name: "test.rms_norm_64",
    doc: "RMSNorm over a last dim of 64",
    attrs: { eps: "number" },
    inputs: ["x", "weight"],
    outputs: ["y"],
    infer: ([x]) => [x!],
    reference: ([x]) => [x!],
    lowering: {
      kind: "trtllm",
      callee: "tensorrt_llm.functional.rms_norm",
      args: { input: { input: 0 }, normalized_shape: { value: 64 }, weight: { input: 1 }, eps: { attr: "eps" } },
    },
  });

  it("calls the callee with keyword arguments, checked by the API checker", () => {
    expect(() => checkLowering(SWIGLU)).not.toThrow();
    const a = glue("test.swiglu", {}, ["x"]);
    const b = glue("test.rms_norm_64", { eps: 1e-6 }, ["x", "weight"]);
    expect(a.code).toBe("F.swiglu(input=x)");
    expect(b.code).toBe("F.rms_norm(input=x, normalized_shape=64, weight=weight, eps=0.000001)");
    const r = apiCheck("probe_call.py", probe(a.imports, [`y = ${a.code}`, `return ${b.code}`]));
    expect(r.problems, r.text).toEqual([]);
    expect(customOpFiles({ nodes: [{ op: NORM.name }] } as never)).toEqual({});
  });

  const bad: [string, string, Record<string, object>, RegExp][] = [
    [
      "an unknown callee",
      "tensorrt_llm.functional.swiglu2",
      { input: { input: 0 } },
      /custom op 'test\.bad\d': lowering\.callee tensorrt_llm\.functional\.swiglu2 is not in TensorRT-LLM 1\.2's API/,
    ],
    ["an unknown parameter", "tensorrt_llm.functional.swiglu", { x: { input: 0 } }, /tensorrt_llm\.functional\.swiglu has no parameter 'x' \(it takes input\)/],
    [
      "a missing required parameter",
      "tensorrt_llm.functional.rms_norm",
      { input: { input: 0 } },
      /leaves out tensorrt_llm\.functional\.rms_norm's required parameter 'normalized_shape'/,
    ],
  ];
  bad.forEach(([what, callee, args, message], i) =>
    it(`rejects ${what}`, () => {
      const op = defineOp({
        name: `test.bad${i}`,
        doc: "x",
        attrs: {},
        inputs: ["x"],
        outputs: ["y"],
        infer: ([x]) => [x!],
        reference: ([x]) => [x!],
        lowering: { kind: "trtllm", callee, args } as never,
      });
      expect(() => checkLowering(op)).toThrow(CustomOpEmitError);
      expect(() => checkLowering(op)).toThrow(message);
      expect(() => customOpGlue(op.name, new Imports())).toThrow(message);
    }),
  );

  it("rejects an op without a lowering and attributes named like Python keywords", () => {
    const none = defineOp({ name: "test.nolower", doc: "x", attrs: {}, inputs: ["x"], outputs: ["y"], infer: ([x]) => [x!], reference: ([x]) => [x!] });
    expect(() => checkLowering(none)).toThrow(/custom op 'test\.nolower': declares no TensorRT-LLM lowering/);
    const kw = defineOp({
      name: "test.kw",
      doc: "x",
      attrs: { lambda: "number" },
      inputs: ["x"],
      outputs: ["y"],
      infer: ([x]) => [x!],
      reference: ([x]) => [x!],
      lowering: { kind: "trtllm", callee: "tensorrt_llm.functional.swiglu", args: { input: { input: 0 } } },
    });
    expect(() => checkLowering(kw)).toThrow(/attribute 'lambda' is a Python keyword/);
  });
});
