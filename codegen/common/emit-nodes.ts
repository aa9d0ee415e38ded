// The one emitter skeleton for Python forward() bodies: a list of lowered-graph nodes becomes one statement each, in
// graph order, with a `# file:line` comment whenever the model source line changes. A node is either a call of a
// module leaf of the generated class tree or a glue expression; how each is written is the target's business (its
// hooks). Local names read like hand-written models: `<module>_output`, `hidden_states` for the residual stream,
// else the op's name.
// Invariants: only live nodes are emitted; each output is bound once, to a name from the body's Namespace (unique,
// legal, never shadowing the function's parameters or the file's own names) unless `bindAs` names it.

import { type DType, isFloat } from "../../src/ir/dtype.ts";
import type { Graph, Node, ValueId } from "../../src/ir/graph.ts";
import { type Namespace, pyFloat, pyInt } from "../python/identifiers.ts";
import type { PyWriter } from "../python/writer.ts";
import { type ClassTree, fail, locText, type SlotUse } from "./model-py-plan.ts";

/** A Python expression for a graph value; `literal` when it is an inlined number rather than a tensor. */
export interface Val {
  readonly expr: string;
  readonly literal: boolean;
}

/** The statement list being written, and what it has bound so far. */
export interface StatementBody {
  readonly w: PyWriter;
  readonly vars: Namespace;
  readonly env: Map<ValueId, Val>;
  /** Values to bind to a given name (the hidden state handed to the layers). */
  readonly bindAs: Map<ValueId, string>;
  lastLoc?: string;
}

/** What a target decides for each node. */
export interface NodeHooks {
  readonly live: ReadonlySet<Node>;
  /** The node's arguments, one per input. */
  args(n: Node): Val[];
  /** The Python attribute path of the module leaf the node calls, or undefined for glue. */
  modulePath(n: Node): readonly string[] | undefined;
  /** Writes the module call binding `out`. */
  moduleCall(n: Node, path: readonly string[], args: readonly Val[], out: string): void;
  /** The right-hand side of a glue node's assignment (a tuple expression for several outputs). */
  glue(n: Node, args: readonly Val[], loc: string | undefined): string;
  /** Called after a node's outputs are bound. */
  bound?(n: Node, outs: readonly string[]): void;
}

/** A Python literal for a scalar constant of the given dtype. */
export function constantLiteral(value: number, dtype: DType): string {
  if (dtype === "bool") return value ? "True" : "False";
  return isFloat(dtype) ? pyFloat(value) : pyInt(value);
}

/** Where a target's arguments come from when they are not bound yet: per-layer constants and parameter attributes. */
export interface ArgSources {
  readonly g: Graph;
  readonly tree: ClassTree;
  readonly slotUse: ReadonlyMap<Node, ReadonlyMap<number, SlotUse>>;
  /** The expression of a per-layer config field for the current layer. */
  layerField(field: string): string;
  /** The expression of a parameter, from its attribute path in the class tree. */
  paramExpr(path: readonly string[]): string;
}

/**
 * The argument reader of a body: a bound value, else a constant (inlined, or the per-layer config field that holds
 * it), else a parameter attribute; a value used before it is computed is an emitter bug, reported with its id.
 */
export function argReader(b: StatementBody, s: ArgSources): (v: ValueId, consumer: Node, k: number) => Val {
  const paramName = new Map(s.g.params.map((p) => [p.value, p.name]));
  const constant = new Map(s.g.nodes.filter((n) => n.op === "constant").map((n) => [n.outputs[0]!, n]));
  return (v, consumer, k) => {
    const known = b.env.get(v);
    if (known) return known;
    const c = constant.get(v);
    if (c) {
      const use = s.slotUse.get(consumer)?.get(k);
      return { expr: use?.field ? s.layerField(use.field) : constantLiteral(use?.uniform ?? (c.attrs.value as number), c.attrs.dtype as DType), literal: true };
    }
    const name = paramName.get(v);
    if (name === undefined) fail(`value %${v} is used before it is computed`);
    const path = s.tree.paramPath.get(name!) ?? fail(`parameter '${name}' has no attribute in the generated class`);
    return { expr: s.paramExpr(path), literal: false };
  };
}

export function emitNodeStatements(b: StatementBody, nodes: readonly Node[], hooks: NodeHooks): void {
  for (const n of nodes) {
    if (!hooks.live.has(n)) continue;
    const loc = locText(n.loc);
    if (loc && loc !== b.lastLoc) {
      b.w.comment(loc);
      b.lastLoc = loc;
    }
    const args = hooks.args(n);
    const path = hooks.modulePath(n);
    const base = path ? `${path[path.length - 1]}_output` : n.op === "add" ? "hidden_states" : n.op;
    const outs = n.outputs.map((o, k) => b.bindAs.get(o) ?? b.vars.create(n.outputs.length > 1 ? `${base}_${k}` : base));
    if (path) hooks.moduleCall(n, path, args, outs[0]!);
    else b.w.assign(outs.join(", "), hooks.glue(n, args, loc));
    n.outputs.forEach((o, k) => b.env.set(o, { expr: outs[k]!, literal: false }));
    hooks.bound?.(n, outs);
  }
}
