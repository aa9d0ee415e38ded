// Multi-head causal self-attention with separate q/k/v/o projections, grouped-query (or multi-query) key/value
// heads, optional per-projection biases, optional rotary embedding (full or partial), optional per-head QK-norm, an optional sliding window and
// optional attention-logit soft-capping. The core computes one
// `attention` op; fusion passes later merge q/k/v into one GEMM.

import { ModelSizeError } from "../../io/kiln-error.ts";
import type { DType } from "../../ir/dtype.ts";
import { attention, type RopeSpec, rope } from "../functional.ts";
import { Module } from "../module.ts";
import type { Tensor } from "../tensor.ts";
import { Linear } from "./linear.ts";
import { RMSNorm } from "./norms.ts";

export interface AttentionConfig {
  readonly hidden: number;
  readonly heads: number;
  /** Key/value heads (GQA); defaults to `heads`. 1 = multi-query. */
  readonly kvHeads?: number;
  /** Per-head size; defaults to hidden / heads. */
  readonly headDim?: number;
  /** Bias on q/k/v and on the output projection. */
  readonly qkvBias?: boolean;
  readonly outBias?: boolean;
  /** Rotary embedding; omit for models with learned absolute positions. */
  readonly rope?: RopeSpec;
  /** Softmax scale; defaults to 1/sqrt(headDim). */
  readonly scale?: number;
  readonly causal?: boolean;
  /** Per-head RMSNorm of q and k (over head_dim, before the rotary embedding): Qwen3, OLMo2-style QK-norm. */
  readonly qkNorm?: { readonly eps: number };
  /** Sliding window in tokens for this layer (Mistral, Qwen2, Gemma 2 local layers); omit or 0 for global. */
  readonly window?: number;
  /** Attention-logit soft-capping (Gemma 2 `attn_logit_softcapping`): scaled scores become softcap * tanh(s / softcap)
   *  before the mask; omit or 0 for none. */
  readonly softcap?: number;
  readonly dtype?: DType;
}

export class Attention extends Module {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  readonly qNorm?: RMSNorm;
  readonly kNorm?: RMSNorm;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;

  constructor(private readonly cfg: AttentionConfig) {
    super();
    this.heads = cfg.heads;
    this.kvHeads = cfg.kvHeads ?? cfg.heads;
    this.headDim = cfg.headDim ?? cfg.hidden / cfg.heads;
    if (!Number.isInteger(this.headDim)) throw new ModelSizeError(`hidden ${cfg.hidden} is not divisible by ${cfg.heads} heads; give headDim`);
    if (this.heads % this.kvHeads !== 0) throw new ModelSizeError(`${this.heads} query heads are not a multiple of ${this.kvHeads} key/value heads`);
    const opts = { bias: cfg.qkvBias ?? false, ...(cfg.dtype && { dtype: cfg.dtype }) };
    this.q = new Linear(cfg.hidden, this.heads * this.headDim, opts);
    this.k = new Linear(cfg.hidden, this.kvHeads * this.headDim, opts);
    this.v = new Linear(cfg.hidden, this.kvHeads * this.headDim, opts);
    this.o = new Linear(this.heads * this.headDim, cfg.hidden, { ...opts, bias: cfg.outBias ?? false });
    if (cfg.qkNorm) {
      this.qNorm = new RMSNorm(this.headDim, cfg.qkNorm.eps, cfg.dtype && { dtype: cfg.dtype });
      this.kNorm = new RMSNorm(this.headDim, cfg.qkNorm.eps, cfg.dtype && { dtype: cfg.dtype });
    }
  }

  /** x: [batch, seq, hidden], positions: [batch, seq] -> [batch, seq, hidden]. */
  forward(x: Tensor, positions: Tensor): Tensor {
    const [b, s] = [x.dim(0), x.dim(1)];
    let q = this.q.forward(x).reshape([b, s, this.heads, this.headDim]);
    let k = this.k.forward(x).reshape([b, s, this.kvHeads, this.headDim]);
    const v = this.v.forward(x).reshape([b, s, this.kvHeads, this.headDim]);
    if (this.qNorm && this.kNorm) {
      q = this.qNorm.forward(q);
      k = this.kNorm.forward(k);
    }
    if (this.cfg.rope) {
      q = rope(q, positions, this.cfg.rope);
      k = rope(k, positions, this.cfg.rope);
    }
    const out = attention(q, k, v, {
      causal: this.cfg.causal ?? true,
      scale: this.cfg.scale ?? 1 / Math.sqrt(this.headDim),
      window: this.cfg.window ?? 0,
      softcap: this.cfg.softcap ?? 0,
    });
    return this.o.forward(out.reshape([b, s, this.heads * this.headDim]));
  }
}
