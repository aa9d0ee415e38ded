// Patterns written in the model's own vocabulary. A pattern is a function over DSL tensors, traced once into a
// small graph of pattern nodes whose leaves are declared variables: `value` (any value), `constant` (any scalar
// constant, its number bound), `param` (a graph parameter). Pattern constants match equal constants; attributes
// match exactly, `ANY` matches anything, and axis attributes are compared after normalizing negative axes.
// Commutative ops match in either operand order. A failed match reports how far it got and why, which is what
// `kiln passes --explain` prints for near misses.

import { GraphBuilder, type Graph, type Node, type ValueId } from "../ir/graph.ts";
import { opDef, type ValueType } from "../ir/ops.ts";
import { normAxis } from "../ir/shape.ts";
import { Tensor } from "../dsl/tensor.ts";
import { Tracer, withTracer } from "../dsl/tracer.ts";

/** Attribute wildcard for patterns (e.g. `x.reshape(ANY)`). */
export const ANY = Object.freeze({ kiln: "any-attribute" }) as never;
const isAny = (v: unknown) => v === ANY;

export type VarKind = "value" | "constant" | "param";

type NodeRef = { readonly node: number; readonly output: number };
type PRef = { readonly var: string } | NodeRef;

interface PNode {
  readonly op: string;
  readonly inputs: readonly PRef[];
  readonly attrs: Readonly<Record<string, unknown>>;
}

export interface Pattern<V extends string = string> {
  readonly name: string;
  readonly vars: Readonly<Record<V, VarKind>>;
  readonly nodes: readonly PNode[];
  readonly root: NodeRef;
}

/** Records pattern nodes instead of building a typed graph; shapes are not available inside patterns. */
class PatternTracer extends Tracer {
  readonly refs: PRef[] = [];
  readonly nodes: PNode[] = [];

  constructor() {
    super(new GraphBuilder("pattern"));
  }

  ref(r: PRef): ValueId {
    this.refs.push(r);
    return this.refs.length - 1;
  }

  override emit(op: string, inputs: readonly ValueId[], attrs: Record<string, unknown> = {}): ValueId[] {
    if (!opDef(op)) throw new Error(`pattern uses unknown op '${op}'`);
    this.nodes.push({ op, inputs: inputs.map((i) => this.refs[i]!), attrs });
    const index = this.nodes.length - 1;
    const outputs = op === "split" ? (attrs.sizes as unknown[]).length : op === "topk" ? 2 : 1;
    return Array.from({ length: outputs }, (_, output) => this.ref({ node: index, output }));
  }

  override type(): ValueType {
    return {
      dtype: "f32",
      get shape(): never {
        throw new Error("patterns cannot inspect shapes (write transpose([...]) rather than swap, and give attributes explicitly or ANY)");
      },
    };
  }
}

export function pattern<V extends string>(name: string, vars: Record<V, VarKind>, body: (t: Record<V, Tensor>) => Tensor): Pattern<V> {
  const tracer = new PatternTracer();
  const root = withTracer(tracer, () => {
    const args = Object.fromEntries(Object.keys(vars).map((v) => [v, new Tensor(tracer.ref({ var: v }))])) as Record<V, Tensor>;
    return tracer.refs[body(args).id]!;
  });
  if (!("node" in root)) throw new Error(`pattern '${name}' returns a variable; it must end in an op`);
  return { name, vars, nodes: tracer.nodes, root: root as NodeRef };
}

export interface Match<V extends string = string> {
  readonly root: Node;
  /** Variables bound to graph values (`value` and `param` vars; `constant` vars bind their constant's value id). */
  readonly values: Readonly<Record<V, ValueId>>;
  /** Numbers bound by `constant` variables. */
  readonly constants: Readonly<Partial<Record<V, number>>>;
  /** Graph nodes covered by the pattern. */
  readonly nodes: readonly Node[];
}

export interface MatchFailure {
  readonly matched: number;
  readonly reason: string;
}

interface State {
  values: Map<string, ValueId>;
  constants: Map<string, number>;
  nodes: Node[];
}

const clone = (s: State): State => ({ values: new Map(s.values), constants: new Map(s.constants), nodes: [...s.nodes] });

export interface GraphIndex {
  readonly graph: Graph;
  readonly def: ReadonlyMap<ValueId, Node>;
  readonly params: ReadonlySet<ValueId>;
}

export function indexGraph(graph: Graph): GraphIndex {
  const def = new Map<ValueId, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) def.set(o, n);
  return { graph, def, params: new Set(graph.params.map((p) => p.value)) };
}

const AXIS_ATTRS = new Set(["axis", "axes"]);

function attrsMatch(p: PNode, n: Node, rank: number): string | undefined {
  for (const [k, pv] of Object.entries(p.attrs)) {
    if (isAny(pv)) continue;
    const gv = n.attrs[k];
    const norm = (v: unknown) => (AXIS_ATTRS.has(k) ? (Array.isArray(v) ? v.map((a) => normAxis(a, rank)) : normAxis(v as number, rank)) : v);
    if (JSON.stringify(norm(pv)) !== JSON.stringify(norm(gv))) return `${n.op} attribute ${k}=${JSON.stringify(gv)}, pattern wants ${JSON.stringify(pv)}`;
  }
  return undefined;
}

/** Tries to match `pat` with its root at `root`. Returns the match, or how far it got and why it failed. */
export function matchAt<V extends string>(pat: Pattern<V>, ix: GraphIndex, root: Node): Match<V> | MatchFailure {
  let best: MatchFailure = { matched: 0, reason: `root is ${root.op}, pattern root is ${pat.nodes[pat.root.node]!.op}` };
  const fail = (st: State, reason: string) => {
    if (st.nodes.length >= best.matched) best = { matched: st.nodes.length, reason };
    return undefined;
  };

  const matchRef = (r: PRef, v: ValueId, st: State): State | undefined => {
    if ("var" in r) {
      const kind = pat.vars[r.var as V];
      const bound = st.values.get(r.var);
      if (bound !== undefined) return bound === v ? st : fail(st, `variable '${r.var}' would bind two different values`);
      if (kind === "param" && !ix.params.has(v)) return fail(st, `'${r.var}' must be a parameter`);
      const next = clone(st);
      if (kind === "constant") {
        const n = ix.def.get(v);
        if (n?.op !== "constant") return fail(st, `'${r.var}' must be a constant, got ${n ? n.op : "an input"}`);
        next.constants.set(r.var, n.attrs.value as number);
      }
      next.values.set(r.var, v);
      return next;
    }
    const p = pat.nodes[r.node]!;
    const n = ix.def.get(v);
    if (!n) return fail(st, `expected ${p.op}, found a graph ${ix.params.has(v) ? "parameter" : "input"}`);
    if (n.op !== p.op) return fail(st, `expected ${p.op}, found ${n.op}`);
    if (n.outputs.indexOf(v) !== r.output) return fail(st, `expected output ${r.output} of ${n.op}`);
    if (p.op === "constant") {
      if (n.attrs.value !== p.attrs.value) return fail(st, `constant is ${n.attrs.value}, pattern wants ${p.attrs.value}`);
      return { ...clone(st), nodes: [...st.nodes, n] };
    }
    const already = st.nodes.includes(n);
    const rank = n.inputs.length ? (ix.graph.values.get(n.inputs[0]!)?.shape.length ?? 0) : 0;
    const attrProblem = attrsMatch(p, n, rank);
    if (attrProblem) return fail(st, attrProblem);
    if (p.inputs.length !== n.inputs.length) return fail(st, `${n.op} has ${n.inputs.length} inputs, pattern wants ${p.inputs.length}`);
    const base = already ? st : { ...clone(st), nodes: [...st.nodes, n] };
    const orders =
      opDef(n.op)?.commutative && p.inputs.length === 2
        ? [
            [0, 1],
            [1, 0],
          ]
        : [p.inputs.map((_, i) => i)];
    for (const order of orders) {
      let cur: State | undefined = base;
      for (let i = 0; i < order.length && cur; i++) cur = matchRef(p.inputs[order[i]!]!, n.inputs[i]!, cur);
      if (cur) return cur;
    }
    return undefined;
  };

  const rootOut = root.outputs[pat.root.output];
  if (rootOut === undefined) return best;
  const st = matchRef(pat.root, rootOut, { values: new Map(), constants: new Map(), nodes: [] });
  if (!st) return best;
  return {
    root,
    values: Object.fromEntries(st.values) as Record<V, ValueId>,
    constants: Object.fromEntries(st.constants) as Partial<Record<V, number>>,
    nodes: st.nodes,
  };
}

export const isMatch = <V extends string>(m: Match<V> | MatchFailure): m is Match<V> => "root" in m;

export const patternRootOp = (p: Pattern): string => p.nodes[p.root.node]!.op;
export const patternSize = (p: Pattern): number => p.nodes.length;
