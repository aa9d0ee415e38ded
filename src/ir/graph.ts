// The IR graph: SSA values with dtype and shape, nodes in topological order that reference ops from the op table,
// named graph inputs, parameters (weights, named by their DSL attribute path) and outputs. Graphs are treated as
// immutable once built; passes build new graphs with GraphBuilder. Every node carries the module scope and the user
// source line that created it, so errors and printed IR point back at the model file.

import type { JsonValue } from "./attrs.ts";
import { type CoreAttrs, type CoreOp, opDef, ShapeError, type ValueType } from "./ops.ts";
import { formatShape } from "./shape.ts";

export type ValueId = number;

export interface SourceLoc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export interface Node {
  readonly op: string;
  readonly inputs: readonly ValueId[];
  readonly outputs: readonly ValueId[];
  readonly attrs: Readonly<Record<string, unknown>>;
  /** Module path that emitted the node ("layers.0.attn"); "" at the top level. */
  readonly scope: string;
  readonly loc?: SourceLoc;
  /** Notes written by passes (e.g. which TensorRT-LLM layer a fusion enables). String to string only. */
  readonly meta?: Readonly<Record<string, string>>;
}

export type NodeOf<K extends CoreOp> = Node & { readonly op: K; readonly attrs: CoreAttrs<K> };

export function isOp<K extends CoreOp>(n: Node, op: K): n is NodeOf<K> {
  return n.op === op;
}

export interface NamedValue {
  readonly name: string;
  readonly value: ValueId;
}

export interface Graph {
  readonly name: string;
  readonly values: ReadonlyMap<ValueId, ValueType>;
  readonly inputs: readonly NamedValue[];
  readonly params: readonly NamedValue[];
  readonly nodes: readonly Node[];
  readonly outputs: readonly NamedValue[];
  /** Hints in effect per module scope ("" = whole model), as plain JSON data. */
  readonly hints: Readonly<Record<string, JsonValue>>;
}

export const formatLoc = (loc: SourceLoc | undefined): string => (loc ? `${loc.file}:${loc.line}:${loc.col}` : "<unknown>");

export function describeNode(n: Node): string {
  return `${n.op}${n.scope ? ` in ${n.scope}` : ""} at ${formatLoc(n.loc)}`;
}

/** Raised when an op is applied to operands it does not accept; names the op, the operands and the source line. */
export class OpTypeError extends Error {
  constructor(
    readonly op: string,
    readonly detail: string,
    readonly loc: SourceLoc | undefined,
    readonly scope: string,
  ) {
    super(`${op}: ${detail} (${formatLoc(loc)}${scope ? `, module ${scope}` : ""})`);
  }
}

export interface NodeOptions {
  readonly scope?: string;
  readonly loc?: SourceLoc;
  readonly meta?: Readonly<Record<string, string>>;
}

/** Builds a graph node by node, inferring every output type from the op table. */
export class GraphBuilder {
  private readonly values = new Map<ValueId, ValueType>();
  private readonly inputs: NamedValue[] = [];
  private readonly params: NamedValue[] = [];
  private readonly nodes: Node[] = [];
  private readonly outputs: NamedValue[] = [];
  private hints: Record<string, JsonValue> = {};
  private nextId = 0;

  constructor(readonly name: string) {}

  /** Starts from an existing graph's inputs, params and hints (same value ids), without its nodes or outputs. */
  static from(g: Graph, opts: { keepNodes?: boolean; keepParams?: boolean } = {}): GraphBuilder {
    const b = new GraphBuilder(g.name);
    const keepParams = opts.keepParams ?? true;
    for (const i of g.inputs) b.adopt(i.value, g.values.get(i.value)!, b.inputs, i.name);
    if (keepParams) for (const p of g.params) b.adopt(p.value, g.values.get(p.value)!, b.params, p.name);
    if (opts.keepNodes) for (const n of g.nodes) b.adoptNode(n, g);
    b.hints = { ...g.hints };
    b.nextId = Math.max(b.nextId, ...g.values.keys(), -1) + 1;
    return b;
  }

  private adopt(id: ValueId, type: ValueType, list: NamedValue[], name: string) {
    this.values.set(id, type);
    list.push({ name, value: id });
    this.nextId = Math.max(this.nextId, id + 1);
  }

  /** Copies a node and its output types verbatim (ids kept); used by passes that keep most of a graph. */
  adoptNode(n: Node, from: Graph): void {
    for (const o of n.outputs) {
      this.values.set(o, from.values.get(o)!);
      if (o >= this.nextId) this.nextId = o + 1;
    }
    this.nodes.push(n);
  }

  private fresh(type: ValueType): ValueId {
    const id = this.nextId++;
    this.values.set(id, type);
    return id;
  }

  type(v: ValueId): ValueType {
    const t = this.values.get(v);
    if (!t) throw new Error(`value %${v} is not defined in graph '${this.name}'`);
    return t;
  }

  has(v: ValueId): boolean {
    return this.values.has(v);
  }

  input(name: string, type: ValueType): ValueId {
    if (this.inputs.some((i) => i.name === name)) throw new Error(`graph input '${name}' declared twice`);
    const v = this.fresh(type);
    this.inputs.push({ name, value: v });
    return v;
  }

  param(name: string, type: ValueType): ValueId {
    if (this.params.some((p) => p.name === name)) throw new Error(`parameter '${name}' declared twice`);
    const v = this.fresh(type);
    this.params.push({ name, value: v });
    return v;
  }

  paramNamed(name: string): ValueId | undefined {
    return this.params.find((p) => p.name === name)?.value;
  }

  /** Appends a node; returns its output ids. Throws OpTypeError when the op rejects its operands. */
  node(op: string, inputs: readonly ValueId[], attrs: Record<string, unknown> = {}, opts: NodeOptions = {}): ValueId[] {
    const def = opDef(op);
    const scope = opts.scope ?? "";
    if (!def) throw new OpTypeError(op, "unknown op", opts.loc, scope);
    const [lo, hi] = def.arity;
    if (inputs.length < lo || inputs.length > hi)
      throw new OpTypeError(op, `takes ${lo === hi ? lo : `${lo}..${hi}`} inputs, got ${inputs.length}`, opts.loc, scope);
    const ins = inputs.map((v) => this.type(v));
    let outs: ValueType[];
    try {
      outs = def.infer(ins, attrs as never);
    } catch (e) {
      if (e instanceof ShapeError) {
        const operands = ins.map((x) => `${x.dtype}${formatShape(x.shape)}`).join(", ");
        throw new OpTypeError(op, `${e.message}; operands: ${operands}`, opts.loc, scope);
      }
      throw e;
    }
    const outputs = outs.map((o) => this.fresh(o));
    this.nodes.push({ op, inputs: [...inputs], outputs, attrs, scope, ...(opts.loc && { loc: opts.loc }), ...(opts.meta && { meta: opts.meta }) });
    return outputs;
  }

  /** The most recently added node (rewrites use it to see what they just emitted). */
  lastNode(): Node | undefined {
    return this.nodes[this.nodes.length - 1];
  }

  output(name: string, v: ValueId): void {
    this.type(v);
    this.outputs.push({ name, value: v });
  }

  setHints(scope: string, hints: JsonValue): void {
    this.hints[scope] = hints;
  }

  build(): Graph {
    // Keep only the value types that are still reachable from the graph's lists, so dropped nodes leave no trace.
    const used = new Set<ValueId>();
    for (const x of this.inputs) used.add(x.value);
    for (const x of this.params) used.add(x.value);
    for (const n of this.nodes) for (const o of n.outputs) used.add(o);
    const values = new Map<ValueId, ValueType>();
    for (const [id, t] of this.values) if (used.has(id)) values.set(id, t);
    return {
      name: this.name,
      values,
      inputs: [...this.inputs],
      params: [...this.params],
      nodes: [...this.nodes],
      outputs: [...this.outputs],
      hints: { ...this.hints },
    };
  }
}

/** Map from value id to the node that defines it, and to the nodes that use it. */
export function useDef(g: Graph): { def: Map<ValueId, Node>; uses: Map<ValueId, Node[]> } {
  const def = new Map<ValueId, Node>();
  const uses = new Map<ValueId, Node[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) def.set(o, n);
    for (const i of n.inputs) {
      const list = uses.get(i);
      list ? list.push(n) : uses.set(i, [n]);
    }
  }
  return { def, uses };
}

/** Nodes the graph's outputs depend on. */
export function liveNodes(g: Graph): Set<Node> {
  const { def } = useDef(g);
  const live = new Set<Node>();
  const stack = g.outputs.map((o) => o.value);
  while (stack.length) {
    const n = def.get(stack.pop()!);
    if (!n || live.has(n)) continue;
    live.add(n);
    stack.push(...n.inputs);
  }
  return live;
}

export function opCounts(g: Graph): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of g.nodes) counts[n.op] = (counts[n.op] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}
