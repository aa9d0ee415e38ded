"""Rotary position embedding as TensorRT-LLM's GPT attention plugin applies it.

Tables follow `RopeEmbeddingUtils.create_sinusoidal_positions_for_attention_plugin` (tensorrt_llm/functional.py):
inv_freq = 1 / theta**(arange(0, rd, 2)/rd), the power taken in float64 and cast to float32; 'linear' scaling
multiplies by 1/factor; 'llama3' rescales each frequency by wavelength band (factor, low_freq_factor,
high_freq_factor, original_max_position_embeddings, defaults 8, 1, 4, 8192); angles = pos * inv_freq in float32.
Rotation touches only the first `rotary_dim` channels of each head:
- rope_gpt_neox (rotate-half): pairs (i, i + rd/2) share inv_freq[i];
- rope_gptj (interleaved): pairs (2i, 2i + 1) share inv_freq[i].
Scaling types that change the tables with the sequence length (dynamic, yarn, longrope, mrope) are refused.
"""
from __future__ import annotations

import math

import torch

from .errors import UnsupportedConfig

STYLES = ("rope_gpt_neox", "rope_gptj")
_NO_SCALING = (None, "none", "default")


def scaling_type(scaling: dict | None) -> str | None:
    if not scaling:
        return None
    kind = scaling.get("type", scaling.get("rope_type"))
    return None if kind in _NO_SCALING else str(kind)


def inv_freq(rotary_dim: int, base: float, scaling: dict | None) -> torch.Tensor:
    """Per-pair inverse frequencies [rotary_dim // 2], float32."""
    powers = (float(base) ** (torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)).to(torch.float32)
    kind = scaling_type(scaling)
    if kind is None:
        return 1.0 / powers
    if kind == "linear":
        return (1.0 / float(scaling["factor"])) / powers
    if kind == "llama3":
        return _llama3(1.0 / powers, scaling)
    raise UnsupportedConfig(f"config.json rotary_scaling type {kind!r} is not supported (none, linear, llama3 are)")


def _llama3(freqs: torch.Tensor, scaling: dict) -> torch.Tensor:
    factor = float(scaling.get("factor", 8.0))
    low, high = float(scaling.get("low_freq_factor", 1.0)), float(scaling.get("high_freq_factor", 4.0))
    old_len = float(scaling.get("original_max_position_embeddings", 8192))
    low_wavelen, high_wavelen = old_len / low, old_len / high
    out = []
    for f in freqs.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(f)
        elif wavelen > low_wavelen:
            out.append(f / factor)
        else:
            smooth = (old_len / wavelen - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.tensor(out, dtype=torch.float32)


def cos_sin(positions: torch.Tensor, freqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of the angles [T, rotary_dim // 2] for integer positions [T]."""
    angles = positions.to(torch.float32)[:, None] * freqs.to(positions.device)[None, :]
    return torch.cos(angles), torch.sin(angles)


def apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rotary_dim: int, style: str) -> torch.Tensor:
    """Rotate x: [T, heads, head_size] (float32) in its first `rotary_dim` channels."""
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    c, s = cos[:, None, :], sin[:, None, :]
    if style == "rope_gpt_neox":
        a, b = rot[..., : rotary_dim // 2], rot[..., rotary_dim // 2:]
        rot = torch.cat([a * c - b * s, b * c + a * s], dim=-1)
    elif style == "rope_gptj":
        a, b = rot[..., 0::2], rot[..., 1::2]
        rot = torch.stack([a * c - b * s, b * c + a * s], dim=-1).flatten(-2)
    else:
        raise UnsupportedConfig(f"rotary style {style!r} is not one of {', '.join(STYLES)}")
    return torch.cat([rot, rest], dim=-1)
