"""Elementwise numerics with TensorRT-LLM's semantics, emulating a reduced compute dtype.

Every tensor between ops is a float32 tensor whose values are representable in the compute dtype: each op computes
in float32 and `Numerics.round` rounds its output to the compute dtype. This models what the TensorRT engine does
for fp16/bf16 (GEMMs and attention accumulate in fp32, activations are stored in fp16/bf16; softmax, RmsNorm's
mean-square, LayerNorm statistics and RoPE run in fp32) and needs no fp16 kernels, so it runs on CPU with torch 1.13.
With float32 rounding is the identity.

Activation table = TensorRT-LLM's `ACT2FN` (tensorrt_llm/functional.py @ 2a9abd95, the manifest's version):
'gelu', 'gelu_new', 'gelu_fast', 'gelu_pytorch_tanh' and 'openai-gelu' ALL map to the tanh approximation
0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3))); there is no erf GELU. swiglu: `x, gate = chunk(2)` -> silu(gate)*x;
geglu: `a, b = chunk(2)` -> a*gelu(b); gegelu: a = x[..., ::2], b = x[..., 1::2] -> quick_gelu(a)*(b+1).
'softplus' is listed but needs beta/threshold arguments that ACT2FN callers never pass, so it is refused.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .errors import UnsupportedConfig

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))) + 1.0)


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


def _swiglu(x: torch.Tensor) -> torch.Tensor:
    a, gate = x.chunk(2, dim=-1)
    return torch.nn.functional.silu(gate) * a


def _geglu(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return a * _gelu_tanh(b)


def _gegelu(x: torch.Tensor) -> torch.Tensor:
    return _quick_gelu(x[..., ::2]) * (x[..., 1::2] + 1.0)


ACT2FN: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "gelu": _gelu_tanh,
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "openai-gelu": _gelu_tanh,
    "geglu": _geglu,
    "gegelu": _gegelu,
    "identity": lambda x: x,
    "silu": torch.nn.functional.silu,
    "relu2": lambda x: torch.relu(x) ** 2,
    "squared-relu": lambda x: torch.relu(x) ** 2,
    "swiglu": _swiglu,
    "fast-swiglu": _swiglu,
    "sigmoid": torch.sigmoid,
    "quick_gelu": _quick_gelu,
}
# GATED_ACT_2_ACT of tensorrt_llm/functional.py: activations that GPT's MLPFactory turns into a GatedMLP.
GATED_ACT_2_ACT = {"swiglu": "silu", "fast-swiglu": "silu", "geglu": "gelu"}


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if name not in ACT2FN:
        raise UnsupportedConfig(f"config.json hidden_act={name!r} is not an activation the verifier models "
                                f"(known: {', '.join(sorted(ACT2FN))})")
    return ACT2FN[name]


class Numerics:
    """Ops at a compute dtype (float32 / float16 / bfloat16), see the module comment."""

    def __init__(self, dtype: str):
        if dtype not in DTYPES:
            raise UnsupportedConfig(f"compute dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        self.name = dtype
        self.dtype = DTYPES[dtype]

    def round(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.dtype is torch.float32 else x.to(self.dtype).to(torch.float32)

    def weight(self, w: torch.Tensor, device: str) -> torch.Tensor:
        """A checkpoint tensor as a float32 tensor holding compute-dtype values."""
        return self.round(w.to(device=device, dtype=torch.float32))

    def linear(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        # x: [T, in], w: [out, in] (torch Linear layout, as TensorRT-LLM checkpoints store it)
        y = x @ w.t()
        return self.round(y if b is None else y + b)

    def add(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.round(a + b)

    def layer_norm(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, eps: float) -> torch.Tensor:
        return self.round(torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps))

    def rms_norm(self, x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
        # TensorRT-LLM rms_norm: normalise in fp32, cast to the input dtype, then multiply by the weight in that dtype.
        y = self.round(x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps))
        return self.round(y * w)

    def act(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.round(activation(name)(x))
