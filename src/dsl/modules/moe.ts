// Sparse mixture of experts: a router picks each token's top-k experts (gated MLPs) and sums their outputs weighted
// by the router's scores, plus an optional always-on shared expert (Qwen2-MoE, behind a sigmoid gate). Traces to one
// `moe` op (see src/ir/ops-routing.ts for its exact semantics). Parameters, named after their fields:
//   router.weight [E, H], experts.gate [E, I, H], experts.up [E, I, H], experts.down [E, H, I],
//   shared.{gate,up,down}.weight (a GatedMLP of width S) and sharedExpertGate.weight [1, H] when configured.
// Invariants: expert weights are stacked on a leading expert axis (HF's MixtralExperts / Qwen2MoeExperts layout, with
// gate and up as separate tensors); the router's dtype may differ from the experts' (TensorRT-LLM keeps it float32).

import type { DType } from "../../ir/dtype.ts";
import { type MoeSpec, moe } from "../functional.ts";
import { Module } from "../module.ts";
import { Parameter } from "../parameter.ts";
import type { Tensor } from "../tensor.ts";
import { Linear } from "./linear.ts";
import { GatedMLP } from "./mlp.ts";

export interface MoEConfig {
  readonly hidden: number;
  /** Width of each routed expert's gated MLP (HF: intermediate_size for Mixtral, moe_intermediate_size for Qwen2-MoE). */
  readonly expertFfn: number;
  readonly numExperts: number;
  readonly topK: number;
  /** How router logits become scores: softmax over experts (Mixtral, Qwen) or an independent sigmoid per expert. */
  readonly scoring?: "softmax" | "sigmoid";
  /** Renormalize the top-k scores to sum 1 (Mixtral: always; Qwen2-MoE: norm_topk_prob). */
  readonly normalizeTopK: boolean;
  /** The gated MLPs' activation (HF hidden_act). */
  readonly activation?: MoeSpec["activation"];
  /** An always-on shared expert of this width (Qwen2-MoE: shared_expert_intermediate_size). */
  readonly sharedFfn?: number;
  /** Scale the shared expert by sigmoid(x . w) with a [1, H] weight (Qwen2-MoE's shared_expert_gate). */
  readonly sharedExpertGate?: boolean;
  readonly dtype?: DType;
  /** The router's dtype (default: dtype). */
  readonly routerDtype?: DType;
}

/** The routed experts' weights, stacked on a leading expert axis. */
export class Experts extends Module {
  readonly gate: Parameter;
  readonly up: Parameter;
  readonly down: Parameter;

  constructor(numExperts: number, hidden: number, ffn: number, dtype?: DType) {
    super();
    this.gate = new Parameter([numExperts, ffn, hidden], dtype);
    this.up = new Parameter([numExperts, ffn, hidden], dtype);
    this.down = new Parameter([numExperts, hidden, ffn], dtype);
  }
}

export class MoE extends Module {
  readonly router: Linear;
  readonly experts: Experts;
  readonly shared?: GatedMLP;
  readonly sharedExpertGate?: Linear;
  readonly spec: MoeSpec;

  constructor(readonly config: MoEConfig) {
    super();
    const { hidden, expertFfn, numExperts, topK } = config;
    if (!(Number.isInteger(numExperts) && numExperts >= 1)) throw new Error(`MoE numExperts must be a whole number >= 1, got ${numExperts}`);
    if (!(Number.isInteger(topK) && topK >= 1 && topK <= numExperts)) throw new Error(`MoE topK must be in 1..numExperts (${numExperts}), got ${topK}`);
    if (config.sharedExpertGate && !config.sharedFfn) throw new Error("MoE sharedExpertGate needs a shared expert (sharedFfn)");
    this.router = new Linear(hidden, numExperts, { dtype: config.routerDtype ?? config.dtype });
    this.experts = new Experts(numExperts, hidden, expertFfn, config.dtype);
    const activation = config.activation ?? "silu";
    if (config.sharedFfn)
      this.shared = new GatedMLP(hidden, config.sharedFfn, activation === "gelu_tanh" ? "gelu_pytorch_tanh" : activation, { dtype: config.dtype });
    if (config.sharedExpertGate) this.sharedExpertGate = new Linear(hidden, 1, { dtype: config.dtype });
    this.spec = { numExperts, topK, scoring: config.scoring ?? "softmax", normalizeTopK: config.normalizeTopK, activation };
  }

  forward(x: Tensor): Tensor {
    const shared = this.shared && {
      gate: this.shared.gate.weight,
      up: this.shared.up.weight,
      down: this.shared.down.weight,
      ...(this.sharedExpertGate && { expertGate: this.sharedExpertGate.weight }),
    };
    const weights = { router: this.router.weight, gate: this.experts.gate, up: this.experts.up, down: this.experts.down, ...(shared && { shared }) };
    return moe(x, weights, this.spec);
  }
}
