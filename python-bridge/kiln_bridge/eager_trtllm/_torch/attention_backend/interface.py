"""Eager `tensorrt_llm._torch.attention_backend.interface` (@ b35ac1b64368513d215c57d2ed01d62d910df8da):
RopeParams and PositionalEmbeddingParams as data, plus the metadata of one packed context-phase batch.

RopeParams' frequencies: inv_freq = 1 / theta ** (arange(0, dim, 2) / dim), 'linear' divides by `scale`, 'llama3'
rescales by wavelength band (scale, low_freq_factor, high_freq_factor, original_max_positions); other scale types
are refused (kiln_bridge.rope computes the tables the same way as functional.RopeEmbeddingUtils)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .... import rope as rope_tables
from ...functional import PositionEmbeddingType, RotaryScalingType


@dataclass(kw_only=True)
class RopeParams:
    dim: int = 0
    theta: float = 10000.0
    scale_type: RotaryScalingType = RotaryScalingType.none
    scale: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    short_m_scale: float = 1.0
    long_m_scale: float = 1.0
    max_positions: int = 1024
    original_max_positions: int = 1024
    beta_fast: int = 32
    beta_slow: int = 1
    mscale: float = 1.0
    mscale_all_dim: float = 0.0

    def inv_freq(self) -> torch.Tensor:
        kind = RotaryScalingType(self.scale_type)
        if kind == RotaryScalingType.none:
            scaling = None
        elif kind == RotaryScalingType.linear:
            scaling = {"type": "linear", "factor": self.scale}
        elif kind == RotaryScalingType.llama3:
            scaling = {"type": "llama3", "factor": self.scale, "low_freq_factor": self.low_freq_factor,
                       "high_freq_factor": self.high_freq_factor,
                       "original_max_position_embeddings": self.original_max_positions}
        else:
            raise NotImplementedError(f"eager tensorrt_llm: RopeParams scale_type {kind.name} is not modelled")
        return rope_tables.inv_freq(int(self.dim), float(self.theta), scaling)


@dataclass(kw_only=True)
class PositionalEmbeddingParams:
    type: PositionEmbeddingType
    embedder: object | None = None
    rope: RopeParams | None = None
    is_neox: bool = True
    mrope_section: list[int] | None = None


@dataclass
class AttentionMetadata:
    """One context-phase sequence of `num_tokens` packed tokens (what the verifier runs)."""

    seq_lens: list[int] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return sum(self.seq_lens)
