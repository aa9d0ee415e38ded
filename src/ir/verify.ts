// The IR verifier: run after tracing and after every pass. It re-derives every node's output types from the op
// table and checks SSA form (each value defined once, before use), op existence, arity and attribute schemas, and
// that graph outputs exist. All problems are collected; the error lists each with the node and its source line.
// It runs after every pass over the whole graph, so the per-node path allocates little and builds a node's
// description only when the node has a problem to report.

import { checkAttrs } from "./attrs.ts";
import { describeNode, type Graph, type Node, type ValueId } from "./graph.ts";
import { type OpDef, opDef, ShapeError, type ValueType } from "./ops.ts";
import { formatShape, shapeEq } from "./shape.ts";

export class VerifyError extends Error {
  constructor(
    readonly graph: string,
    readonly problems: string[],
  ) {
    super(`IR verification failed for graph '${graph}' (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n  ${problems.join("\n  ")}`);
  }
}

const fmt = (t: ValueType) => `${t.dtype}${formatShape(t.shape)}`;

/** The prefix of every problem of a node; built only when there is a problem to report. */
const nodeWhere = (idx: number, n: Node) => `node #${idx} ${describeNode(n)}`;

/** Records a definition of `v`, with the problems it raises (second definition, no type). */
function define(g: Graph, defined: Set<ValueId>, problems: string[], v: ValueId, what: () => string): void {
  if (defined.has(v)) problems.push(`%${v} is defined twice (${what()})`);
  if (!g.values.has(v)) problems.push(`%${v} has no type (${what()})`);
  defined.add(v);
}

/** The inputs of a node that are not defined yet, as "%a, %b" ("" when all are). */
function danglingInputs(n: Node, defined: ReadonlySet<ValueId>): string {
  let text = "";
  for (const i of n.inputs) if (!defined.has(i)) text += `${text ? ", " : ""}%${i}`;
  return text;
}

/** The problems with one node's types: re-inferred outputs against the graph's, or the op's shape error. */
function typeProblems(g: Graph, idx: number, n: Node, def: OpDef, problems: string[]): void {
  const ins: ValueType[] = [];
  for (const i of n.inputs) ins.push(g.values.get(i)!);
  try {
    const expect = def.infer(ins, n.attrs as never);
    if (expect.length !== n.outputs.length) problems.push(`${nodeWhere(idx, n)}: ${n.outputs.length} outputs, op produces ${expect.length}`);
    for (let k = 0; k < expect.length; k++) {
      const t = expect[k]!;
      const got = g.values.get(n.outputs[k]!);
      if (got && (got.dtype !== t.dtype || !shapeEq(got.shape, t.shape)))
        problems.push(`${nodeWhere(idx, n)}: output %${n.outputs[k]} is ${fmt(got)} but the op gives ${fmt(t)}`);
    }
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    problems.push(`${nodeWhere(idx, n)}: ${e.message}`);
  }
}

export function verifyProblems(g: Graph): string[] {
  const problems: string[] = [];
  const defined = new Set<ValueId>();
  const names = new Set<string>();
  for (const list of [g.inputs, g.params])
    for (const x of list) {
      if (names.has(x.name)) problems.push(`name '${x.name}' is used by two graph inputs/params`);
      names.add(x.name);
      define(g, defined, problems, x.value, () => `input/param '${x.name}'`);
    }
  for (let idx = 0; idx < g.nodes.length; idx++) {
    const n = g.nodes[idx]!;
    const def = opDef(n.op);
    if (!def) {
      problems.push(`${nodeWhere(idx, n)}: unknown op '${n.op}'`);
      continue;
    }
    const [lo, hi] = def.arity;
    if (n.inputs.length < lo || n.inputs.length > hi) problems.push(`${nodeWhere(idx, n)}: ${n.inputs.length} inputs, op takes ${lo}..${hi}`);
    const dangling = danglingInputs(n, defined);
    if (dangling) problems.push(`${nodeWhere(idx, n)}: uses ${dangling} before definition (dangling value)`);
    const attrProblem = checkAttrs(def.attrs, n.attrs as Record<string, unknown>);
    if (attrProblem) problems.push(`${nodeWhere(idx, n)}: ${attrProblem}`);
    if (!dangling && !attrProblem) typeProblems(g, idx, n, def, problems);
    for (const o of n.outputs) define(g, defined, problems, o, () => nodeWhere(idx, n));
  }
  for (const o of g.outputs) if (!defined.has(o.value)) problems.push(`output '${o.name}' refers to undefined %${o.value}`);
  return problems;
}

export function verify(g: Graph): Graph {
  const problems = verifyProblems(g);
  if (problems.length) throw new VerifyError(g.name, problems);
  return g;
}
