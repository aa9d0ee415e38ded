"""Kiln's Python bridge to TensorRT-LLM 1.2.1: checkpoint verification in PyTorch and engine builds.

Public API: `verify_checkpoint` (run a TensorRT-LLM checkpoint with an independent executor and compare with golden
logits), `plan_build` / `build_engines` (per-rank engine builds with tensorrt_llm), and the dependency-free
safetensors reader/writer. Importing this package never imports tensorrt_llm.
"""
from .build import build_engines, plan_build
from .errors import BridgeError, CheckpointError, SafetensorsError, TrtLlmMissing, UnsupportedConfig
from .safetensors_io import load_file, read_header, save_file
from .verify import verify_checkpoint

__all__ = [
    "BridgeError", "CheckpointError", "SafetensorsError", "TrtLlmMissing", "UnsupportedConfig",
    "build_engines", "load_file", "plan_build", "read_header", "save_file", "verify_checkpoint",
]
