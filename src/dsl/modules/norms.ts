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
  /** Added to the stored weight before scaling (Gemma stores w - 1 and scales by 1 + w); 0 = plain RMSNorm. */
  readonly offset: number;

  constructor(
    dim: number,
    readonly eps = 1e-6,
    opts: { dtype?: DType; offset?: number } = {},
  ) {
    super();
    this.weight = new Parameter([dim], opts.dtype);
    this.offset = opts.offset ?? 0;
  }

  forward(x: Tensor): Tensor {
    if (!this.offset) return rmsNorm(x, this.weight, this.eps);
    // x̂ * (offset + w) as x̂ * w + offset * x̂: every op reads the activation, so nothing is a weight-only
    // computation that pipeline stages or custom code would have to place before the layers.
    const normed = rmsNorm(x, undefined, this.eps);
    return normed.mul(this.weight).add(this.offset === 1 ? normed : normed.mul(this.offset));
  }
}
