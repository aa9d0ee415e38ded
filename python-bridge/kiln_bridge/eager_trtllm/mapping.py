"""Eager `tensorrt_llm.Mapping` (tensorrt_llm/mapping.py @ b35ac1b64368513d215c57d2ed01d62d910df8da), without
context parallelism or MoE clusters: rank r has tp_rank = r % tp_size and pp_rank = r // tp_size; the tp group of a
rank is the tp_size ranks of its pipeline stage; stage s holds the layers `torch.tensor_split(range(n), pp_size)[s]`
(the earlier stages take the remainder), which is what `pp_layers` returns. MoE: moe_tp_size * moe_ep_size must be
tp_size (a -1 size is derived from the other, both -1: moe_tp = tp, moe_ep = 1); moe_tp_rank = tp_rank // moe_ep_size,
moe_ep_rank = tp_rank % moe_ep_size; ep_experts(E) is moe_ep_rank's contiguous block of E / moe_ep_size experts.
"""
from __future__ import annotations

import torch


class Mapping:
    def __init__(self, world_size: int = 1, rank: int = 0, gpus_per_node: int = 8, *, cp_size: int = 1,
                 tp_size: int = 1, pp_size: int = 1, moe_tp_size: int = -1, moe_ep_size: int = -1,
                 moe_cluster_size: int = -1, attn_tp_size: int = -1, attn_cp_size: int = -1, cp_config=None,
                 enable_attention_dp: bool = False, enable_lm_head_tp_in_adp: bool = False, **_unused):
        if cp_size != 1:
            raise NotImplementedError("eager tensorrt_llm: context parallelism (cp_size > 1) is not modelled")
        if world_size != tp_size * pp_size:
            raise ValueError(f"world_size must equal to tp_size * pp_size * cp_size, but got {world_size} != "
                             f"{tp_size} * {pp_size} * {cp_size}")
        self.world_size, self.rank, self.gpus_per_node = world_size, rank, gpus_per_node
        self.tp_size, self.pp_size, self.cp_size = tp_size, pp_size, cp_size
        if moe_cluster_size not in (-1, 1):
            raise NotImplementedError("eager tensorrt_llm: MoE clusters (moe_cluster_size > 1) are not modelled")
        if moe_tp_size == -1 and moe_ep_size == -1:
            moe_tp_size, moe_ep_size = tp_size, 1
        elif moe_tp_size == -1:
            moe_tp_size = tp_size // moe_ep_size
        elif moe_ep_size == -1:
            moe_ep_size = tp_size // moe_tp_size
        if moe_tp_size * moe_ep_size != tp_size:
            raise ValueError("moe_tp_size * moe_ep_size * moe_cluster_size must equal to moe_world_size, but got "
                             f"{moe_tp_size * moe_ep_size} != {tp_size}")
        self.moe_tp_size, self.moe_ep_size = moe_tp_size, moe_ep_size
        self.enable_attention_dp = enable_attention_dp

    @property
    def tp_rank(self) -> int:
        return self.rank % self.tp_size

    @property
    def moe_tp_rank(self) -> int:
        return self.tp_rank // self.moe_ep_size

    @property
    def moe_ep_rank(self) -> int:
        return self.tp_rank % self.moe_ep_size

    def has_moe_tp(self) -> bool:
        return self.moe_tp_size > 1

    def has_moe_ep(self) -> bool:
        return self.moe_ep_size > 1

    def ep_experts(self, num_experts: int) -> list[int]:
        per_rank = num_experts // self.moe_ep_size
        return list(range(self.moe_ep_rank * per_rank, (self.moe_ep_rank + 1) * per_rank))

    @property
    def pp_rank(self) -> int:
        return self.rank // self.tp_size

    @property
    def tp_group(self) -> list[int]:
        start = self.pp_rank * self.tp_size
        return list(range(start, start + self.tp_size))

    @property
    def pp_group(self) -> list[int]:
        return list(range(self.tp_rank, self.world_size, self.tp_size))

    def is_first_pp_rank(self) -> bool:
        return self.pp_rank == 0

    def is_last_pp_rank(self) -> bool:
        return self.pp_rank == self.pp_size - 1

    def has_pp(self) -> bool:
        return self.pp_size > 1

    def has_tp(self) -> bool:
        return self.tp_size > 1

    def prev_pp_rank(self) -> int:
        return self.rank - self.tp_size

    def next_pp_rank(self) -> int:
        return self.rank + self.tp_size

    def pp_layers(self, num_layers: int) -> list[int]:
        return [int(i) for i in torch.tensor_split(torch.arange(num_layers), self.pp_size)[self.pp_rank].tolist()]

    def to_dict(self) -> dict:
        return {"world_size": self.world_size, "rank": self.rank, "tp_size": self.tp_size, "pp_size": self.pp_size,
                "cp_size": self.cp_size, "moe_tp_size": self.moe_tp_size, "moe_ep_size": self.moe_ep_size}
