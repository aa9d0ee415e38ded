from .interface import AttentionMetadata, PositionalEmbeddingParams, RopeParams

__all__ = ["AttentionMetadata", "PositionalEmbeddingParams", "RopeParams"]
