// A decoder-only causal LM wrapper: token embedding (+ optional learned absolute positions), a list of decoder
// layers, a final norm and an LM head that is either its own Linear or tied to the token embedding, optionally
// followed by final-logit soft-capping.

import { linear } from "../functional.ts";
import { Module } from "../module.ts";
import type { Tensor } from "../tensor.ts";
import type { Embedding } from "./embedding.ts";
import type { Linear } from "./linear.ts";

export interface DecoderLayer extends Module {
  forward(hidden: Tensor, positions: Tensor): Tensor;
}

export interface CausalLMParts<L extends DecoderLayer> {
  readonly embed: Embedding;
  /** Learned absolute position embedding (GPT-2); omit for rotary models. */
  readonly positionEmbed?: Embedding;
  readonly layers: L[];
  readonly norm: Module & { forward(x: Tensor): Tensor };
  /** Omit to tie the LM head to the token embedding. */
  readonly lmHead?: Linear;
  /** Final-logit soft-capping (Gemma 2 `final_logit_softcapping`): logits become cap * tanh(logits / cap). */
  readonly finalSoftcap?: number;
}

export class CausalLM<L extends DecoderLayer = DecoderLayer> extends Module {
  readonly embed: Embedding;
  readonly positionEmbed?: Embedding;
  readonly layers: L[];
  readonly norm: Module & { forward(x: Tensor): Tensor };
  readonly lmHead?: Linear;
  readonly finalSoftcap?: number;

  constructor(parts: CausalLMParts<L>) {
    super();
    this.embed = parts.embed;
    if (parts.positionEmbed) this.positionEmbed = parts.positionEmbed;
    this.layers = parts.layers;
    this.norm = parts.norm;
    if (parts.lmHead) this.lmHead = parts.lmHead;
    if (parts.finalSoftcap) this.finalSoftcap = parts.finalSoftcap;
  }

  get tied(): boolean {
    return this.lmHead === undefined;
  }

  /** inputIds, positionIds: [batch, seq] i32 -> logits [batch, seq, vocab]. */
  forward(inputIds: Tensor, positionIds: Tensor): Tensor {
    let h = this.embed.forward(inputIds);
    if (this.positionEmbed) h = h.add(this.positionEmbed.forward(positionIds));
    for (const layer of this.layers) h = layer.forward(h, positionIds);
    h = this.norm.forward(h);
    const logits = this.lmHead ? this.lmHead.forward(h) : linear(h, this.embed.weight);
    return this.finalSoftcap ? logits.softcap(this.finalSoftcap) : logits;
  }
}
