"""Eager LayerNorm / RmsNorm (tensorrt_llm/layers/normalization.py @ 8134b8364431bfb2e2120feb71204fd7780209e9):
parameters `weight` (and LayerNorm's `bias`) of `normalized_shape`, present when elementwise_affine (LayerNorm:
and bias) is set; forward calls functional.layer_norm / functional.rms_norm with the layer's eps."""
from __future__ import annotations

from .. import functional as F
from ..module import Module
from ..parameter import Parameter


def _shape(normalized_shape):
    return (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-05, elementwise_affine=True, bias=True, dtype=None, tp_size=1,
                 tp_dim=-1):
        super().__init__()
        self.normalized_shape, self.eps = _shape(normalized_shape), eps
        self.weight = Parameter(shape=self.normalized_shape, dtype=dtype) if elementwise_affine else None
        self.bias = Parameter(shape=self.normalized_shape, dtype=dtype) if elementwise_affine and bias else None

    def forward(self, x, normalized_shape=None):
        w = None if self.weight is None else self.weight.value
        b = None if self.bias is None else self.bias.value
        return F.layer_norm(x, self.normalized_shape, w, b, self.eps)


class RmsNorm(Module):
    def __init__(self, normalized_shape, num_groups=1, eps=1e-06, elementwise_affine=True, dtype=None):
        super().__init__()
        self.normalized_shape, self.num_groups, self.eps = _shape(normalized_shape), num_groups, eps
        self.weight = Parameter(shape=self.normalized_shape, dtype=dtype) if elementwise_affine else None

    def forward(self, x, normalized_shape=None):
        w = None if self.weight is None else self.weight.value
        return F.rms_norm(x, self.normalized_shape, self.num_groups, w, self.eps)
