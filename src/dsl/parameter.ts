// Parameters: weights declared in module constructors with a concrete shape and dtype. Their names come from the
// attribute path at trace time ("layers.0.attn.q.weight"); the tracer binds each to an IR parameter value.

import type { DType } from "../ir/dtype.ts";
import { Tensor } from "./tensor.ts";
import { activeTracer } from "./tracer.ts";

const bound = new WeakMap<Parameter, number>();

export class Parameter extends Tensor {
  constructor(
    readonly declaredShape: readonly number[],
    readonly declaredDtype: DType = "f32",
  ) {
    super(-1);
    for (const d of declaredShape) if (!Number.isInteger(d) || d <= 0) throw new Error(`parameter dims must be positive integers, got [${declaredShape}]`);
  }

  override get id(): number {
    activeTracer();
    const v = bound.get(this);
    if (v === undefined)
      throw new Error(`parameter [${this.declaredShape}] is not reachable from the model's attributes, so it has no name; assign it to a module field`);
    return v;
  }
}

export function bindParameter(p: Parameter, value: number): void {
  bound.set(p, value);
}

export function unbindParameter(p: Parameter): void {
  bound.delete(p);
}
