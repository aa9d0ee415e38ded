"""Eager `tensorrt_llm._torch.modules.mlp.MLP` (@ 01664808b171c6b39e13ab432377db3738a7ab08): up_proj (COLUMN),
activation, down_proj (ROW, all-reduced)."""
from torch import nn

from .linear import Linear, TensorParallelMode


class MLP(nn.Module):
    def __init__(self, *, hidden_size, intermediate_size, bias, activation=None, dtype=None, config=None,
                 layer_idx=None, **_unused):
        super().__init__()
        self.activation = activation
        mapping = config.mapping
        self.up_proj = Linear(hidden_size, intermediate_size, bias=bias, dtype=dtype, mapping=mapping,
                              tensor_parallel_mode=TensorParallelMode.COLUMN)
        self.down_proj = Linear(intermediate_size, hidden_size, bias=bias, dtype=dtype, mapping=mapping,
                                tensor_parallel_mode=TensorParallelMode.ROW)

    def forward(self, x, lora_params=None, **_unused):
        return self.down_proj(self.activation(self.up_proj(x)))
