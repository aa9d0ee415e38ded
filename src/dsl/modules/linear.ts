// Linear layer: y = x @ W^T + b with W stored [out, in] (torch / TensorRT-LLM layout). One `linear` op.

import type { DType } from "../../ir/dtype.ts";
import { linear } from "../functional.ts";
import { Module } from "../module.ts";
import { Parameter } from "../parameter.ts";
import type { Tensor } from "../tensor.ts";

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias?: Parameter;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean; dtype?: DType } = {},
  ) {
    super();
    this.weight = new Parameter([outFeatures, inFeatures], opts.dtype);
    if (opts.bias) this.bias = new Parameter([outFeatures], opts.dtype);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
