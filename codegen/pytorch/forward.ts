// forward() bodies for the PyTorch-based targets, on the shared emitter skeleton (codegen/common/emit-nodes.ts).
// Module leaves of the class tree are called through a target-specific hook (the Hugging Face and TensorRT-LLM
// attention modules take different arguments); every other node goes through the core-op glue table.

import type { DType } from "../../src/ir/dtype.ts";
import type { Node } from "../../src/ir/graph.ts";
import { isPlainAttribute, Namespace, pyString } from "../python/identifiers.ts";
import type { PyWriter } from "../python/writer.ts";
import type { CustomOp } from "../../src/custom-ops/custom-op.ts";
import { torchCustomOpGlue } from "./custom-ops.ts";
import { argReader, emitNodeStatements, type StatementBody, type Val } from "../common/emit-nodes.ts";
import { type ClassTree, fail } from "../common/model-py-plan.ts";
import { type TorchArg, torchGlueRuleFor, type TorchHelper } from "./glue-ops.ts";
import type { TorchPlan } from "./plan.ts";

export type { Val };

export interface Body extends StatementBody {
  readonly plan: TorchPlan;
  readonly tree: ClassTree;
  /** Attribute path -> Python attribute path (a target may rename modules; identity by default). */
  readonly attrPath: (path: readonly string[]) => readonly string[];
  /** Python expression of a per-layer config field for this layer. */
  readonly layerField: (field: string) => string;
  readonly helper: (h: TorchHelper) => string;
  readonly modelDtype: string;
  /** Emits the call of a module leaf; `out` is the variable to bind. */
  readonly moduleCall: (b: Body, n: Node, mod: string, args: readonly Val[], out: string) => void;
  /** The target's name, for messages. */
  readonly target: string;
  /** Records a custom op whose PyTorch implementation the modeling file imports. */
  readonly useCustomOp: (op: CustomOp) => void;
}

/** Attribute access along a path; segments that are not plain identifiers go through getattr with a str literal. */
export function attrChain(base: string, path: readonly string[]): string {
  return path.reduce((acc, seg) => (isPlainAttribute(seg) ? `${acc}.${seg}` : `getattr(${acc}, ${pyString(seg)})`), base);
}

/** `self.<path> = value`, through setattr when the last segment is not a plain identifier. */
export function assignAttr(w: PyWriter, path: readonly string[], callee: string, args: readonly string[]): void {
  const parent = attrChain("self", path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (isPlainAttribute(last)) w.call(`${parent}.${last} = ${callee}`, args);
  else w.call(`setattr(${parent}, ${pyString(last)}, ${callee}`, args, ")");
}

export function emitNodes(b: Body, nodes: readonly Node[]): void {
  const g = b.plan.g;
  const paramDtype = g.values.get(g.params[0]!.value)!.dtype as DType;
  const argOf = argReader(b, { g, tree: b.tree, slotUse: b.plan.slotUse, layerField: b.layerField, paramExpr: (path) => attrChain("self", b.attrPath(path)) });
  emitNodeStatements(b, nodes, {
    live: b.plan.live,
    args: (n) => n.inputs.map((v, k) => argOf(v, n, k)),
    modulePath: (n) => {
      const path = b.tree.moduleOf.get(n);
      return path && b.attrPath(path);
    },
    moduleCall: (n, path, args, out) => b.moduleCall(b, n, attrChain("self", path), args, out),
    glue: (n, args, loc) => {
      const rule =
        torchGlueRuleFor(n.op) ??
        torchCustomOpGlue(n.op, b.target, b.useCustomOp) ??
        fail(`${n.op} at ${loc ?? n.scope}: no PyTorch translation for this op (custom ops need one)`);
      const use = b.plan.slotUse.get(n)?.get(-1);
      return rule({
        node: n,
        args: n.inputs.map((v, k) => ({ ...args[k]!, shape: g.values.get(v)!.shape, dtype: g.values.get(v)!.dtype }) satisfies TorchArg),
        helper: b.helper,
        ...(use?.field && { slot: b.layerField(use.field) }),
        modelDtype: b.modelDtype,
        paramDtype,
      });
    },
  });
}

/** A fresh body whose local names avoid `reserved` (parameters, the file's names, helpers). */
export function newBody(fields: Omit<Body, "vars" | "env" | "bindAs">, reserved: Iterable<string>): Body {
  return { ...fields, vars: new Namespace(reserved), env: new Map(), bindAs: new Map() };
}
