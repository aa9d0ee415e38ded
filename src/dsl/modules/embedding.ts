// Embedding table [vocab, dim]; forward gathers rows by i32 ids, optionally scaled by a constant (Gemma multiplies
// the embeddings by sqrt(hidden)); a tied LM head reads the unscaled table.

import type { DType } from "../../ir/dtype.ts";
import { embedding } from "../functional.ts";
import { Module } from "../module.ts";
import { Parameter } from "../parameter.ts";
import type { Tensor } from "../tensor.ts";

export class Embedding extends Module {
  readonly weight: Parameter;
  /** Output multiplier (Gemma: sqrt(hidden)); undefined = none. */
  readonly scale: number | undefined;

  constructor(
    readonly vocab: number,
    readonly dim: number,
    opts: { dtype?: DType; scale?: number } = {},
  ) {
    super();
    this.weight = new Parameter([vocab, dim], opts.dtype);
    this.scale = opts.scale;
  }

  forward(ids: Tensor): Tensor {
    const rows = embedding(this.weight, ids);
    return this.scale === undefined ? rows : rows.mul(this.scale);
  }
}
