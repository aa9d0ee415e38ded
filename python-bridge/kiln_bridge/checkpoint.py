"""A TensorRT-LLM 1.2 checkpoint directory: config.json, its mapping, and the per-rank safetensors files.

Rank layout (tensorrt_llm/mapping.py, MpiTopology): rank r = pp_rank * tp + tp_rank, tp_rank = r % tp,
pp_rank = r // tp (context parallelism is refused). Pipeline stage p holds the global layers
`torch.tensor_split(arange(L), pp)[p]` (the first L % pp stages get one extra layer), renumbered locally from 0.
Mixture-of-experts layers split the tp group once more (MappingBase.__init__ and its moe_* properties, same file):
moe_tp_size * moe_ep_size == tp_size (an absent or -1 size is derived from the other; both absent: moe_tp = tp,
moe_ep = 1), moe_tp_rank = tp_rank // moe_ep_size, moe_ep_rank = tp_rank % moe_ep_size.
Invariants: `CheckpointLayout` only exists for a config whose mapping is consistent (world = tp * pp,
moe_tp * moe_ep = tp); every error names config.json or the rank file at fault.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

from .errors import CheckpointError, UnsupportedConfig
from .safetensors_io import load_file


def read_config(ckpt_dir: str) -> dict:
    path = os.path.join(ckpt_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found (is {ckpt_dir} a TensorRT-LLM checkpoint directory?)") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(config, dict) or "architecture" not in config:
        raise CheckpointError(f"{path}: no 'architecture' field (a HF config.json is not a TensorRT-LLM config)")
    return config


@dataclass(frozen=True)
class CheckpointLayout:
    ckpt_dir: str
    config: dict
    tp: int
    pp: int
    moe_tp: int = 1
    moe_ep: int = 1

    @property
    def world_size(self) -> int:
        return self.tp * self.pp

    @property
    def architecture(self) -> str:
        return self.config["architecture"]

    def tp_rank(self, rank: int) -> int:
        return rank % self.tp

    def pp_rank(self, rank: int) -> int:
        return rank // self.tp

    def moe_tp_rank(self, rank: int) -> int:
        return self.tp_rank(rank) // self.moe_ep

    def moe_ep_rank(self, rank: int) -> int:
        return self.tp_rank(rank) % self.moe_ep

    def rank_of(self, pp_rank: int, tp_rank: int) -> int:
        return pp_rank * self.tp + tp_rank

    def stage_layers(self, pp_rank: int) -> list[int]:
        """Global indices of the layers held by pipeline stage `pp_rank`."""
        n = int(self.config["num_hidden_layers"])
        return [int(i) for i in torch.tensor_split(torch.arange(n), self.pp)[pp_rank].tolist()]

    def rank_file(self, rank: int) -> str:
        return os.path.join(self.ckpt_dir, f"rank{rank}.safetensors")

    def load_rank(self, rank: int, device: str = "cpu") -> dict[str, torch.Tensor]:
        path = self.rank_file(rank)
        if not os.path.exists(path):
            raise CheckpointError(f"{path}: missing (mapping world_size={self.world_size} needs rank0..rank{self.world_size - 1})")
        return load_file(path, device=device)


def layout_of(ckpt_dir: str, config: dict | None = None) -> CheckpointLayout:
    """Validate config.json's `mapping` and return the checkpoint's rank layout."""
    config = read_config(ckpt_dir) if config is None else config
    mapping = config.get("mapping") or {}
    where = os.path.join(ckpt_dir, "config.json")
    tp, pp, cp = (int(mapping.get(k, 1)) for k in ("tp_size", "pp_size", "cp_size"))
    world = int(mapping.get("world_size", tp * pp * cp))
    if cp != 1:
        raise UnsupportedConfig(f"{where}: mapping.cp_size={cp}; context parallelism is not supported")
    if min(tp, pp) < 1 or world != tp * pp:
        raise CheckpointError(f"{where}: mapping world_size={world} != tp_size={tp} * pp_size={pp}")
    n_layers = int(config.get("num_hidden_layers", 0))
    if n_layers < pp:
        raise CheckpointError(f"{where}: num_hidden_layers={n_layers} < pp_size={pp} leaves a stage without layers")
    moe_tp, moe_ep = _moe_sizes(mapping, tp, where)
    return CheckpointLayout(ckpt_dir=ckpt_dir, config=config, tp=tp, pp=pp, moe_tp=moe_tp, moe_ep=moe_ep)


def _moe_sizes(mapping: dict, tp: int, where: str) -> tuple[int, int]:
    """(moe_tp_size, moe_ep_size) as MappingBase derives them (moe_cluster_size 1, no context parallelism)."""
    cluster = int(mapping.get("moe_cluster_size", -1))
    if cluster not in (-1, 1):
        raise UnsupportedConfig(f"{where}: mapping.moe_cluster_size={cluster}; MoE clusters are not supported")
    moe_tp, moe_ep = int(mapping.get("moe_tp_size", -1)), int(mapping.get("moe_ep_size", -1))
    if moe_tp == -1 and moe_ep == -1:
        moe_tp, moe_ep = tp, 1
    elif moe_tp == -1:
        moe_tp = tp // moe_ep if moe_ep > 0 else 0
    elif moe_ep == -1:
        moe_ep = tp // moe_tp if moe_tp > 0 else 0
    if min(moe_tp, moe_ep) < 1 or moe_tp * moe_ep != tp:
        raise CheckpointError(f"{where}: mapping moe_tp_size={moe_tp} * moe_ep_size={moe_ep} must equal "
                              f"tp_size={tp}")
    return moe_tp, moe_ep
