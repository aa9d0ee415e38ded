"""Eager `tensorrt_llm._torch.peft.lora.layer` (@ 982775458efad95e906cc520c14061d310788e1f; later versions keep this
path as `_forward_eager_mode`).

- LoraModuleType: the module ids (ATTENTION_QKV = 0 ... MLP_GATE_UP = 18), the numbers of LoraManager.LORA_MODULE_IDS.
- LoraLayer(lora_module_types, output_hidden_sizes): forward(x, lora_params, layer_idx) returns None when
  lora_params is empty or names none of its modules for this layer; otherwise, for the modules the layer's entry
  holds (in the layer's own order), their per-request `adapter_size` and `weight_pointers` go to
  lora_grouped_gemm with the request types and prompt lengths of the first `num_seqs` requests, the layer's WHOLE
  output-size list (so the i-th active module gets the i-th size, as upstream passes it), transA False, transB True,
  max rank = the largest adapter size, weight index 0; the outputs are concatenated along the last dim in module
  order, with zeros [tokens, size of that module] for a module the entry lacks.
"""
from __future__ import annotations

from enum import IntEnum

import torch
from torch import nn

from .grouped_gemm import lora_grouped_gemm


class LoraModuleType(IntEnum):
    ATTENTION_QKV = 0
    ATTENTION_Q = 1
    ATTENTION_K = 2
    ATTENTION_V = 3
    ATTENTION_DENSE = 4
    MLP_H_TO_4H = 5
    MLP_4H_TO_H = 6
    MLP_GATE = 7
    CROSS_ATTENTION_QKV = 8
    CROSS_ATTENTION_Q = 9
    CROSS_ATTENTION_K = 10
    CROSS_ATTENTION_V = 11
    CROSS_ATTENTION_DENSE = 12
    MOE_H_TO_4H = 13
    MOE_4H_TO_H = 14
    MOE_GATE = 15
    MOE_ROUTER = 16
    MLP_ROUTER = 17
    MLP_GATE_UP = 18

    def __str__(self) -> str:
        return self.name


class LoraLayer(nn.Module):
    def __init__(self, lora_module_types: list, output_hidden_sizes: list):
        super().__init__()
        if len(lora_module_types) != len(output_hidden_sizes):
            raise ValueError("LoraLayer: one output size per module type")
        self.lora_module_types = list(lora_module_types)
        self.output_hidden_sizes = [int(s) for s in output_hidden_sizes]

    def forward(self, x: torch.Tensor, lora_params: dict, layer_idx: int) -> torch.Tensor | None:
        if not lora_params:
            return None
        layer = lora_params.get(layer_idx, {})
        active = [int(m) for m in self.lora_module_types if int(m) in layer]
        if not active:
            return None
        ranks = [layer[m]["adapter_size"] for m in active]
        pointers = [layer[m]["weight_pointers"] for m in active]
        n = lora_params["num_seqs"]
        outputs = lora_grouped_gemm(x, lora_params["host_request_types"][:n], ranks, pointers,
                                    lora_params["prompt_lens_cpu"][:n], self.output_hidden_sizes, False, True,
                                    max(int(r.max()) for r in ranks), 0, True)
        by_module = dict(zip(active, outputs))
        parts = [by_module.get(int(m), torch.zeros(*x.shape[:-1], size, dtype=x.dtype, device=x.device))
                 for m, size in zip(self.lora_module_types, self.output_hidden_sizes)]
        return torch.cat(parts, dim=-1)
