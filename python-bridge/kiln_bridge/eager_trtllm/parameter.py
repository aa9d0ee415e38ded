"""Eager `tensorrt_llm.Parameter` (tensorrt_llm/parameter.py, 1.2 line; see codegen/apicheck/README.md).

A Parameter has a fixed shape and dtype; its value is unset until a checkpoint provides it, except buffers created
with a value (RoPE tables). Setting a value of another shape raises, as TensorRT-LLM's `Parameter.value` setter
does; the value is cast to the parameter's dtype. `.value` reads it as a functional Tensor.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from . import _rank
from .functional import Tensor, str_dtype_to_torch


class Parameter:
    def __init__(self, value=None, shape: Sequence[int] | None = None, dtype=None, is_buffer: bool = False,
                 prefer_managed: bool = False):
        self.dtype = str_dtype_to_torch(dtype if dtype is not None else "float32")
        self.is_buffer = is_buffer
        self._value: torch.Tensor | None = None
        if value is not None:
            v = torch.as_tensor(value)
            self.shape = tuple(v.shape)
            self._value = v.to(self.dtype)
        else:
            if shape is None:
                raise ValueError("Parameter needs a value or a shape")
            self.shape = tuple(int(d) for d in shape)

    @property
    def is_initialized(self) -> bool:
        return self._value is not None

    @property
    def value(self) -> Tensor:
        if self._value is None:
            raise RuntimeError(f"eager tensorrt_llm: Parameter of shape {list(self.shape)} read before it was loaded")
        return Tensor(self._value)

    @value.setter
    def value(self, v) -> None:
        v = v.t if isinstance(v, Tensor) else torch.as_tensor(v)
        if tuple(v.shape) != self.shape:
            raise ValueError(f"The value updated is not the same shape as the original. Updated: {list(v.shape)}, "
                             f"original: {list(self.shape)}")
        self._value = v.to(device=_rank.device(), dtype=self.dtype)

    def set_value_or_dummy(self, v) -> None:
        self.value = v
