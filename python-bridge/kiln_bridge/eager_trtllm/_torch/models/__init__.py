"""Eager `tensorrt_llm._torch.models`: the auto-model registry (register_auto_model)."""
from .modeling_utils import MODEL_CLASS_MAPPING, get_model_architecture  # noqa: F401
