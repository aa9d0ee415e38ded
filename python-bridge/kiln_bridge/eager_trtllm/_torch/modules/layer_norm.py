"""Eager `tensorrt_llm._torch.modules.layer_norm.LayerNorm` (@ 0a871d391952ef6af35c33789b8975a287d9c561): layer norm
over the last dim (statistics in float32, output in the input dtype), optional weight and bias; norm(x, residual)
returns (norm(x + residual), x + residual)."""
import torch
from torch import nn

from ... import _rank


class LayerNorm(nn.Module):
    def __init__(self, *, hidden_size, eps, dtype=None, device=None, has_weights=True, has_bias=True):
        super().__init__()
        dev = _rank.device()
        self.hidden_size, self.variance_epsilon = hidden_size, eps
        self.weight = nn.Parameter(torch.ones(hidden_size, dtype=dtype, device=dev), requires_grad=False) if has_weights else None
        self.bias = nn.Parameter(torch.zeros(hidden_size, dtype=dtype, device=dev), requires_grad=False) if has_bias else None

    def skip_forward(self, hidden_states, residual=None):
        return hidden_states if residual is None else (hidden_states, residual)

    def forward(self, hidden_states, residual=None):
        if residual is not None:
            hidden_states = hidden_states + residual
            residual = hidden_states
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        y = nn.functional.layer_norm(hidden_states.float(), (self.hidden_size,), w, b, self.variance_epsilon)
        y = y.to(hidden_states.dtype)
        return y if residual is None else (y, residual)
