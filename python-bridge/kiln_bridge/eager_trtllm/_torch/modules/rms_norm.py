"""Eager `tensorrt_llm._torch.modules.rms_norm.RMSNorm` (@ b35ac1b64368513d215c57d2ed01d62d910df8da): normalise in
float32, cast to the input dtype, multiply by the weight; norm(x, residual) returns (norm(x + residual), x +
residual)."""
import torch
from torch import nn

from ... import _rank


class RMSNorm(nn.Module):
    def __init__(self, *, hidden_size, eps, dtype=None, device=None, has_weights=True, use_gemma=False):
        super().__init__()
        if use_gemma:
            raise NotImplementedError("eager tensorrt_llm: RMSNorm(use_gemma=True) is not modelled")
        self.variance_epsilon = eps
        self.weight = (nn.Parameter(torch.ones(hidden_size, dtype=dtype, device=_rank.device()), requires_grad=False)
                       if has_weights else None)

    def skip_forward(self, hidden_states, residual=None):
        return hidden_states if residual is None else (hidden_states, residual)

    def forward(self, hidden_states, residual=None):
        if residual is not None:
            hidden_states = hidden_states + residual
            residual = hidden_states
        dtype = hidden_states.dtype
        x = hidden_states.float()
        y = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)).to(dtype)
        if self.weight is not None:
            y = self.weight * y
        return y if residual is None else (y, residual)
