"""Eager `tensorrt_llm._torch.modules.linear` (1.2 line; the torch manifest does not pin its commit, semantics per
../shared/docs/trtllm-pytorch-facts.md "Linear"):

- TensorParallelMode.COLUMN: weight [out/tp, in], bias [out/tp]; gather_output all-gathers the last dim.
- TensorParallelMode.ROW: weight [out, in/tp], bias [out]; only tp rank 0 adds the bias, then the output is
  all-reduced (unless reduce_output=False).
- lora (a LoraLayer) is applied inside `apply_linear`: its output on the layer's own input is added to the
  GEMM result before the ROW all-reduce (linear.py forward / apply_linear, the 1.2-era version of 90,930 characters),
  when lora_params is non-empty.
- load_weights(list of dicts): each source is sliced for this rank by `load_weight_shard` (COLUMN: dim 0; ROW:
  dim 1 of a weight, a ROW bias is whole), then the pieces are concatenated along dim 0: 3 sources (q, k, v) for
  WeightMode.FUSED_QKV_LINEAR, 2 (gate, up) for FUSED_GATE_UP_LINEAR, 1 for VANILLA. A piece of the wrong shape is
  an error (upstream's copy_ raises).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import torch
from torch import nn

from ... import _rank
from ...mapping import Mapping


class TensorParallelMode(str, enum.Enum):
    COLUMN = "column"
    ROW = "row"

    @classmethod
    def split_dim(cls, mode) -> int:
        return 1 if mode == cls.ROW else 0

    @classmethod
    def flip(cls, mode):
        return cls.ROW if mode == cls.COLUMN else cls.COLUMN


class WeightMode(str, enum.Enum):
    VANILLA = "vanilla"
    FUSED_QKV_LINEAR = "fused_qkv_linear"
    FUSED_GATE_UP_LINEAR = "fused_gate_up_linear"


@dataclass(kw_only=True)
class WeightsLoadingConfig:
    weight_mode: WeightMode = WeightMode.VANILLA
    ignore_tensor_parallel: bool = False


def load_weight_shard(weight: torch.Tensor, tensor_parallel_size: int = 1, tensor_parallel_rank: int = 0,
                      tensor_parallel_mode: TensorParallelMode | None = None) -> torch.Tensor:
    if tensor_parallel_mode is None or tensor_parallel_size == 1:
        return weight
    dim = TensorParallelMode.split_dim(tensor_parallel_mode)
    if weight.dim() <= dim:  # a ROW-parallel bias is not split
        return weight
    width = weight.shape[dim]
    slice_width = math.ceil(width / tensor_parallel_size)
    start = tensor_parallel_rank * slice_width
    return weight.narrow(dim, start, min(start + slice_width, width) - start)


class Linear(nn.Module):
    def __init__(self, in_features, out_features, bias=True, dtype=None, mapping: Mapping | None = None,
                 tensor_parallel_mode: TensorParallelMode | None = None, gather_output: bool = False,
                 quant_config=None, weights_loading_config: WeightsLoadingConfig | None = None,
                 reduce_output: bool = True, skip_create_weights_in_init: bool = False, lora=None, **_unused):
        super().__init__()
        self.lora = lora
        if quant_config is not None:
            raise NotImplementedError("eager tensorrt_llm: quantized _torch Linear is not modelled")
        mapping = mapping or Mapping()
        self.tp_size, self.tp_rank, self.tp_mode = mapping.tp_size, mapping.tp_rank, tensor_parallel_mode
        self.gather_output, self.reduce_output = gather_output, reduce_output
        self.weights_loading_config = weights_loading_config or WeightsLoadingConfig()
        local_in, local_out = in_features, out_features
        if tensor_parallel_mode == TensorParallelMode.ROW:
            local_in = in_features // self.tp_size
        elif tensor_parallel_mode == TensorParallelMode.COLUMN:
            local_out = out_features // self.tp_size
        self.in_features, self.out_features = local_in, local_out
        dev = _rank.device()
        self.weight = nn.Parameter(torch.empty(local_out, local_in, dtype=dtype, device=dev), requires_grad=False)
        self.bias = nn.Parameter(torch.empty(local_out, dtype=dtype, device=dev), requires_grad=False) if bias else None

    def apply_linear(self, input: torch.Tensor, bias, lora_params=None, layer_idx=None) -> torch.Tensor:
        output = nn.functional.linear(input, self.weight, bias)
        if self.lora is not None and lora_params:
            lora_result = self.lora(input, lora_params, layer_idx)
            if lora_result is not None:
                output = output + lora_result
        return output

    def forward(self, input: torch.Tensor, *, all_reduce_params=None, lora_params=None, layer_idx=None) -> torch.Tensor:
        if self.tp_mode == TensorParallelMode.ROW:
            bias = self.bias if self.tp_rank == 0 else None
            out = self.apply_linear(input, bias, lora_params, layer_idx)
            if self.tp_size > 1 and self.reduce_output:
                out = _rank.comm().all_reduce(out)
            return out
        out = self.apply_linear(input, self.bias, lora_params, layer_idx)
        if self.tp_mode == TensorParallelMode.COLUMN and self.gather_output and self.tp_size > 1:
            out = _rank.comm().all_gather(out)
        return out

    def load_weights(self, weights: list[dict], allow_partial_loading: bool = False) -> None:
        expected = {WeightMode.VANILLA: 1, WeightMode.FUSED_QKV_LINEAR: 3, WeightMode.FUSED_GATE_UP_LINEAR: 2}
        mode = self.weights_loading_config.weight_mode
        if len(weights) != expected[mode]:
            raise ValueError(f"Linear({mode.value}) takes {expected[mode]} weight sources, got {len(weights)}")
        for name in ("weight", "bias"):
            param = getattr(self, name)
            if param is None:
                if any("bias" in w for w in weights) and name == "bias":
                    raise ValueError("checkpoint has a bias for a Linear built with bias=False")
                continue
            pieces = []
            for w in weights:
                if name not in w:
                    raise KeyError(f"missing '{name}'")
                pieces.append(load_weight_shard(w[name], self.tp_size, self.tp_rank, self.tp_mode))
            value = torch.cat(pieces, dim=0) if len(pieces) > 1 else pieces[0]
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(f"'{name}' of shape {list(value.shape)} does not fit the parameter "
                                 f"{list(param.shape)}")
            param.data.copy_(value.to(param.dtype))
