// The IR verifier: run after tracing and after every pass. It re-derives every node's output types from the op
// table and checks SSA form (each value defined once, before use), op existence, arity and attribute schemas, and
// that graph outputs exist. All problems are collected; the error lists each with the node and its source line.

import { checkAttrs } from "./attrs.ts";
import { describeNode, type Graph, type ValueId } from "./graph.ts";
import { opDef, ShapeError, type ValueType } from "./ops.ts";
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

export function verifyProblems(g: Graph): string[] {
  const problems: string[] = [];
  const defined = new Set<ValueId>();
  const define = (v: ValueId, what: string) => {
    if (defined.has(v)) problems.push(`%${v} is defined twice (${what})`);
    if (!g.values.has(v)) problems.push(`%${v} has no type (${what})`);
    defined.add(v);
  };
  const names = new Set<string>();
  for (const x of [...g.inputs, ...g.params]) {
    if (names.has(x.name)) problems.push(`name '${x.name}' is used by two graph inputs/params`);
    names.add(x.name);
    define(x.value, `input/param '${x.name}'`);
  }
  g.nodes.forEach((n, idx) => {
    const where = `node #${idx} ${describeNode(n)}`;
    const def = opDef(n.op);
    if (!def) return void problems.push(`${where}: unknown op '${n.op}'`);
    const [lo, hi] = def.arity;
    if (n.inputs.length < lo || n.inputs.length > hi) problems.push(`${where}: ${n.inputs.length} inputs, op takes ${lo}..${hi}`);
    const dangling = n.inputs.filter((i) => !defined.has(i));
    if (dangling.length) problems.push(`${where}: uses ${dangling.map((d) => `%${d}`).join(", ")} before definition (dangling value)`);
    const attrProblem = checkAttrs(def.attrs, n.attrs as Record<string, unknown>);
    if (attrProblem) problems.push(`${where}: ${attrProblem}`);
    if (!dangling.length && !attrProblem) {
      try {
        const expect = def.infer(n.inputs.map((i) => g.values.get(i)!), n.attrs as never);
        if (expect.length !== n.outputs.length) problems.push(`${where}: ${n.outputs.length} outputs, op produces ${expect.length}`);
        expect.forEach((t, k) => {
          const got = g.values.get(n.outputs[k]!);
          if (got && (got.dtype !== t.dtype || !shapeEq(got.shape, t.shape))) problems.push(`${where}: output %${n.outputs[k]} is ${fmt(got)} but the op gives ${fmt(t)}`);
        });
      } catch (e) {
        if (!(e instanceof ShapeError)) throw e;
        problems.push(`${where}: ${e.message}`);
      }
    }
    n.outputs.forEach((o) => define(o, where));
  });
  for (const o of g.outputs) if (!defined.has(o.value)) problems.push(`output '${o.name}' refers to undefined %${o.value}`);
  return problems;
}

export function verify(g: Graph): Graph {
  const problems = verifyProblems(g);
  if (problems.length) throw new VerifyError(g.name, problems);
  return g;
}
