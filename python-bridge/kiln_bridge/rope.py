"""Rotary position embedding as TensorRT-LLM's GPT attention plugin applies it.

Tables follow `RopeEmbeddingUtils.create_sinusoidal_positions_for_attention_plugin` (tensorrt_llm/functional.py):
inv_freq = 1 / theta**(arange(0, rd, 2)/rd), the power taken in float64 and cast to float32; 'linear' scaling
multiplies by 1/factor; 'llama3' rescales each frequency by wavelength band (factor, low_freq_factor,
high_freq_factor, original_max_position_embeddings, defaults 8, 1, 4, 8192); angles = pos * inv_freq in float32.
Rotation touches only the first `rotary_dim` channels of each head:
- rope_gpt_neox (rotate-half): pairs (i, i + rd/2) share inv_freq[i];
- rope_gptj (interleaved): pairs (2i, 2i + 1) share inv_freq[i].
- 'yarn': the table of `RopeEmbeddingUtils.create_sinusoidal_positions_yarn` (tensorrt_llm/functional.py
  @ 0071496dc625910229bf433821453636ef3770eb, which layers/attention.py @ 89fd9b74 `create_attention_const_params`
  feeds the plugin as its cos/sin cache): per-pair frequencies blended between interpolation (1 / (factor * p)) and
  extrapolation (1 / p), p = base**(2i/rd) in float32, by a linear ramp over the pair index between
  floor(d(beta_fast)) and ceil(d(beta_slow)) clamped to [0, rd - 1], d(r) = rd * ln(orig / (2 pi r)) / (2 ln base);
  cos and sin then multiplied by mscale(factor, mscale) / mscale(factor, mscale_all_dim), mscale(s, m) =
  0.1 m ln s + 1 for s > 1 (else 1). Defaults: beta_fast 32, beta_slow 1, mscale 1, mscale_all_dim 0, orig 4096.
- 'dynamic': the plugin ignores the table and recomputes the frequencies per sequence in the context phase
  (cpp/tensorrt_llm/kernels/gptKernels.cu @ 097f4cf1f2e2c9530edb8edb34adbb697fa846e5, computeSeqAndPaddingOffsets
  with mmha::update_rotary_base_n_scale): for a sequence of L tokens with L > max_positions (the layer's
  max_position_embeddings), base' = base * (L * factor / max_positions - (factor - 1)) ** (rd / (rd - 2)), and
  inv_freq = 1 / base' ** (2i / rd) (the factor then plays no other part), all in float32.
  1.2.1 builds that table too, from `rotary_scaling["alpha"]` (Hunyuan's NTK-alpha base) and fails with a KeyError
  without it (create_sinusoidal_positions_for_attention_plugin): `check_buildable` refuses such a config in one line.
Longrope and mrope are refused.
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
    raise UnsupportedConfig(f"config.json rotary_scaling type {kind!r} is not supported here (none, linear, llama3 "
                            "are; yarn and dynamic only through rope.tables)")


def check_buildable(scaling: dict | None) -> None:
    """A rotary_scaling 1.2.1's create_attention_const_params would fail on is refused as it would (one line)."""
    if scaling_type(scaling) == "dynamic" and scaling.get("alpha") is None:
        raise UnsupportedConfig("config.json rotary_scaling type 'dynamic' has no 'alpha': TensorRT-LLM 1.2.1's "
                                "RopeEmbeddingUtils.create_sinusoidal_positions_for_attention_plugin reads "
                                "rotary_scaling['alpha'] for dynamic scaling and fails building the model without it")


def tables(positions: torch.Tensor, rotary_dim: int, base: float, scaling: dict | None,
           max_positions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, rotary_dim // 2] the plugin rotates one sequence of T = len(positions) tokens with."""
    kind = scaling_type(scaling)
    mscale = 1.0
    if kind == "dynamic":
        freqs = dynamic_inv_freq(rotary_dim, base, float(scaling.get("factor", 1.0)), max_positions, len(positions))
    elif kind == "yarn":
        freqs, mscale = yarn(rotary_dim, base, scaling)
    elif kind is None or kind in ("linear", "llama3"):
        freqs = inv_freq(rotary_dim, base, scaling)
    else:
        raise UnsupportedConfig(f"config.json rotary_scaling type {kind!r} is not supported (none, linear, llama3, "
                                "yarn and dynamic are)")
    cos, sin = cos_sin(positions, freqs)
    return (cos * mscale, sin * mscale) if mscale != 1.0 else (cos, sin)


def dynamic_inv_freq(rotary_dim: int, base: float, factor: float, max_positions: int, seq_len: int) -> torch.Tensor:
    """The context kernel's per-sequence frequencies for RotaryScalingType.dynamic (see the module header)."""
    b = torch.tensor(float(base), dtype=torch.float32)
    if seq_len > max_positions:
        growth = torch.tensor(seq_len * factor / max_positions - (factor - 1), dtype=torch.float32)
        b = b * growth ** torch.tensor(rotary_dim / (rotary_dim - 2), dtype=torch.float32)
    exponents = torch.arange(0, rotary_dim, 2, dtype=torch.float32) / rotary_dim
    return 1.0 / b ** exponents


def yarn(rotary_dim: int, base: float, scaling: dict) -> tuple[torch.Tensor, float]:
    """YaRN's per-pair frequencies and its cos/sin multiplier (see the module header)."""
    factor = float(scaling.get("factor", 1.0))
    orig = float(scaling.get("original_max_position_embeddings", 4096))
    beta_fast, beta_slow = float(scaling.get("beta_fast", 32.0)), float(scaling.get("beta_slow", 1.0))

    def correction_dim(rotations: float) -> float:
        return rotary_dim * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low = max(math.floor(correction_dim(beta_fast)), 0)
    high = min(math.ceil(correction_dim(beta_slow)), rotary_dim - 1)
    if low == high:
        high += 0.001
    powers = float(base) ** (torch.arange(0, rotary_dim, 2, dtype=torch.float32) / rotary_dim)
    ramp = ((torch.arange(rotary_dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    extrapolated = 1 - ramp  # weight of the unscaled frequency
    freqs = (1.0 / (factor * powers)) * (1 - extrapolated) + (1.0 / powers) * extrapolated

    def mscale_of(m: float) -> float:
        return 1.0 if factor <= 1 else 0.1 * m * math.log(factor) + 1.0

    return freqs, mscale_of(float(scaling.get("mscale", 1.0))) / mscale_of(float(scaling.get("mscale_all_dim", 0.0)))


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
