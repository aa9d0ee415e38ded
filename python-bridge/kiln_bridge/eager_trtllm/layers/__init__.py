"""Eager `tensorrt_llm.layers`: the layer classes Kiln's model.py builds from (see each module for its source)."""
from ..functional import AttentionMaskType, PositionEmbeddingType, RotaryScalingType
from .attention import Attention, AttentionParams, KeyValueCacheParams
from .embedding import Embedding
from .linear import ColumnLinear, Linear, RowLinear
from .mlp import MLP, GatedMLP
from .moe import MOE, MixtureOfExperts, MoeConfig, SharedMoE
from .normalization import LayerNorm, RmsNorm

__all__ = ["Attention", "AttentionMaskType", "AttentionParams", "ColumnLinear", "Embedding", "GatedMLP",
           "KeyValueCacheParams", "LayerNorm", "Linear", "MLP", "MOE", "MixtureOfExperts", "MoeConfig",
           "PositionEmbeddingType", "RmsNorm", "RotaryScalingType", "RowLinear", "SharedMoE"]
