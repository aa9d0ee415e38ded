"""Accuracy of a quantized model against the unquantized one from all-position logits, as src/quant/metrics.ts
defines it: relative logit error ||q - r|| / ||r|| over every logit, top-1 agreement (share of positions whose
argmax, first maximum on ties, is the same) and the mean over positions of KL(p_ref || p_quant) in nats.

Invariants: sums and softmaxes run in float64 whatever the logits' dtype; positions pool over prompts (a long prompt
weighs more); KL per row is clamped at 0 (rounding can leave -1e-17 for identical rows); no positions is an error.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

_ROWS = 256


@dataclass
class Accumulator:
    num: float = 0.0
    den: float = 0.0
    agree: int = 0
    kl: float = 0.0
    positions: int = 0

    def add(self, ref: torch.Tensor, q: torch.Tensor) -> None:
        """Adds logits [..., vocab] of the reference and the quantized model (same shape)."""
        if ref.shape != q.shape:
            raise ValueError(f"logits of shapes {list(ref.shape)} and {list(q.shape)} do not match")
        rows_r = ref.reshape(-1, ref.shape[-1])
        rows_q = q.reshape(-1, q.shape[-1])
        for at in range(0, rows_r.shape[0], _ROWS):  # bounded float64 temporaries for a large vocabulary
            r = rows_r[at:at + _ROWS].double()
            s = rows_q[at:at + _ROWS].double()
            self.num += float(((s - r) ** 2).sum())
            self.den += float((r**2).sum())
            self.agree += int((r.argmax(dim=-1) == s.argmax(dim=-1)).sum())
            log_p = torch.log_softmax(r, dim=-1)
            log_q = torch.log_softmax(s, dim=-1)
            self.kl += float((log_p.exp() * (log_p - log_q)).sum(dim=-1).clamp(min=0).sum())
            self.positions += r.shape[0]

    def merge(self, other: Accumulator) -> None:
        self.num += other.num
        self.den += other.den
        self.agree += other.agree
        self.kl += other.kl
        self.positions += other.positions

    def result(self) -> dict[str, float | int]:
        if self.positions == 0:
            raise ValueError("no positions to compare: give at least one non-empty prompt")
        den = self.den or 1.0
        return {
            "relLogitError": (self.num**0.5) / (den**0.5),
            "top1Agreement": self.agree / self.positions,
            "klDivergence": self.kl / self.positions,
            "positions": self.positions,
        }
