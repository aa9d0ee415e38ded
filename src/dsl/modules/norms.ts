// Normalization layers over the last axis: LayerNorm (weight and optional bias) and RMSNorm (weight only).

import type { DType } from "../../ir/dtype.ts";
import { layerNorm, rmsNorm } from "../functional.ts";
import { Module } from "../module.ts";
import { Parameter } from "../parameter.ts";
import type { Tensor } from "../tensor.ts";

export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias?: Parameter;

  constructor(
    dim: number,
    readonly eps = 1e-5,
    opts: { bias?: boolean; dtype?: DType } = {},
  ) {
    super();
    this.weight = new Parameter([dim], opts.dtype);
    if (opts.bias ?? true) this.bias = new Parameter([dim], opts.dtype);
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Parameter;

  constructor(
    dim: number,
    readonly eps = 1e-6,
    opts: { dtype?: DType } = {},
  ) {
    super();
    this.weight = new Parameter([dim], opts.dtype);
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
