"""Eager ColumnLinear / RowLinear / Linear (tensorrt_llm/layers/linear.py @ 2a9abd9536aa62ad3e4b9314be9286b1b1be523b).

- ColumnLinear(in, out, bias, dtype, tp_group, tp_size, gather_output=True): weight [out/tp, in], bias [out/tp];
  y = x W^T + b, then, when gather_output and a tp group of more than one rank, all-gather along the last dim.
- RowLinear(in, out, bias, dtype, tp_group, tp_size): weight [out, in/tp], bias [out]; y = x W^T, all-reduced over
  the tp group when there is one (tp_size > 1 and tp_group not None), THEN + b (the whole bias, once).
  Without a tp group (GPT-J) each rank adds its bias to its partial sum and the caller reduces. is_expert=True
  (an MoE's shared expert): no all-reduce, each rank adds bias / tp_size (collect_and_bias).
"""
from __future__ import annotations

import torch

from .. import _rank
from ..functional import Tensor
from ..module import Module
from ..parameter import Parameter


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, dtype=None, tp_group=None, tp_size=1,
                 gather_output=True, share_weight=None, strict_dtype=False, pad_lda=0, pad_ldc=0,
                 prefer_managed_weight=True, is_qkv=False, **_unused):
        super().__init__()
        if out_features % tp_size:
            raise ValueError(f"ColumnLinear: out_features={out_features} is not divisible by tp_size={tp_size}")
        self.in_features, self.out_features = in_features, out_features // tp_size
        self.tp_group, self.tp_size, self.gather_output = tp_group, tp_size, gather_output
        self.weight = Parameter(shape=(self.out_features, self.in_features), dtype=dtype)
        self.bias = Parameter(shape=(self.out_features,), dtype=dtype) if bias else None

    def forward(self, x: Tensor, lora_runtime_params=None, **_unused) -> Tensor:
        y = torch.matmul(x.t, self.weight.value.t.t())
        if self.bias is not None:
            y = y + self.bias.value.t
        if self.gather_output and self.tp_size > 1 and self.tp_group is not None:
            y = _rank.comm().all_gather(y)
        return Tensor(y)


ColumnLinear = Linear


class RowLinear(Module):
    def __init__(self, in_features, out_features, bias=True, dtype=None, tp_group=None, tp_size=1,
                 strict_dtype=False, pad_lda=0, prefer_managed_weight=True, is_expert=False, **_unused):
        super().__init__()
        if in_features % tp_size:
            raise ValueError(f"RowLinear: in_features={in_features} is not divisible by tp_size={tp_size}")
        self.in_features, self.out_features = in_features // tp_size, out_features
        self.tp_group, self.tp_size, self.is_expert = tp_group, tp_size, is_expert
        self.weight = Parameter(shape=(self.out_features, self.in_features), dtype=dtype)
        self.bias = Parameter(shape=(self.out_features,), dtype=dtype) if bias else None

    def forward(self, x: Tensor, lora_runtime_params=None, all_reduce_params=None, **_unused) -> Tensor:
        y = torch.matmul(x.t, self.weight.value.t.t())
        parallel = self.tp_size > 1 and self.tp_group is not None
        if parallel and not self.is_expert:
            y = _rank.comm().all_reduce(y)
        if self.bias is not None:
            y = y + (self.bias.value.t / self.tp_size if parallel and self.is_expert else self.bias.value.t)
        return Tensor(y)
