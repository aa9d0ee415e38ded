"""Eager `tensorrt_llm._torch.modules.mlp.MLP` (@ 01664808b171c6b39e13ab432377db3738a7ab08; LoRA as in the 1.2-era
forward_lora): up_proj (COLUMN) with up_lora = LoraLayer([lora_up_module_type = MLP_H_TO_4H], [intermediate / tp]),
activation, down_proj (ROW, all-reduced) with down_lora = LoraLayer([MLP_4H_TO_H], [hidden]). With lora_params
(not None): up = up_proj(x) + up_lora(x) (when it returns a tensor), then down_proj(act(up), lora_params, layer_idx)."""
from torch import nn

from ..peft.lora.layer import LoraLayer, LoraModuleType
from .linear import Linear, TensorParallelMode


class MLP(nn.Module):
    def __init__(self, *, hidden_size, intermediate_size, bias, activation=None, dtype=None, config=None,
                 layer_idx=None, lora_up_module_type=LoraModuleType.MLP_H_TO_4H,
                 lora_down_module_type=LoraModuleType.MLP_4H_TO_H, **_unused):
        super().__init__()
        self.activation, self.layer_idx = activation, layer_idx
        mapping = config.mapping
        self.up_lora = LoraLayer([lora_up_module_type], [intermediate_size // mapping.tp_size])
        self.up_proj = Linear(hidden_size, intermediate_size, bias=bias, dtype=dtype, mapping=mapping,
                              tensor_parallel_mode=TensorParallelMode.COLUMN, lora=self.up_lora)
        self.down_lora = LoraLayer([lora_down_module_type], [hidden_size])
        self.down_proj = Linear(intermediate_size, hidden_size, bias=bias, dtype=dtype, mapping=mapping,
                                tensor_parallel_mode=TensorParallelMode.ROW, lora=self.down_lora)

    def forward(self, x, lora_params=None, **_unused):
        if lora_params is not None:
            return self.forward_lora(x, lora_params)
        return self.down_proj(self.activation(self.up_proj(x)))

    def forward_lora(self, x, lora_params):
        if self.layer_idx is None:
            raise ValueError("layer_idx is required for lora")
        x_up = self.up_proj(x)
        x_up_lora = self.up_lora(x, lora_params, self.layer_idx)
        if x_up_lora is not None:
            x_up = x_up + x_up_lora
        return self.down_proj(self.activation(x_up), lora_params=lora_params, layer_idx=self.layer_idx)
