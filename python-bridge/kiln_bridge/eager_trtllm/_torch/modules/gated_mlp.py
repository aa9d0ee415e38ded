"""Eager `tensorrt_llm._torch.modules.gated_mlp.GatedMLP` (@ 01503f5535c0379da60bfd282d225626813781ab; facts doc
"GatedMLP"): gate_up_proj = Linear(COLUMN, FUSED_GATE_UP_LINEAR) holding [gate_r; up_r] (2 * intermediate / tp
rows), then the fused SwiGLU silu(gate) * up, then down_proj (ROW). Only SiLU is fused upstream; another activation
is applied the same way (act(gate) * up)."""
import torch
from torch import nn

from .linear import Linear, TensorParallelMode, WeightMode, WeightsLoadingConfig


class GatedMLP(nn.Module):
    def __init__(self, *, hidden_size, intermediate_size, bias, activation=torch.nn.functional.silu, dtype=None,
                 config=None, overridden_tp_size=None, reduce_output=True, layer_idx=None, **_unused):
        super().__init__()
        if overridden_tp_size is not None:
            raise NotImplementedError("eager tensorrt_llm: GatedMLP(overridden_tp_size) is not modelled")
        self.activation = activation
        mapping = config.mapping
        self.gate_up_proj = Linear(hidden_size, 2 * intermediate_size, bias=bias, dtype=dtype, mapping=mapping,
                                   tensor_parallel_mode=TensorParallelMode.COLUMN,
                                   weights_loading_config=WeightsLoadingConfig(weight_mode=WeightMode.FUSED_GATE_UP_LINEAR))
        self.down_proj = Linear(intermediate_size, hidden_size, bias=bias, dtype=dtype, mapping=mapping,
                                tensor_parallel_mode=TensorParallelMode.ROW, reduce_output=reduce_output)

    def forward(self, x, all_rank_num_tokens=None, final_all_reduce_params=None, lora_params=None, **_unused):
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(self.activation(gate) * up)
