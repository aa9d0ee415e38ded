// The data behind `kiln verify-op`: the op's verification cases run through its TypeScript reference for every
// dtype (inputs rounded to that dtype first, so the GPU sees exactly the values the reference saw), written as a
// self-contained folder: cases.safetensors (inputs and reference outputs, float32), manifest.json (cases, bench
// shapes, tolerances, the kernel module's function names), a copy of the kernel module, and verify_op_runner.py.
// Invariants: deterministic (fixed seeds); every case is checked against the shape rule before it is written; the
// folder needs only python3 + torch (+ triton and CUDA for the kernel) to check, nothing from Kiln.

import { copyFileSync, writeFileSync } from "node:fs";
import { checkOutputDir, writeOutputDir } from "../io/output-guard.ts";
import { shellCommand } from "../io/shell.ts";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { RTensor } from "../interp/tensor.ts";
import { roundToBf16, roundToF16 } from "../weights/half.ts";
import { writeSafetensors } from "../weights/safetensors.ts";
import { caseInputs, type CustomOp, type FloatDType, OpDeclError, type PythonPluginLowering, referenceMismatch, type VerifyCase } from "./custom-op.ts";

/** Largest relative L2 error per output: float32 math everywhere, so the output's own rounding dominates. */
export const DEFAULT_TOLERANCE: Record<FloatDType, number> = { f32: 1e-5, f16: 1e-3, bf16: 8e-3 };
export const RUNNER = fileURLToPath(new URL("./verify_op_runner.py", import.meta.url));

const ROUND: Record<FloatDType, (v: number) => number> = { f32: Math.fround, f16: roundToF16, bf16: roundToBf16 };
const DTYPE_ORDER: readonly FloatDType[] = ["f32", "f16", "bf16"];

export interface ComputedCase {
  readonly id: string;
  readonly dtype: FloatDType;
  readonly attrs: Record<string, unknown>;
  readonly inputs: RTensor[];
  readonly outputs: RTensor[];
}

function fail(op: CustomOp, msg: string): never {
  throw new OpDeclError(`custom op '${op.name}': ${msg}`);
}

const spec = (op: CustomOp) => op.decl.verify ?? fail(op, "declares no verify cases (verify: { cases: [...] }), so there is nothing to check");

/** Every case x dtype with the reference outputs; throws if the reference and the shape rule disagree on one. */
export function computeCases(op: CustomOp): ComputedCase[] {
  const v = spec(op);
  const dtypes = DTYPE_ORDER.filter((d) => (v.dtypes ?? DTYPE_ORDER).includes(d));
  return v.cases.flatMap((c: VerifyCase<any>, i) =>
    dtypes.map((dtype, j) => {
      const inputs = caseInputs(c, 1000 * (i + 1) + j, dtype, ROUND[dtype]);
      const outputs = op.decl.reference(inputs, c.attrs);
      const why = referenceMismatch(op.decl, inputs, outputs, c.attrs);
      if (why) fail(op, `verify.cases[${i}] (${dtype}): ${why}`);
      return { id: `c${i}-${dtype}`, dtype, attrs: c.attrs as Record<string, unknown>, inputs, outputs };
    }),
  );
}

const outputTypes = (op: CustomOp, c: VerifyCase<any>, dtype: FloatDType) =>
  op.decl
    .infer(
      c.shapes.map((shape) => ({ dtype, shape })),
      c.attrs,
    )
    .map((t, k) => ({ name: op.decl.outputs[k]!, shape: t.shape, dtype: t.dtype }));

export interface VerifyFolder {
  readonly dir: string;
  readonly cases: number;
  readonly bench: number;
  /** The command that checks the folder, run from anywhere. */
  readonly command: string;
}

/** Writes the folder for `op` into `dir`, replacing it only by the rules of src/io/output-guard.ts. */
export async function writeVerifyFolder(op: CustomOp, dir: string, o: { force?: boolean; inputs?: readonly string[] } = {}): Promise<VerifyFolder> {
  const v = spec(op);
  const l = op.decl.lowering;
  if (l?.kind !== "python_plugin") fail(op, "verify-op checks a Triton kernel, and this op's lowering is not a python_plugin");
  const plugin = l as PythonPluginLowering;
  const cases = computeCases(op);
  const dtypes = DTYPE_ORDER.filter((d) => (v.dtypes ?? DTYPE_ORDER).includes(d));
  const out = checkOutputDir(dir, { flag: "--out", inputs: [op.kernelPath, ...(o.inputs ?? [])], ...(o.force && { force: true }) });
  return writeOutputDir(out, "verify-op", async (tmp) => writeFolderContents(op, out, tmp, cases, dtypes, v, plugin));
}

async function writeFolderContents(
  op: CustomOp,
  finalDir: string,
  dir: string,
  cases: ReturnType<typeof computeCases>,
  dtypes: readonly FloatDType[],
  v: ReturnType<typeof spec>,
  plugin: PythonPluginLowering,
): Promise<VerifyFolder> {
  const kernel = basename(op.kernelPath!);
  copyFileSync(op.kernelPath!, join(dir, kernel));
  copyFileSync(RUNNER, join(dir, "verify_op_runner.py"));
  const tensors = cases.flatMap((c) => [
    ...c.inputs.map((t, k) => ({ name: `${c.id}.in${k}`, t })),
    ...c.outputs.map((t, k) => ({ name: `${c.id}.out${k}`, t })),
  ]);
  await writeSafetensors(
    join(dir, "cases.safetensors"),
    tensors.map(({ name, t }) => ({ name, dtype: t.data instanceof Int32Array ? "I32" : "F32", shape: [...t.shape], data: t.data })),
    { producer: "kiln verify-op", op: op.name },
  );
  const manifest = {
    format: "kiln.verify-op/1",
    op: op.name,
    doc: op.decl.doc,
    inputs: op.decl.inputs,
    outputs: op.decl.outputs,
    kernel,
    launch: plugin.launch ?? "launch",
    torch_reference: plugin.torchReference ?? null,
    tolerance: Object.fromEntries(dtypes.map((d) => [d, v.tolerance?.[d] ?? DEFAULT_TOLERANCE[d]])),
    cases: cases.map((c) => ({
      id: c.id,
      dtype: c.dtype,
      attrs: c.attrs,
      inputs: c.inputs.map((t, k) => ({ name: op.decl.inputs[k]!.replace(/\?$/, ""), tensor: `${c.id}.in${k}`, shape: t.shape })),
      outputs: c.outputs.map((t, k) => ({ name: op.decl.outputs[k]!, tensor: `${c.id}.out${k}`, shape: t.shape, dtype: t.dtype })),
    })),
    bench: (v.bench ?? []).flatMap((b, i) =>
      dtypes.map((dtype) => ({ id: `b${i}-${dtype}`, dtype, attrs: b.attrs, input_shapes: b.shapes, outputs: outputTypes(op, b, dtype) })),
    ),
  };
  writeFileSync(join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 1)}\n`);
  return { dir: finalDir, cases: cases.length, bench: manifest.bench.length, command: shellCommand(["python3", join(finalDir, "verify_op_runner.py")]) };
}
