"""Eager `tensorrt_llm._torch.model_config.ModelConfig` (a kw-only generic dataclass in the 1.2 line; fields per
../shared/docs/trtllm-pytorch-facts.md): the pretrained (HF) config, the Mapping of this rank, no quantization."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..mapping import Mapping

TConfig = TypeVar("TConfig")


@dataclass(kw_only=True)
class ModelConfig(Generic[TConfig]):
    pretrained_config: TConfig | None = None
    mapping: Mapping = field(default_factory=Mapping)
    quant_config: object | None = None
    skip_create_weights_in_init: bool = False
    attn_backend: str = "VANILLA"
    max_num_tokens: int = 8192
    max_seq_len: int | None = None

    def get_quant_config(self, name=None):
        return self.quant_config

    @property
    def torch_dtype(self):
        return self.pretrained_config.torch_dtype
