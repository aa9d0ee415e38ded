// The tracing context. While a model is traced, exactly one Tracer is active; DSL tensor methods append nodes to
// its graph builder with the current module scope and the user's source line. Tracing is synchronous, so a
// module-level "active tracer" is safe; using a tensor outside a trace is an error that says so.

import type { JsonValue } from "../ir/attrs.ts";
import type { GraphBuilder, SourceLoc, ValueId } from "../ir/graph.ts";
import type { ValueType } from "../ir/ops.ts";
import { callerLocation } from "./source-loc.ts";

/** Where emitted nodes are attributed when they do not come from user code (rewrites made by passes). */
export interface FixedOrigin {
  readonly scope: string;
  readonly loc?: SourceLoc;
  readonly meta?: Readonly<Record<string, string>>;
}

export class Tracer {
  private readonly scopes: string[] = [];

  constructor(
    readonly builder: GraphBuilder,
    private readonly origin?: FixedOrigin,
  ) {}

  get scope(): string {
    return this.scopes[this.scopes.length - 1] ?? this.origin?.scope ?? "";
  }

  withScope<T>(scope: string, fn: () => T): T {
    this.scopes.push(scope);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  emit(op: string, inputs: readonly ValueId[], attrs: Record<string, unknown> = {}): ValueId[] {
    const loc = this.origin ? this.origin.loc : callerLocation();
    return this.builder.node(op, inputs, attrs, { scope: this.scope, ...(loc && { loc }), ...(this.origin?.meta && { meta: this.origin.meta }) });
  }

  type(v: ValueId): ValueType {
    return this.builder.type(v);
  }

  setHints(scope: string, hints: JsonValue): void {
    this.builder.setHints(scope, hints);
  }
}

let active: Tracer | undefined;

export function activeTracer(): Tracer {
  if (!active) throw new Error("tensor operations can only run while a model is being traced (inside forward)");
  return active;
}

export function withTracer<T>(t: Tracer, fn: () => T): T {
  if (active) throw new Error("a trace is already running; traces cannot nest");
  active = t;
  try {
    return fn();
  } finally {
    active = undefined;
  }
}
