// Traced tensors. A Tensor is a handle on an IR value of the active trace; its methods append typed ops (shapes and
// dtypes checked immediately, errors naming the op, both shapes and the user's line). Numbers used as operands
// become scalar constants of the tensor's dtype. Parameters are tensors whose value is bound when tracing starts.

import type { DType } from "../ir/dtype.ts";
import type { ValueId } from "../ir/graph.ts";
import { type Dim, normAxis, type Shape } from "../ir/shape.ts";
import { activeTracer } from "./tracer.ts";

export type Operand = Tensor | number;

export class Tensor {
  constructor(private readonly valueId: ValueId) {}

  /** The IR value this tensor stands for in the active trace. */
  get id(): ValueId {
    return this.valueId;
  }

  /** Dimensions, each a number or a symbol such as "batch" or "seq". */
  get shape(): Shape {
    return activeTracer().type(this.id).shape;
  }

  /** Element type: f32, f16, bf16, i32 or bool. */
  get dtype(): DType {
    return activeTracer().type(this.id).dtype;
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** Size of one dimension (negative indices count from the end). */
  dim(i: number): Dim {
    const a = normAxis(i, this.rank);
    if (a === undefined) throw new Error(`dim ${i} out of range for a rank-${this.rank} tensor`);
    return this.shape[a]!;
  }

  add(o: Operand): Tensor {
    return binary("add", this, o);
  }
  sub(o: Operand): Tensor {
    return binary("sub", this, o);
  }
  mul(o: Operand): Tensor {
    return binary("mul", this, o);
  }
  div(o: Operand): Tensor {
    return binary("div", this, o);
  }
  pow(o: Operand): Tensor {
    return binary("pow", this, o);
  }
  neg(): Tensor {
    return op1("neg", this);
  }
  exp(): Tensor {
    return op1("exp", this);
  }
  tanh(): Tensor {
    return op1("tanh", this);
  }
  erf(): Tensor {
    return op1("erf", this);
  }
  sqrt(): Tensor {
    return op1("sqrt", this);
  }
  rsqrt(): Tensor {
    return op1("rsqrt", this);
  }
  relu(): Tensor {
    return op1("relu", this);
  }
  sigmoid(): Tensor {
    return op1("sigmoid", this);
  }
  silu(): Tensor {
    return op1("silu", this);
  }
  /** Soft-capping cap * tanh(x / cap) (Gemma 2's final logits); cap > 0. */
  softcap(cap: number): Tensor {
    return op1("softcap", this, { cap });
  }
  gelu(approximate: "none" | "tanh" = "none"): Tensor {
    return op1("gelu", this, { approximate });
  }
  /**
   * Converts the element type. Floats trace as f32, the build's float dtype (float16/bfloat16 in half builds).
   * "float32" starts a float32 island: the result and what is computed from it stay float32 in every build until
   * `.cast("model")` returns to the build's dtype (numerically delicate sums in a half-precision model).
   */
  cast(dtype: DType | "float32" | "model"): Tensor {
    if (dtype === "float32") return op1("cast", this, { dtype: "f32", island: "enter" });
    if (dtype === "model") return op1("cast", this, { dtype: "f32", island: "exit" });
    return op1("cast", this, { dtype, island: "none" });
  }
  matmul(o: Tensor): Tensor {
    return emit1("matmul", [this, o]);
  }
  softmax(axis = -1): Tensor {
    return op1("softmax", this, { axis });
  }
  mean(axes: number | number[] = -1, keepDims = true): Tensor {
    return op1("reduce_mean", this, { axes: [axes].flat(), keepDims });
  }
  sum(axes: number | number[] = -1, keepDims = true): Tensor {
    return op1("reduce_sum", this, { axes: [axes].flat(), keepDims });
  }
  max(axes: number | number[] = -1, keepDims = true): Tensor {
    return op1("reduce_max", this, { axes: [axes].flat(), keepDims });
  }
  reshape(shape: Dim[]): Tensor {
    return op1("reshape", this, { shape });
  }
  transpose(perm: number[]): Tensor {
    return op1("transpose", this, { perm });
  }
  /** Swaps two axes (like torch.transpose). */
  swap(a: number, b: number): Tensor {
    const perm = [...Array(this.rank).keys()];
    const [x, y] = [normAxis(a, this.rank)!, normAxis(b, this.rank)!];
    [perm[x], perm[y]] = [perm[y]!, perm[x]!];
    return this.transpose(perm);
  }
  split(sizes: number[], axis = -1): Tensor[] {
    return activeTracer()
      .emit("split", [this.id], { axis, sizes })
      .map((v) => new Tensor(v));
  }
  slice(axis: number, start: number, end: number): Tensor {
    return op1("slice", this, { axis, start, end });
  }
  repeatInterleave(repeats: number, axis: number): Tensor {
    return op1("repeat_interleave", this, { axis, repeats });
  }
  causalMask(): Tensor {
    return op1("causal_mask", this);
  }
}

export function emit1(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, unknown> = {}): Tensor {
  const ids = inputs.filter((t): t is Tensor => t !== undefined).map((t) => t.id);
  return new Tensor(activeTracer().emit(op, ids, attrs)[0]!);
}

function op1(op: string, x: Tensor, attrs: Record<string, unknown> = {}): Tensor {
  return emit1(op, [x], attrs);
}

export function scalar(value: number, dtype: DType): Tensor {
  return emit1("constant", [], { value, dtype });
}

function binary(op: string, a: Tensor, b: Operand): Tensor {
  return emit1(op, [a, typeof b === "number" ? scalar(b, a.dtype) : b]);
}
