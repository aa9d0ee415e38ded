"""Eager `tensorrt_llm._torch.modules.decoder_layer.DecoderLayer` (@ c85e8726ad9c0f4f4c182d8959f522c2e1fa50b7): an
nn.Module base whose subclasses define forward(position_ids, hidden_states, attn_metadata, residual, **kwargs)."""
from torch import nn


class DecoderLayer(nn.Module):
    pass
