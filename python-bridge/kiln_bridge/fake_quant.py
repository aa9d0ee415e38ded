"""What a quantized TensorRT-LLM 1.2.1 engine computes, as torch ops: the numerics of Kiln's CPU simulation
(src/quant/fake-quant-model.ts, src/quant/int-quant.ts, src/numerics/per-tensor.ts, src/numerics/fp8-e4m3.ts) for
the torch engine of `kiln eval --engine torch`, so both engines measure the same quantized model.

Conventions (scales are float32 dequantization scales, real = code * scale):
- FP8 E4M3: x / scale in float32, clamped to +-448 (ModelOpt and CUDA's __nv_fp8_e4m3 saturate; torch's cast alone
  gives NaN past 464), cast to float8_e4m3fn (round to nearest even), back to float32, times the scale.
- Scales from maxima: amax / qmax in float32, amax <= 2^-24 counting as 1 (per-tensor.ts).
- FP8 weights: one scale per scale group (fc and gate of a gated MLP share the larger), the engine dequantizes with
  that scale rounded to the model dtype; FP8 activations use the calibrated scale rounded to the model dtype.
- W8A16 / W4A16: per output channel, scale amax / 128 | amax / 8, q = round half away from zero of w / scale in
  float32, clamped to [-128, 127] | [-8, 7], dequantized with the scale rounded to the model dtype; the weight is
  first rounded to the model dtype (the checkpoint TensorRT-LLM quantizes is half precision).
- KV cache: per tensor with the unrounded scale; INT8 rounds half to even, saturates to [-128, 127], NaN -> 0.
Arithmetic runs in float32 on the weight's device (float64 only where float32 could double-round: the +0.5 of
round-half-away), whatever the model dtype, and results are cast back to the input's dtype.
"""
from __future__ import annotations

import torch

E4M3_MAX = 448.0
_MIN_AMAX = 2.0 ** -24
_INT_RANGE = {"w8a16": (8, -128, 127), "w4a16": (4, -8, 7)}
MODEL_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def f32(x: float) -> float:
    """x rounded to float32."""
    return torch.tensor(x, dtype=torch.float64).float().item()


def round_to(x: float, dtype: str) -> float:
    """x (a float32 value) rounded to a model dtype, as a cast does."""
    return torch.tensor(x, dtype=torch.float32).to(MODEL_DTYPES[dtype]).float().item()


def scale_from_amax(amax: float, qmax: float) -> float:
    """amax / qmax in float32, an all-zero (or denormal-only) tensor counting as amax 1."""
    return f32((1.0 if amax <= _MIN_AMAX else amax) / qmax)


def e4m3(x: torch.Tensor) -> torch.Tensor:
    """float32 x rounded to E4M3 (nearest even, saturating at +-448), as float32."""
    return x.clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn).float()


def fake_fp8(x: torch.Tensor, scale: float) -> torch.Tensor:
    """E4M3(x / scale) * scale, computed in float32, in x's dtype."""
    s = torch.tensor(scale, dtype=torch.float32, device=x.device)
    return (e4m3(x.float() / s) * s).to(x.dtype)


def fake_int8_kv(x: torch.Tensor, scale: float) -> torch.Tensor:
    """clamp(round_half_even(x / scale), -128, 127) * scale; NaN -> 0 (the attention kernels' cvt.rni.sat.s8)."""
    s = torch.tensor(scale, dtype=torch.float32, device=x.device)
    q = torch.round(x.float() / s).clamp(-128, 127).nan_to_num(0.0)
    return (q * s).to(x.dtype)


def fake_weight_fp8(w: torch.Tensor, scale: float, dtype: str) -> torch.Tensor:
    """Kiln's FP8 weight codes E4M3(w / scale), dequantized with the scale rounded to the model dtype."""
    s = torch.tensor(scale, dtype=torch.float32, device=w.device)
    engine = torch.tensor(round_to(scale, dtype), dtype=torch.float32, device=w.device)
    return (e4m3(w.float() / s) * engine).to(w.dtype)


def fake_weight_int(w: torch.Tensor, scheme: str, dtype: str) -> torch.Tensor:
    """W8A16 / W4A16 per output channel (rows of [out, in]), quantize then dequantize."""
    bits, qmin, qmax = _INT_RANGE[scheme]
    x = w.to(MODEL_DTYPES[dtype]).float()
    scale = x.abs().amax(dim=1, keepdim=True) / (2 ** (bits - 1))  # exact: a power of two
    ratio = (x / scale).double()  # float32 division, as TensorRT-LLM's quantizer divides
    q = (ratio.sign() * (ratio.abs() + 0.5).floor()).clamp(qmin, qmax)
    q = torch.where(scale == 0, torch.zeros_like(q), q)
    engine = scale.to(MODEL_DTYPES[dtype]).float()
    return (q.float() * engine).to(w.dtype)


def weight_amax(w: torch.Tensor, name: str) -> float:
    """max |w|; a NaN or +-Inf weight is an error naming the tensor."""
    amax = w.abs().amax().float().item()
    if amax != amax or amax == float("inf"):
        raise ValueError(f"tensor {name!r}: non-finite weight")
    return amax
