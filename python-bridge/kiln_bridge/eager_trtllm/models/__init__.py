"""Eager `tensorrt_llm.models`: MODEL_MAP starts empty (no built-in TensorRT-LLM classes are modelled here; the
verifier checks those with its own decoder), and model.py registers its class in it."""
from .modeling_utils import DecoderLayerList, DecoderModelForCausalLM, PretrainedConfig, PretrainedModel

MODEL_MAP: dict[str, type] = {}

__all__ = ["MODEL_MAP", "DecoderLayerList", "DecoderModelForCausalLM", "PretrainedConfig", "PretrainedModel"]
