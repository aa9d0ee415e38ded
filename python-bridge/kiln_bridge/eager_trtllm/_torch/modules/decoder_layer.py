"""Eager `tensorrt_llm._torch.modules.decoder_layer.DecoderLayer` (@ c85e8726ad9c0f4f4c182d8959f522c2e1fa50b7): an
nn.Module base whose subclasses define forward(position_ids, hidden_states, attn_metadata, residual, **kwargs);
skip_forward serves pipeline parallelism."""
from torch import nn


class DecoderLayer(nn.Module):
    def skip_forward(self, position_ids=None, hidden_states=None, attn_metadata=None, residual=None, **kwargs):
        """A layer of another pipeline stage passes its hidden states (and residual) through."""
        return hidden_states if residual is None else (hidden_states, residual)
