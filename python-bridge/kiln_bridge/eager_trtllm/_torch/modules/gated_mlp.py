"""Eager `tensorrt_llm._torch.modules.gated_mlp.GatedMLP` (@ 01503f5535c0379da60bfd282d225626813781ab; facts doc
"GatedMLP"): gate_up_proj = Linear(COLUMN, FUSED_GATE_UP_LINEAR) holding [gate_r; up_r] (2 * intermediate / tp
rows), then the fused SwiGLU silu(gate) * up, then down_proj (ROW). Only SiLU is fused upstream; another activation
is applied the same way (act(gate) * up).

LoRA: down_proj carries down_lora = LoraLayer([MLP_4H_TO_H], [hidden]); splitted_gate_up_lora = LoraLayer(
[MLP_H_TO_4H, MLP_GATE], [intermediate / tp] * 2) and fused_gate_up_lora = LoraLayer([MLP_GATE_UP], [2 * intermediate
/ tp]) add to gate_up_proj's output (so mlp_h_to_4h adapts the gate half, mlp_gate the up half); with a non-empty
lora_params, forward_lora runs them and passes lora_params and layer_idx to down_proj."""
import torch
from torch import nn

from ..peft.lora.layer import LoraLayer, LoraModuleType
from .linear import Linear, TensorParallelMode, WeightMode, WeightsLoadingConfig


class GatedMLP(nn.Module):
    def __init__(self, *, hidden_size, intermediate_size, bias, activation=torch.nn.functional.silu, dtype=None,
                 config=None, overridden_tp_size=None, reduce_output=True, layer_idx=None, **_unused):
        super().__init__()
        if overridden_tp_size is not None:
            raise NotImplementedError("eager tensorrt_llm: GatedMLP(overridden_tp_size) is not modelled")
        self.activation, self.layer_idx = activation, layer_idx
        mapping = config.mapping
        self.gate_up_proj = Linear(hidden_size, 2 * intermediate_size, bias=bias, dtype=dtype, mapping=mapping,
                                   tensor_parallel_mode=TensorParallelMode.COLUMN,
                                   weights_loading_config=WeightsLoadingConfig(weight_mode=WeightMode.FUSED_GATE_UP_LINEAR))
        self.down_lora = LoraLayer([LoraModuleType.MLP_4H_TO_H], [hidden_size])
        self.down_proj = Linear(intermediate_size, hidden_size, bias=bias, dtype=dtype, mapping=mapping,
                                tensor_parallel_mode=TensorParallelMode.ROW, reduce_output=reduce_output,
                                lora=self.down_lora)
        local = intermediate_size // mapping.tp_size
        self.splitted_gate_up_lora = LoraLayer([LoraModuleType.MLP_H_TO_4H, LoraModuleType.MLP_GATE], [local, local])
        self.fused_gate_up_lora = LoraLayer([LoraModuleType.MLP_GATE_UP], [2 * local])

    def forward(self, x, all_rank_num_tokens=None, final_all_reduce_params=None, lora_params=None, **_unused):
        if lora_params:
            return self.forward_lora(x, lora_params)
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(self.activation(gate) * up)

    def forward_lora(self, x, lora_params):
        if self.layer_idx is None:
            raise ValueError("layer_idx is required for lora")
        h1 = self.gate_up_proj(x)
        for lora in (self.splitted_gate_up_lora, self.fused_gate_up_lora):
            h1_lora = lora(x, lora_params, self.layer_idx)
            if h1_lora is not None:
                h1 = h1 + h1_lora
        gate, up = h1.chunk(2, dim=-1)
        return self.down_proj(self.activation(gate) * up, lora_params=lora_params, layer_idx=self.layer_idx)
