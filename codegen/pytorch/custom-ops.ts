// Custom ops in the PyTorch-based targets (trtllm-torch, hf): a node of a custom op calls the function its
// declaration names under `pytorch` (src/custom-ops/custom-op.ts), from a copy of that module written next to the
// generated modeling file. Ops declared without one are refused with a one-line error naming the op and the field.
// Invariants: the module file and the alias the modeling file binds derive from the op name alone (sanitized), so
// two ops never share either; the call passes the inputs as a list and the attributes as keywords, in declaration
// order, and takes element 0 for a single-output op.

import { readFileSync } from "node:fs";
import { type CustomOp, customOp } from "../../src/custom-ops/custom-op.ts";
import { fail } from "../common/model-py-plan.ts";
import { type PyJson, pyLiteral, sanitizeIdentifier } from "../python/identifiers.ts";
import type { AnyTorchGlueCtx } from "./glue-ops.ts";

/** The module file (without .py) and the modeling file's alias for one custom op's PyTorch implementation. */
export function torchCustomOpNames(op: CustomOp): { readonly module: string; readonly alias: string } {
  const base = sanitizeIdentifier(op.name.replace(/\./g, "_"));
  return { module: `kiln_op_${base}`, alias: `_kiln_op_${base}` };
}

/** The glue rule of a custom op's node, or undefined when `opName` is not a custom op. `use` records the op. */
export function torchCustomOpGlue(opName: string, target: string, use: (op: CustomOp) => void): ((c: AnyTorchGlueCtx) => string) | undefined {
  const op = customOp(opName);
  if (!op) return undefined;
  if (!op.pytorchPath)
    fail(
      `custom op '${op.name}' has no PyTorch implementation, which the ${target} target needs: add pytorch: { module, function } to its declaration (only the trtllm-engine target uses its \`lowering\`)`,
    );
  return (c) => {
    use(op);
    const attrs = Object.keys(op.decl.attrs).map((a) => `${a}=${pyLiteral(c.node.attrs[a] as PyJson)}`);
    const call = `${torchCustomOpNames(op).alias}([${c.args.map((a) => a.expr).join(", ")}]${attrs.map((a) => `, ${a}`).join("")})`;
    return op.decl.outputs.length === 1 ? `${call}[0]` : call;
  };
}

/** The import lines binding each used op's function to its alias (relative to the modeling file's package). */
export function torchCustomOpImports(used: Iterable<CustomOp>): string[] {
  return [...used]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((op) => {
      const { module, alias } = torchCustomOpNames(op);
      return `from .${module} import ${op.decl.pytorch!.function ?? "torch_reference"} as ${alias}`;
    });
}

/** The module files to write next to the modeling file: name.py -> source. */
export function torchCustomOpFiles(used: Iterable<CustomOp>): Record<string, string> {
  return Object.fromEntries([...used].map((op) => [`${torchCustomOpNames(op).module}.py`, readFileSync(op.pytorchPath!, "utf8")]));
}
