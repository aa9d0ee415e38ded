"""Eager PyTorch implementation of the TensorRT-LLM 1.2.1 API surface that Kiln emits, to EXECUTE model.py and the
trtllm-torch package (kiln_bridge.verify). It is importable as `tensorrt_llm` only inside the verifier's process,
through `alias.as_tensorrt_llm()`; it is never installed under that name.

Semantics come from TensorRT-LLM's sources (each module names the `path @ commit` it follows), never from Kiln's
lowering: this package exists to catch Kiln's mistakes. Anything outside what Kiln emits raises
NotImplementedError naming the feature, rather than computing something plausible.
"""
from . import functional, layers, models, module, quantization  # noqa: F401
from .functional import Tensor
from .mapping import Mapping
from .module import Module
from .parameter import Parameter

__version__ = "1.2.1+kiln-eager"

__all__ = ["Mapping", "Module", "Parameter", "Tensor", "functional", "layers", "models", "module", "quantization"]
