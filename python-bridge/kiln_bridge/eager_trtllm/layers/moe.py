"""Eager MoeConfig / MixtureOfExperts (MOE) / SharedMoE (tensorrt_llm/layers/moe.py @ c388fec7fe09ebd2bd7096804c1cda5b5fc426f5).

- MoeConfig: the dataclass (num_experts, shared_expert_intermediate_size, top_k, normalization_mode, ...), `validate`
  (both or neither of num_experts / top_k), `has_moe` (num_experts > 1), from_dict / to_dict.
- MixtureOfExperts(moe_config, hidden_size, ffn_hidden_size, hidden_act, mapping, bias, dtype, tp_group, tp_size, ...):
  router = RowLinear(hidden, E, bias=False, dtype float32, no tp); fc.weight [E/moe_ep, fc_out/moe_tp... ] where
  fc_out = 2 * ffn/moe_tp for a gated activation (is_gated_activation), holding [linear half ; activated half];
  proj.weight [E/moe_ep, hidden, ffn/moe_tp]. forward: routing on the hidden state cast to float32
  (RENORMALIZE: softmax over the top-k logits; NONE: top-k of the softmax), each local expert (global index
  moe_ep_rank * E/moe_ep + i) applied to the tokens that chose it and scaled by its weight, the sum all-reduced over
  the tp group when use_all_reduce (what the MixtureOfExperts plugin plus forward_allreduce compute).
- SharedMoE: MOE without its all-reduce, plus shared_expert = MLP(hidden, moe_config.shared_expert_intermediate_size,
  hidden_act, bias=False, tp, is_expert=True) and, with use_shared_gate, shared_expert_gate = RowLinear(hidden, 1,
  bias=False, dtype, no tp); out = routed + sigmoid(gate(x)) * shared(x), then one all-reduce over the tp group.
Quantized experts, biases, static routing, SPARSE_MIXER / DEVICE_LIMITED routing and LoRA raise NotImplementedError.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum

import torch

from .. import _rank
from ..functional import ACT2FN, Tensor
from ..mapping import Mapping
from ..module import Module
from ..parameter import Parameter
from .linear import RowLinear
from .mlp import MLP

GATED_ACTIVATIONS = ("swiglu", "geglu")  # functional.is_gated_activation


def is_gated_activation(act: str) -> bool:
    return act in GATED_ACTIVATIONS


@dataclass
class MoeConfig:
    class ExpertScaleNormalizationMode(IntEnum):
        NONE = 0
        RENORMALIZE = 1
        SPARSE_MIXER = 2
        DEVICE_LIMITED = 3
        DEVICE_LIMITED_RENORM = 4

    num_experts: int = 0
    shared_expert_intermediate_size: int = 0
    top_k: int = 0
    normalization_mode: ExpertScaleNormalizationMode = ExpertScaleNormalizationMode.RENORMALIZE
    sparse_mixer_epsilon: float = 0.01
    tp_mode: int = 0
    device_limited_n_group: int = 0
    device_limited_topk_group: int = 0
    device_limited_routed_scaling_factor: float = 1.0

    def validate(self) -> MoeConfig:
        if (self.num_experts == 0) != (self.top_k == 0):
            raise ValueError("Both or neither MoeConfig's num_experts and top_k must be set to 0")
        return self

    def has_moe(self) -> bool:
        return self.num_experts > 1

    @classmethod
    def from_dict(cls, config: dict) -> MoeConfig:
        return cls(**config)

    def to_dict(self) -> dict:
        return asdict(self)


class MOEWeightWrapper(Module):
    """Holds one stacked expert weight [experts_per_node, out, in] under the name `weight` (as upstream's wrapper)."""

    def __init__(self, in_features: int, out_features: int, experts_per_node: int, dtype, has_bias: bool):
        super().__init__()
        if has_bias:
            raise NotImplementedError("eager tensorrt_llm: MoE expert biases are not modelled")
        self.weight = Parameter(shape=(experts_per_node, out_features, in_features), dtype=dtype)


class MixtureOfExperts(Module):
    def __init__(self, moe_config: MoeConfig, hidden_size, ffn_hidden_size, hidden_act, mapping=None, bias=True,
                 dtype=None, tp_group=None, tp_size=1, quant_mode=None, use_all_reduce=True, pre_quant_scale=False,
                 zero=False, use_w4a8_awq=False, use_int8_weight=False, group_size=-1, static_routing=False):
        super().__init__()
        mapping = mapping if mapping is not None else Mapping()
        if quant_mode is not None and int(quant_mode):
            raise NotImplementedError("eager tensorrt_llm: quantized MoE experts are not modelled")
        if static_routing:
            raise NotImplementedError("eager tensorrt_llm: MOE(static_routing=True) is not modelled")
        mode = moe_config.normalization_mode
        if mode not in (MoeConfig.ExpertScaleNormalizationMode.NONE, MoeConfig.ExpertScaleNormalizationMode.RENORMALIZE):
            raise NotImplementedError(f"eager tensorrt_llm: MoE normalization_mode={mode!r} is not modelled")
        if hidden_act not in ACT2FN:
            raise NotImplementedError(f"eager tensorrt_llm: MoE hidden_act {hidden_act!r} is not modelled")
        self.moe_config, self.num_experts, self.top_k = moe_config, moe_config.num_experts, moe_config.top_k
        self.hidden_act, self.hidden_size, self.dtype = hidden_act, hidden_size, dtype
        self.mapping, self.tp_group, self.tp_size, self.use_all_reduce = mapping, tp_group, tp_size, use_all_reduce
        self.experts_per_node = self.num_experts
        if mapping.has_moe_ep():
            if self.num_experts % mapping.moe_ep_size:
                raise ValueError(f"MixtureOfExperts - Number of experts {self.num_experts} is not a multiple of EP "
                                 f"size {mapping.moe_ep_size}")
            self.experts_per_node //= mapping.moe_ep_size
        self.expert_inter_size = ffn_hidden_size
        if mapping.has_moe_tp():
            if ffn_hidden_size % mapping.moe_tp_size:
                raise ValueError(f"MixtureOfExperts - FFN Hidden Size {ffn_hidden_size} is not a multiple of TP size "
                                 f"{mapping.moe_tp_size}")
            self.expert_inter_size = ffn_hidden_size // mapping.moe_tp_size
        self.router = RowLinear(hidden_size, self.num_experts, bias=False, dtype="float32", tp_group=None, tp_size=1,
                                strict_dtype=True)
        fc_out = self.expert_inter_size * (2 if is_gated_activation(hidden_act) else 1)
        self.fc = MOEWeightWrapper(hidden_size, fc_out, self.experts_per_node, dtype, bias)
        self.proj = MOEWeightWrapper(self.expert_inter_size, hidden_size, self.experts_per_node, dtype, bias)

    def _route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(expert ids [N, k], scales [N, k]) from the float32 router."""
        logits = self.router(Tensor(x.float())).t.float()
        if self.moe_config.normalization_mode == MoeConfig.ExpertScaleNormalizationMode.RENORMALIZE:
            top, ids = logits.topk(self.top_k, dim=-1)
            return ids, torch.softmax(top, dim=-1)
        scales, ids = torch.softmax(logits, dim=-1).topk(self.top_k, dim=-1)
        return ids, scales

    def _experts(self, x: torch.Tensor) -> torch.Tensor:
        ids, scales = self._route(x)
        fc, proj = self.fc.weight.value.t, self.proj.weight.value.t
        first = self.mapping.moe_ep_rank * self.experts_per_node if self.mapping.has_moe_ep() else 0
        act = ACT2FN[self.hidden_act]
        out = torch.zeros_like(x)
        for i in range(self.experts_per_node):
            weight = (scales * (ids == first + i)).sum(dim=-1)
            rows = weight != 0
            if not bool(rows.any()):
                continue
            h = act(Tensor(x[rows] @ fc[i].t())).t
            out[rows] += ((h @ proj[i].t()) * weight[rows, None].to(x.dtype)).to(x.dtype)
        return out

    def forward(self, hidden_states, lora_layer_params=None, all_reduce_params=None, last_local_layer_residual=None,
                side_stream_id=None, static_routing_input=None):
        if lora_layer_params is not None or last_local_layer_residual is not None:
            raise NotImplementedError("eager tensorrt_llm: MoE LoRA / pp reduce-scatter are not modelled")
        x = hidden_states.t
        out = self._experts(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        if self.use_all_reduce and self.tp_size > 1 and self.tp_group is not None:
            out = _rank.comm().all_reduce(out)
        return Tensor(out)


MOE = MixtureOfExperts


class SharedMoE(MOE):
    def __init__(self, moe_config: MoeConfig, hidden_size, ffn_hidden_size, hidden_act, mapping=None, bias=True,
                 dtype=None, tp_group=None, tp_size=1, quant_mode=None, use_shared_gate=False, use_side_stream=False):
        super().__init__(moe_config=moe_config, hidden_size=hidden_size, ffn_hidden_size=ffn_hidden_size,
                         hidden_act=hidden_act, mapping=mapping, bias=bias, dtype=dtype, tp_group=tp_group,
                         tp_size=tp_size, quant_mode=quant_mode, use_all_reduce=False)
        self.shared_expert = MLP(hidden_size=hidden_size, ffn_hidden_size=moe_config.shared_expert_intermediate_size,
                                 hidden_act=hidden_act, bias=False, dtype=dtype, tp_group=tp_group, tp_size=tp_size,
                                 quant_mode=quant_mode, is_expert=True)
        self.use_shared_gate = use_shared_gate
        self.shared_expert_gate = (RowLinear(hidden_size, 1, bias=False, dtype=dtype, tp_group=None, tp_size=1)
                                   if use_shared_gate else None)

    def forward(self, hidden_states, lora_layer_params=None, **_unused):
        routed = super().forward(hidden_states, lora_layer_params=lora_layer_params).t
        shared = self.shared_expert(hidden_states).t
        if self.shared_expert_gate is not None:
            shared = torch.sigmoid(self.shared_expert_gate(hidden_states).t) * shared
        out = routed + shared.to(routed.dtype)
        if self.tp_size > 1 and self.tp_group is not None:
            out = _rank.comm().all_reduce(out)
        return Tensor(out)
