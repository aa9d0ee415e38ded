// Embedding table [vocab, dim]; forward gathers rows by i32 ids.

import type { DType } from "../../ir/dtype.ts";
import { embedding } from "../functional.ts";
import { Module } from "../module.ts";
import { Parameter } from "../parameter.ts";
import type { Tensor } from "../tensor.ts";

export class Embedding extends Module {
  readonly weight: Parameter;

  constructor(
    readonly vocab: number,
    readonly dim: number,
    opts: { dtype?: DType } = {},
  ) {
    super();
    this.weight = new Parameter([vocab, dim], opts.dtype);
  }

  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}
