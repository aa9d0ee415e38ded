// Custom ops: user-declared IR ops with a shape/dtype rule, a TypeScript reference that the interpreter runs, and one
// slot per kind of target: `lowering` for the trtllm-engine target (an existing TensorRT-LLM callable, or a Python
// plugin around the user's Triton kernel) and `pytorch` for the PyTorch-based targets (a plain-PyTorch function).
// A target whose slot is empty refuses the op with a one-line error naming the slot.
// `defineOp` checks the declaration, registers the op in the op table and its reference in the interpreter's kernel
// table, and returns a handle that emits the op while tracing. From then on the op works wherever a built-in one
// does: tracing, verifier, printer, protobuf, patterns and rewrites, equivalence checks, lowering (kept as it is)
// and the tensor-parallel simulator (replicated inputs).
// Invariants: every problem in a declaration is an OpDeclError naming the op and the field; the shape rule and the
// reference are checked against each other on every interpreter call, and once at definition time on the first
// verification case; a name is registered once (an identical re-declaration returns the first handle).

import { existsSync, readFileSync } from "node:fs";
import { isAbsolute } from "node:path";
import { fileURLToPath } from "node:url";
import { type AttrKind, type AttrSchema, type AttrsOf, checkAttr, checkAttrs, type JsonValue } from "../ir/attrs.ts";
import { DTYPES } from "../ir/dtype.ts";
import { CORE_OPS, opDef, registerOp, ShapeError, type ValueType } from "../ir/ops.ts";
import { formatShape } from "../ir/shape.ts";
import { rng } from "../interp/equivalence.ts";
import { registerKernel } from "../interp/run.ts";
import { numel, type RTensor, tensor } from "../interp/tensor.ts";
import { Tensor } from "../dsl/tensor.ts";
import { activeTracer } from "../dsl/tracer.ts";

export class OpDeclError extends Error {}

/** Where one argument of a TensorRT-LLM call comes from. */
export type ArgSource = { readonly input: number } | { readonly attr: string } | { readonly value: JsonValue };

/** Route 1: an existing TensorRT-LLM callable (a functional op; those that need a plugin add it themselves). */
export interface TrtllmCallLowering {
  readonly kind: "trtllm";
  /** Fully qualified name in TensorRT-LLM 1.2, e.g. "tensorrt_llm.functional.swiglu" (checked against the API manifest). */
  readonly callee: string;
  /** Callee parameter name -> its value; passed by keyword. */
  readonly args: Readonly<Record<string, ArgSource>>;
}

/** Route 2: a `tensorrt_llm.python_plugin` plugin whose forward launches the user's OpenAI Triton kernel. */
export interface PythonPluginLowering {
  readonly kind: "python_plugin";
  /** The kernel module: `new URL("./my_kernel.py", import.meta.url)` or an absolute path. */
  readonly kernel: string | URL;
  /** Host function in the kernel module, `launch(inputs, outputs, **attrs)`, writing into `outputs` (default "launch"). */
  readonly launch?: string;
  /** PyTorch transcription with unfused ops, `torch_reference(inputs, **attrs) -> outputs` (default "torch_reference"). */
  readonly torchReference?: string;
  /** For each output, the input whose shape and dtype it has (becomes the plugin's shape_dtype_inference)... */
  readonly outputLike?: readonly number[];
  /** ...or the name of a Python `shape_dtype_inference(inputs)` function in the kernel module. */
  readonly shapeRule?: string;
  /** TensorRT plugin name (default "Kiln" + the op name in PascalCase). */
  readonly pluginName?: string;
}

export type OpLowering = TrtllmCallLowering | PythonPluginLowering;

/**
 * How the PyTorch-based targets (trtllm-torch, hf) compute the op: `function(inputs, **attrs)` in a Python module
 * that imports only torch, taking the input tensors as a list and returning a list with one tensor per output.
 * The module is copied into the generated output. Without it those targets refuse the op, naming this field.
 */
export interface PytorchImplementation {
  /** The module: `new URL("./my_op_torch.py", import.meta.url)` or an absolute path. */
  readonly module: string | URL;
  /** The function in the module (default "torch_reference"). */
  readonly function?: string;
}

export type FloatDType = "f32" | "f16" | "bf16";

export interface VerifyCase<S extends AttrSchema> {
  /** One concrete shape per input; every input gets the case's dtype. */
  readonly shapes: readonly (readonly number[])[];
  readonly attrs: AttrsOf<S>;
}

/** What `kiln verify-op` checks: correctness cases (reference outputs exported) and shapes timed on the GPU. */
export interface VerifySpec<S extends AttrSchema> {
  readonly cases: readonly VerifyCase<S>[];
  readonly dtypes?: readonly FloatDType[];
  readonly bench?: readonly VerifyCase<S>[];
  /** Largest relative L2 error per output, by dtype (defaults in verify-cases.ts). */
  readonly tolerance?: Partial<Record<FloatDType, number>>;
}

export interface OpDecl<S extends AttrSchema = AttrSchema> {
  /** lower_snake_case, dots allowed for namespaces ("mylib.fused_norm"). */
  readonly name: string;
  readonly doc: string;
  readonly attrs: S;
  /** Input names in order; a trailing "?" marks an optional trailing input ("bias?"). */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Shape/dtype rule: output types from input types (symbolic dims allowed). Throw ShapeError to reject operands. */
  readonly infer: (ins: readonly ValueType[], attrs: AttrsOf<S>) => ValueType[];
  /** Reference implementation the interpreter runs (float32 values, as every interpreter kernel). */
  readonly reference: (ins: readonly RTensor[], attrs: AttrsOf<S>) => RTensor[];
  /** The trtllm-engine target's route (model.py). */
  readonly lowering?: OpLowering;
  /** The PyTorch-based targets' implementation (trtllm-torch, hf). */
  readonly pytorch?: PytorchImplementation;
  readonly verify?: VerifySpec<S>;
}

/** A declared op. `apply` emits it into the active trace and returns one tensor per declared output. */
export interface CustomOp<S extends AttrSchema = any> {
  readonly kind: "kiln.custom-op";
  readonly name: string;
  readonly decl: OpDecl<S>;
  /** Absolute path of the Python plugin's kernel module, when the lowering is a Python plugin. */
  readonly kernelPath?: string;
  /** Absolute path of the PyTorch implementation's module, when the declaration has one. */
  readonly pytorchPath?: string;
  apply(inputs: readonly Tensor[], attrs: AttrsOf<S>): Tensor[];
}

const declared = new Map<string, { op: CustomOp<any>; fingerprint: string }>();

/** The custom op registered under `name`, if any. */
export function customOp(name: string): CustomOp | undefined {
  return declared.get(name)?.op;
}

export function customOps(): CustomOp[] {
  return [...declared.values()].map((d) => d.op);
}

export const isCustomOp = (x: unknown): x is CustomOp => typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "kiln.custom-op";

const NAME = /^[a-z_][a-z0-9_.]*$/;
const FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;

function problem(op: string, msg: string): never {
  throw new OpDeclError(`custom op '${op}': ${msg}`);
}

const isFn = (f: unknown): f is (...a: never[]) => unknown => typeof f === "function";
const fmt = (t: ValueType) => `${t.dtype}${formatShape(t.shape)}`;

/** Resolves a kernel reference to an absolute file path (relative strings are ambiguous: relative to what?). */
export function resolveKernelPath(op: string, kernel: string | URL, field = "lowering.kernel"): string {
  const path = typeof kernel !== "string" ? fileURLToPath(kernel) : kernel.startsWith("file:") ? fileURLToPath(kernel) : kernel;
  if (!isAbsolute(path)) problem(op, `${field} '${path}' is relative; give new URL("./${path}", import.meta.url) or an absolute path`);
  if (!existsSync(path)) problem(op, `${field} ${path} does not exist`);
  return path;
}

const definesFunction = (source: string, name: string) => new RegExp(`^def\\s+${name}\\s*\\(`, "m").test(source);

function checkPythonPlugin(op: string, l: PythonPluginLowering, d: OpDecl<any>): string {
  const path = resolveKernelPath(op, l.kernel);
  const source = readFileSync(path, "utf8");
  const fns: [string, string | undefined, boolean][] = [
    ["launch", l.launch ?? "launch", true],
    ["torchReference", l.torchReference, false],
    ["shapeRule", l.shapeRule, false],
  ];
  for (const [field, fn, required] of fns) {
    if (fn === undefined && !required) continue;
    if (!FIELD.test(fn!)) problem(op, `lowering.${field} '${fn}' is not a Python function name`);
    if (!definesFunction(source, fn!)) problem(op, `lowering.${field}: ${path} defines no top-level function '${fn}'`);
  }
  if ((l.outputLike === undefined) === (l.shapeRule === undefined))
    problem(op, "a python_plugin lowering needs exactly one of outputLike (each output's input twin) or shapeRule (a Python shape_dtype_inference)");
  if (l.outputLike) {
    if (l.outputLike.length !== d.outputs.length) problem(op, `lowering.outputLike has ${l.outputLike.length} entries for ${d.outputs.length} outputs`);
    l.outputLike.forEach(
      (k, j) =>
        (Number.isInteger(k) && k >= 0 && k < d.inputs.length) ||
        problem(op, `lowering.outputLike[${j}] = ${k} is not an input index (0..${d.inputs.length - 1})`),
    );
  }
  if (l.pluginName !== undefined && !FIELD.test(l.pluginName)) problem(op, `lowering.pluginName '${l.pluginName}' must be letters, digits and '_'`);
  return path;
}

function checkTrtllmCall(op: string, l: TrtllmCallLowering, d: OpDecl<any>): void {
  if (typeof l.callee !== "string" || !/^tensorrt_llm(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(l.callee))
    problem(op, `lowering.callee '${l.callee}' must be a dotted name inside tensorrt_llm (e.g. tensorrt_llm.functional.swiglu)`);
  for (const [param, src] of Object.entries(l.args ?? {})) {
    if (!FIELD.test(param)) problem(op, `lowering.args: '${param}' is not a Python parameter name`);
    if ("input" in src && !(Number.isInteger(src.input) && src.input >= 0 && src.input < d.inputs.length))
      problem(op, `lowering.args.${param}: input ${src.input} is not an input index (0..${d.inputs.length - 1})`);
    if ("attr" in src && !(src.attr in d.attrs)) problem(op, `lowering.args.${param}: the op has no attribute '${src.attr}'`);
  }
}

/** Validates everything about a declaration that can be checked without running it; returns the kernel path. */
function checkDecl(d: OpDecl<any>): string | undefined {
  const op = typeof d.name === "string" ? d.name : String(d.name);
  if (!NAME.test(op)) problem(op, "the name must be lower_snake_case (dots allowed for namespaces)");
  if (op in CORE_OPS) problem(op, "clashes with a built-in op of the same name");
  if (!isFn(d.infer)) problem(op, "missing `infer`, the shape/dtype rule (ins, attrs) => output types");
  if (!isFn(d.reference)) problem(op, "missing `reference`, the TypeScript implementation the interpreter runs (ins, attrs) => outputs");
  if (typeof d.doc !== "string" || !d.doc) problem(op, "missing `doc`, one line saying what the op computes");
  for (const [key, kind] of Object.entries(d.attrs ?? problem(op, "missing `attrs` (use {} for none)"))) {
    if (!FIELD.test(key)) problem(op, `attribute name '${key}' must be letters, digits and '_' (it becomes a Python keyword argument)`);
    const ok =
      typeof kind === "object"
        ? Array.isArray((kind as { oneOf?: unknown }).oneOf)
        : ["number", "int", "bool", "string", "ints", "dims", "dtype", "json"].includes(kind as string);
    if (!ok) problem(op, `attribute '${key}' has unknown kind ${JSON.stringify(kind)}`);
  }
  for (const [field, names] of [
    ["inputs", d.inputs],
    ["outputs", d.outputs],
  ] as const) {
    if (!Array.isArray(names) || names.length === 0) problem(op, `\`${field}\` must name at least one ${field.slice(0, -1)}`);
    const bare = names.map((n) => n.replace(/\?$/, ""));
    bare.forEach((n) => FIELD.test(n) || problem(op, `${field.slice(0, -1)} name '${n}' must be letters, digits and '_'`));
    if (new Set(bare).size !== bare.length) problem(op, `\`${field}\` repeats a name`);
  }
  if (d.outputs.some((n) => n.endsWith("?"))) problem(op, "outputs cannot be optional");
  const firstOptional = d.inputs.findIndex((n) => n.endsWith("?"));
  if (firstOptional >= 0 && d.inputs.slice(firstOptional).some((n) => !n.endsWith("?"))) problem(op, "optional inputs ('name?') must all come last");
  if (!d.lowering) return undefined;
  if (d.lowering.kind === "trtllm") return void checkTrtllmCall(op, d.lowering, d);
  if (d.lowering.kind === "python_plugin") return checkPythonPlugin(op, d.lowering, d);
  return problem(op, `lowering.kind '${(d.lowering as { kind?: unknown }).kind}' is neither "trtllm" nor "python_plugin"`);
}

const arityOf = (d: OpDecl<any>): [number, number] => [d.inputs.filter((n) => !n.endsWith("?")).length, d.inputs.length];

/** The declaration's shape rule, with its result checked and any failure turned into a ShapeError naming the op. */
function checkedInfer(d: OpDecl<any>) {
  return (ins: readonly ValueType[], attrs: any): ValueType[] => {
    let outs: unknown;
    try {
      outs = d.infer(ins, attrs);
    } catch (e) {
      if (e instanceof ShapeError) throw e;
      throw new ShapeError(`shape rule of custom op '${d.name}' threw: ${(e as Error).message}`);
    }
    if (!Array.isArray(outs) || outs.length !== d.outputs.length)
      throw new ShapeError(
        `shape rule of custom op '${d.name}' returned ${Array.isArray(outs) ? outs.length : "no list of"} output types, the declaration names ${d.outputs.length} (${d.outputs.join(", ")})`,
      );
    outs.forEach((t: ValueType, k) => {
      const ok =
        t &&
        (DTYPES as readonly string[]).includes(t.dtype) &&
        Array.isArray(t.shape) &&
        t.shape.every((x) => (Number.isInteger(x) && (x as number) >= 0) || (typeof x === "string" && x !== ""));
      if (!ok) throw new ShapeError(`shape rule of custom op '${d.name}' returned an invalid type for output ${k} (${d.outputs[k]}): ${JSON.stringify(t)}`);
    });
    return outs as ValueType[];
  };
}

/** Compares what the reference returned with what the shape rule says for these concrete inputs; a reason or undefined. */
export function referenceMismatch(d: OpDecl<any>, ins: readonly RTensor[], outs: unknown, attrs: unknown): string | undefined {
  const expect = checkedInfer(d)(
    ins.map((t) => ({ dtype: t.dtype, shape: t.shape })),
    attrs,
  );
  if (!Array.isArray(outs) || outs.length !== expect.length)
    return `the reference returned ${Array.isArray(outs) ? outs.length : "no list of"} outputs, the shape rule ${expect.length}`;
  for (const [k, t] of expect.entries()) {
    const o = outs[k] as RTensor | undefined;
    const got = o ? `${o.dtype}${formatShape(o.shape)}` : "nothing";
    if (got !== fmt(t))
      return `the shape rule says output ${k} (${d.outputs[k]}) is ${fmt(t)} but the reference returned ${got} for inputs ${ins.map((x) => `${x.dtype}${formatShape(x.shape)}`).join(", ")}`;
    if (o!.data.length !== numel(o!.shape)) return `the reference's output ${k} has ${o!.data.length} elements for shape ${formatShape(o!.shape)}`;
  }
  return undefined;
}

/** Random float inputs for one verification case (uniform in [-1, 1), deterministic per seed). */
export function caseInputs(c: VerifyCase<any>, seed: number, dtype: FloatDType = "f32", round: (v: number) => number = Math.fround): RTensor[] {
  const rand = rng(seed);
  return c.shapes.map((s) =>
    tensor(
      dtype,
      s,
      Float32Array.from({ length: numel(s) }, () => round(rand() * 2 - 1)),
    ),
  );
}

function checkVerifySpec(d: OpDecl<any>): void {
  const v = d.verify!;
  const [lo, hi] = arityOf(d);
  const all = [...(v.cases ?? []), ...(v.bench ?? [])];
  if (!v.cases?.length) problem(d.name, "verify.cases must list at least one case");
  for (const [i, c] of all.entries()) {
    const where = i < v.cases.length ? `verify.cases[${i}]` : `verify.bench[${i - v.cases.length}]`;
    if (c.shapes.length < lo || c.shapes.length > hi)
      problem(d.name, `${where} gives ${c.shapes.length} input shapes, the op takes ${lo === hi ? lo : `${lo}..${hi}`}`);
    if (c.shapes.some((s) => !s.every((x) => Number.isInteger(x) && x > 0))) problem(d.name, `${where}: shapes must be positive integers`);
    const why = checkAttrs(d.attrs, c.attrs as Record<string, unknown>);
    if (why) problem(d.name, `${where}: ${why}`);
  }
  for (const t of v.dtypes ?? []) if (!["f32", "f16", "bf16"].includes(t)) problem(d.name, `verify.dtypes: '${t}' is not f32, f16 or bf16`);
  // The shape rule and the reference must agree; one small case at definition time catches a wrong rule early.
  const first = v.cases[0]!;
  let mismatch: string | undefined;
  try {
    const ins = caseInputs(first, 1);
    mismatch = referenceMismatch(d, ins, d.reference(ins, first.attrs), first.attrs);
  } catch (e) {
    mismatch = (e as Error).message;
  }
  if (mismatch) problem(d.name, `verify.cases[0]: ${mismatch}`);
}

function fingerprint(d: OpDecl<any>, kernelPath: string | undefined, pytorchPath: string | undefined): string {
  const { infer, reference, lowering, pytorch, ...rest } = d;
  return JSON.stringify([
    rest,
    lowering && { ...lowering, kernel: kernelPath },
    pytorch && { ...pytorch, module: pytorchPath },
    String(infer),
    String(reference),
  ]);
}

/** Validates the PyTorch implementation's module and function; returns the module's absolute path. */
function checkPytorch(op: string, p: PytorchImplementation): string {
  const path = resolveKernelPath(op, p.module, "pytorch.module");
  const fn = p.function ?? "torch_reference";
  if (!FIELD.test(fn)) problem(op, `pytorch.function '${fn}' is not a Python function name`);
  if (!definesFunction(readFileSync(path, "utf8"), fn)) problem(op, `pytorch.function: ${path} defines no top-level function '${fn}'`);
  return path;
}

/** Declares and registers a custom op. Throws OpDeclError for a malformed declaration. */
export function defineOp<const S extends AttrSchema>(d: OpDecl<S>): CustomOp<S> {
  const kernelPath = checkDecl(d);
  const pytorchPath = d.pytorch && checkPytorch(d.name, d.pytorch);
  const print = fingerprint(d, kernelPath, pytorchPath);
  const existing = declared.get(d.name);
  if (existing) {
    if (existing.fingerprint === print) return existing.op as CustomOp<S>;
    problem(d.name, "is already declared with a different declaration");
  }
  if (opDef(d.name)) problem(d.name, "clashes with an op that is already registered");
  if (d.verify) checkVerifySpec(d);
  const infer = checkedInfer(d);
  registerOp(d.name, { attrs: d.attrs, arity: arityOf(d), infer, doc: d.doc });
  registerKernel(d.name, (ins, attrs) => {
    const outs = d.reference(ins, attrs);
    const why = referenceMismatch(d, ins, outs, attrs);
    if (why) throw new Error(`custom op '${d.name}': ${why}`);
    return outs;
  });
  const op: CustomOp<S> = {
    kind: "kiln.custom-op",
    name: d.name,
    decl: d,
    ...(kernelPath && { kernelPath }),
    ...(pytorchPath && { pytorchPath }),
    apply(inputs, attrs) {
      for (const [k, kind] of Object.entries(d.attrs) as [string, AttrKind][]) {
        const why = checkAttr(kind, (attrs as Record<string, unknown>)[k]);
        if (why) throw new OpDeclError(`custom op '${d.name}': attribute '${k}': ${why}, got ${JSON.stringify((attrs as Record<string, unknown>)[k])}`);
      }
      const extra = Object.keys(attrs).find((k) => !(k in d.attrs));
      if (extra) throw new OpDeclError(`custom op '${d.name}': unknown attribute '${extra}'`);
      return activeTracer()
        .emit(
          d.name,
          inputs.map((t) => t.id),
          { ...attrs },
        )
        .map((v) => new Tensor(v));
    },
  };
  declared.set(d.name, { op, fingerprint: print });
  return op;
}
