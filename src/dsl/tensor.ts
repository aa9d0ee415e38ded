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
  // Routing (issue 14): top-k, argmax, comparisons, gathers, one-hot.
  /** The k largest values along an axis, largest first, and their i32 indices (ties: lower index first). */
  topk(k: number, axis = -1): [values: Tensor, indices: Tensor] {
    const [values, indices] = activeTracer().emit("topk", [this.id], { k, axis });
    return [new Tensor(values!), new Tensor(indices!)];
  }
  /** i32 index of the largest value along an axis (ties: the lowest index). */
  argmax(axis = -1, keepDims = false): Tensor {
    return op1("argmax", this, { axis, keepDims });
  }
  /** this > o, elementwise (bool). */
  gt(o: Operand): Tensor {
    return binary("greater", this, o);
  }
  /** this < o, elementwise (bool). */
  lt(o: Operand): Tensor {
    return binary("less", this, o);
  }
  /** this == o, elementwise (bool). */
  eq(o: Operand): Tensor {
    return binary("equal", this, o);
  }
  /** torch.gather: out[..., i, ...] = this[..., indices[..., i, ...], ...] along `axis` (indices i32, same rank). */
  gather(axis: number, indices: Tensor): Tensor {
    return emit1("gather", [this, indices], { axis });
  }
  /** torch.index_select: the slices at the i32 positions of a 1-D `index` along `axis`. */
  indexSelect(axis: number, index: Tensor): Tensor {
    return emit1("index_select", [this, index], { axis });
  }
  /** i32 class ids [...] to [..., numClasses] one-hot rows of the given dtype. */
  oneHot(numClasses: number, dtype: DType = "f32"): Tensor {
    return op1("one_hot", this, { numClasses, dtype });
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
