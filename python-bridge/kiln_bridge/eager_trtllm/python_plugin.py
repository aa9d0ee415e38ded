"""Eager `tensorrt_llm.python_plugin` (tensorrt_llm/python_plugin.py, the 1.2 line's module; see
codegen/apicheck/README.md, "The tensorrt_llm.python_plugin manifest").

`@trtllm_plugin(name)` registers a PluginBase subclass; calling an instance with functional Tensors asks
`shape_dtype_inference` for the outputs' SymTensors, allocates them, and runs `forward(inputs, outputs)` with torch
tensors, as the TensorRT plugin's enqueue does. It returns the single output, or a tuple of several.
"""
from __future__ import annotations

import torch

from .functional import Tensor

PLUGINS: dict[str, type] = {}


class SymTensor:
    def __init__(self, dtype, shape):
        self.dtype, self.shape = dtype, shape


def trtllm_plugin(name: str, **_unused):
    def register(cls):
        PLUGINS[name] = cls
        cls._plugin_name = name
        return cls
    return register


class PluginBase:
    def __init__(self):
        pass

    def __call__(self, *inputs):
        torch_inputs = [x.t.contiguous() for x in inputs]
        syms = self.shape_dtype_inference([SymTensor(t.dtype, tuple(t.shape)) for t in torch_inputs])
        syms = syms if isinstance(syms, (tuple, list)) else (syms,)
        outputs = [torch.empty(tuple(s.shape), dtype=s.dtype, device=torch_inputs[0].device) for s in syms]
        self.forward(torch_inputs, outputs)
        wrapped = tuple(Tensor(o) for o in outputs)
        return wrapped[0] if len(wrapped) == 1 else wrapped
