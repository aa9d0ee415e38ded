// Feed-forward blocks. MLP: proj(act(fc(x))). GatedMLP: down(act(gate(x)) * up(x)) (SwiGLU when act = silu),
// named after Hugging Face's gate_proj/up_proj/down_proj; the emitter maps gate -> TensorRT-LLM `fc` and
// up -> `gate` (TensorRT-LLM's GatedMLP names the activated side fc).

import type { DType } from "../../ir/dtype.ts";
import { ACTIVATIONS, type Activation } from "../functional.ts";
import { Module } from "../module.ts";
import type { Tensor } from "../tensor.ts";
import { Linear } from "./linear.ts";

export class MLP extends Module {
  readonly fc: Linear;
  readonly proj: Linear;

  constructor(
    hidden: number,
    ffn: number,
    readonly act: Activation,
    opts: { bias?: boolean; dtype?: DType } = {},
  ) {
    super();
    this.fc = new Linear(hidden, ffn, opts);
    this.proj = new Linear(ffn, hidden, opts);
  }

  forward(x: Tensor): Tensor {
    return this.proj.forward(ACTIVATIONS[this.act](this.fc.forward(x)));
  }
}

export class GatedMLP extends Module {
  readonly gate: Linear;
  readonly up: Linear;
  readonly down: Linear;

  constructor(
    hidden: number,
    ffn: number,
    readonly act: Activation,
    opts: { bias?: boolean; dtype?: DType } = {},
  ) {
    super();
    this.gate = new Linear(hidden, ffn, opts);
    this.up = new Linear(hidden, ffn, opts);
    this.down = new Linear(ffn, hidden, opts);
  }

  forward(x: Tensor): Tensor {
    return this.down.forward(ACTIVATIONS[this.act](this.gate.forward(x)).mul(this.up.forward(x)));
  }
}
