// TensorRT-LLM 1.2.1 emission of custom ops (src/custom-ops/custom-op.ts), by the route each op declares:
//   "trtllm":        a call of an existing TensorRT-LLM callable, arguments by keyword, checked against the API manifest;
//   "python_plugin": a `tensorrt_llm.python_plugin` plugin class (PluginBase + @trtllm_plugin) whose forward launches the
//                    user's Triton kernel; the classes live in a generated package `kiln_plugins/` beside model.py (the
//                    kernel module copied in), and model.py imports them from it, which registers them.
// model.py hook: `GLUE_OPS[n.op] ?? customOpGlue(n.op, em.imports) ?? fail(...)`; the engine emitter adds
// `customOpFiles(graph)` to its files and runs trtllm-build (and later the engine) with the checkpoint directory on
// PYTHONPATH (`pluginPythonPath`), because TensorRT finds a Python plugin only if its module was imported.
// Invariants: user strings reach Python only through codegen/python/identifiers; output is deterministic; every
// failure is a CustomOpEmitError naming the op.

import { shellPrependPath } from "../../src/io/shell.ts";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { JsonValue } from "../../src/ir/attrs.ts";
import type { Graph } from "../../src/ir/graph.ts";
import { type CustomOp, customOp, type PythonPluginLowering, type TrtllmCallLowering } from "../../src/custom-ops/custom-op.ts";
import { isPlainAttribute, pascalCase, pyLiteral, pyString } from "../python/identifiers.ts";
import { Imports, PyWriter } from "../python/writer.ts";
import type { AnyGlueCtx } from "./model-py-ops.ts";

export class CustomOpEmitError extends Error {
  override name = "CustomOpEmitError";
}

const fail = (op: string, msg: string): never => {
  throw new CustomOpEmitError(`custom op '${op}': ${msg}`);
};

/** The package of generated plugin classes, written beside model.py. */
export const PLUGIN_PACKAGE = "kiln_plugins";
export const TRTLLM_MANIFEST = fileURLToPath(new URL("../apicheck/trtllm-1.2.json", import.meta.url));
/** `tensorrt_llm.python_plugin` as of the 1.2 line (see codegen/apicheck/README.md for its origin). */
export const PYTHON_PLUGIN_MANIFEST = fileURLToPath(new URL("../apicheck/trtllm-1.2-python-plugin.json", import.meta.url));

/** Environment prefix for trtllm-build and for every process that loads an engine with Kiln's Python plugins. */
export const pluginPythonPath = (checkpointDir: string): string => shellPrependPath("PYTHONPATH", checkpointDir);

// ---------------------------------------------------------------------------------------------------------------
// Route 1: existing TensorRT-LLM callables, checked against the manifest

interface ManifestParam {
  readonly name: string;
  readonly kind: "positional_only" | "positional_or_keyword" | "var_positional" | "keyword_only" | "var_keyword";
  readonly has_default: boolean;
}
interface Manifest {
  readonly modules: Record<
    string,
    {
      functions?: Record<string, { params: ManifestParam[] }>;
      partial_functions?: Record<string, { params: ManifestParam[] }>;
      classes?: Record<string, { methods: Record<string, { params: ManifestParam[] }> }>;
    }
  >;
  readonly resolution: Record<string, { target: string; kind: string }>;
}

let manifest: Manifest | undefined;
const loadManifest = (): Manifest => (manifest ??= JSON.parse(readFileSync(TRTLLM_MANIFEST, "utf8")) as Manifest);

/** Parameters of a callable in the manifest (functions, functools.partial ops, class constructors), or undefined. */
function calleeParams(callee: string): ManifestParam[] | undefined {
  const m = loadManifest();
  const target = m.resolution[callee]?.target;
  if (!target) return undefined;
  const dot = target.lastIndexOf(".");
  const mod = m.modules[target.slice(0, dot)];
  const name = target.slice(dot + 1);
  return mod?.functions?.[name]?.params ?? mod?.partial_functions?.[name]?.params ?? mod?.classes?.[name]?.methods.__init__?.params;
}

/** Throws unless the op's lowering can be emitted: a known callee given only parameters it has, all required ones. */
export function checkLowering(op: CustomOp): void {
  const l = op.decl.lowering ?? fail(op.name, 'declares no TensorRT-LLM lowering (lowering: { kind: "trtllm" | "python_plugin", ... })');
  for (const a of Object.keys(op.decl.attrs))
    if (!isPlainAttribute(a)) fail(op.name, `attribute '${a}' is a Python keyword, so it cannot be a keyword argument`);
  if (l.kind === "python_plugin") return;
  const params =
    calleeParams(l.callee) ?? fail(op.name, `lowering.callee ${l.callee} is not in TensorRT-LLM 1.2's API (codegen/apicheck/trtllm-1.2.json); check the name`);
  const byName = new Map(params.map((p) => [p.name, p]));
  const varKw = params.some((p) => p.kind === "var_keyword");
  for (const k of Object.keys(l.args)) {
    const p = byName.get(k);
    if (!p && !varKw)
      fail(
        op.name,
        `${l.callee} has no parameter '${k}' (it takes ${params
          .filter((q) => !q.kind.startsWith("var"))
          .map((q) => q.name)
          .join(", ")})`,
      );
    if (p && (p.kind === "positional_only" || p.kind.startsWith("var"))) fail(op.name, `${l.callee}'s parameter '${k}' cannot be passed by keyword`);
  }
  const missing = params.filter((p) => !p.has_default && (p.kind === "positional_or_keyword" || p.kind === "keyword_only") && !(p.name in l.args));
  if (missing.length)
    fail(op.name, `lowering.args leaves out ${l.callee}'s required parameter${missing.length > 1 ? "s" : ""} ${missing.map((p) => `'${p.name}'`).join(", ")}`);
}

function callGlue(op: CustomOp, l: TrtllmCallLowering, imports: ImportSink): (c: AnyGlueCtx) => string {
  const dot = l.callee.lastIndexOf(".");
  const [mod, name] = [l.callee.slice(0, dot), l.callee.slice(dot + 1)];
  return (c) => {
    const fn = mod === "tensorrt_llm.functional" ? c.F(name) : imports.use(mod, name);
    const args = Object.entries(l.args).map(([k, src]) => {
      if ("input" in src)
        return `${k}=${c.args[src.input]?.expr ?? fail(op.name, `lowering.args.${k} reads input ${src.input}, which ${c.node.op} at ${c.node.scope} does not have`)}`;
      if ("attr" in src) return `${k}=${pyLiteral(c.node.attrs[src.attr] as JsonValue)}`;
      return `${k}=${pyLiteral(src.value)}`;
    });
    return `${fn}(${args.join(", ")})`;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Route 2: Python plugins

interface PluginNames {
  /** Module of the plugin class inside kiln_plugins (and stem of the kernel copy). */
  readonly module: string;
  readonly cls: string;
  readonly trtName: string;
}

function pluginNames(op: CustomOp, l: PythonPluginLowering): PluginNames {
  const stem = op.name.replace(/[^a-z0-9_]/g, "_");
  return { module: stem, cls: `${pascalCase(op.name)}Plugin`, trtName: l.pluginName ?? `Kiln${pascalCase(op.name)}` };
}

/** The plugin class module (kiln_plugins/<op>.py). */
export function pluginModuleSource(op: CustomOp): string {
  const l = op.decl.lowering as PythonPluginLowering;
  const names = pluginNames(op, l);
  const attrs = Object.keys(op.decl.attrs);
  const kernel = `${names.module}_kernel`;
  const launch = l.launch ?? "launch";
  const [std, trt] = [new Imports(), new Imports()];
  const seq = std.use("typing", "Sequence");
  const symTensor = trt.use("tensorrt_llm.python_plugin", "SymTensor");
  const base = trt.use("tensorrt_llm.python_plugin", "PluginBase");
  const register = trt.use("tensorrt_llm.python_plugin", "trtllm_plugin");
  const toTorch = trt.use("tensorrt_llm._utils", "convert_to_torch_tensor");
  const n = op.decl.outputs.length;
  // trtllm_plugin counts the plugin's outputs from this return annotation: SymTensor, or a Tuple of SymTensors.
  const outputs = n === 1 ? symTensor : `${std.use("typing", "Tuple")}[${Array(n).fill(symTensor).join(", ")}]`;
  const w = new PyWriter();
  w.docstring([
    `TensorRT-LLM Python plugin of the Kiln custom op ${op.name}.`,
    "",
    "Generated by Kiln; do not edit. forward() calls",
    `\`${launch}\` of ${kernel}.py, a copy of the user's Triton kernel module.`,
    "TensorRT-LLM registers the plugin when this module is imported",
    `(see ${PLUGIN_PACKAGE}/__init__.py).`,
  ]);
  for (const line of std.lines()) w.line(line);
  w.blank();
  for (const line of trt.lines()) w.line(line);
  w.blank();
  w.line(`from .${kernel} import ${launch} as _launch`);
  if (l.shapeRule) w.line(`from .${kernel} import ${l.shapeRule} as _shape_rule`);
  w.blank(2);
  w.line(`_Outputs = ${outputs}`);
  w.blank(2);
  w.line(`@${register}(${pyString(names.trtName)})`);
  w.block(`class ${names.cls}(${base}):`, () => {
    w.docstring([`Inputs: ${op.decl.inputs.join(", ")}. Outputs: ${op.decl.outputs.join(", ")}.`]);
    w.blank();
    w.comment(op.decl.doc);
    w.blank();
    w.blockCall("def __init__", ["self", ...attrs], () => {
      w.line("super().__init__()");
      // One dict for the op's attributes: PluginBase pickles __dict__ into the engine, and no attribute name can
      // collide with PluginBase's own fields.
      w.line(`self.kiln_attrs = {${attrs.map((a) => `${pyString(a)}: ${a}`).join(", ")}}`);
    });
    w.blank();
    w.block(`def shape_dtype_inference(self, inputs: ${seq}[${symTensor}]) -> _Outputs:`, () => {
      if (l.shapeRule) return void w.line("return _shape_rule(inputs)");
      const like = l.outputLike!;
      if (n === 1) return void w.line(`return ${symTensor}(inputs[${like[0]}].dtype, inputs[${like[0]}].shape)`);
      w.comment("Each output has the shape and dtype of one input.");
      w.line(`like = (${like.join(", ")})`);
      w.line(`return tuple(${symTensor}(inputs[k].dtype, inputs[k].shape) for k in like)`);
    });
    w.blank();
    w.block("def forward(self, inputs, outputs):", () => {
      w.line(`_launch([${toTorch}(t) for t in inputs],`);
      w.line(`        [${toTorch}(t) for t in outputs], **self.kiln_attrs)`);
    });
  });
  return w.toString();
}

function packageInit(ops: readonly CustomOp[]): string {
  const w = new PyWriter();
  w.docstring([
    "Kiln's generated TensorRT-LLM Python plugins for this checkpoint.",
    "",
    "Importing this package registers every plugin with TensorRT. A built",
    "engine only names its plugins, so the import must happen in every",
    "process that builds or loads the engine: model.py imports it for",
    "trtllm-build, and a runtime must `import kiln_plugins` before it",
    "deserializes the engine. Put the checkpoint directory on PYTHONPATH",
    "for both. The plugins run Python (and Triton) at inference, so the",
    "C++-only Triton `tensorrtllm` backend cannot serve such an engine.",
  ]);
  const names = ops.map((op) => pluginNames(op, op.decl.lowering as PythonPluginLowering)).sort((a, b) => a.module.localeCompare(b.module));
  for (const p of names) w.line(`from .${p.module} import ${p.cls}`);
  w.blank();
  w.line(`__all__ = [${names.map((p) => pyString(p.cls)).join(", ")}]`);
  return w.toString();
}

/** Custom ops a graph uses, by name, in first-use order. */
export function customOpsIn(g: Graph): CustomOp[] {
  const seen = new Map<string, CustomOp>();
  for (const n of g.nodes) {
    const op = customOp(n.op);
    if (op && !seen.has(op.name)) seen.set(op.name, op);
  }
  return [...seen.values()];
}

/** Files to write beside model.py for the graph's Python-plugin ops (empty when it has none). */
export function customOpFiles(g: Graph): Record<string, string> {
  const ops = customOpsIn(g);
  ops.forEach(checkLowering);
  const plugins = ops.filter((op) => op.decl.lowering?.kind === "python_plugin");
  if (!plugins.length) return {};
  const classes = new Map<string, string>();
  const files: Record<string, string> = { [`${PLUGIN_PACKAGE}/__init__.py`]: packageInit(plugins) };
  for (const op of plugins) {
    const names = pluginNames(op, op.decl.lowering as PythonPluginLowering);
    const clash = classes.get(names.cls) ?? classes.get(names.module);
    if (clash) fail(op.name, `its plugin class ${names.cls} or module ${names.module} clashes with custom op '${clash}'; rename one of them`);
    classes.set(names.cls, op.name).set(names.module, op.name);
    files[`${PLUGIN_PACKAGE}/${names.module}.py`] = pluginModuleSource(op);
    files[`${PLUGIN_PACKAGE}/${names.module}_kernel.py`] = readFileSync(op.kernelPath!, "utf8");
  }
  return files;
}

// ---------------------------------------------------------------------------------------------------------------
// The model.py hook

export interface ImportSink {
  use(module: string, name: string): string;
}

/** How model.py computes a custom op's node (same contract as GLUE_OPS rules); undefined for other ops. */
export function customOpGlue(opName: string, imports: ImportSink): ((c: AnyGlueCtx) => string) | undefined {
  const op = customOp(opName);
  if (!op) return undefined;
  checkLowering(op);
  const l = op.decl.lowering!;
  if (l.kind === "trtllm") return callGlue(op, l, imports);
  const cls = imports.use(PLUGIN_PACKAGE, pluginNames(op, l).cls);
  return (c) => {
    const attrs = Object.keys(op.decl.attrs).map((a) => `${a}=${pyLiteral(c.node.attrs[a] as JsonValue)}`);
    const ins = c.args.map((a, k) => (a.literal ? fail(op.name, `input ${k} (${op.decl.inputs[k]}) is a constant; a plugin input must be a tensor`) : a.expr));
    return `${cls}(${attrs.join(", ")})(${ins.join(", ")})`;
  };
}
