"""Eager Embedding (tensorrt_llm/layers/embedding.py @ 97e36d0b1ebd0cbaf13c560b4ef819119ba13009).

Replicated (tp_size 1 or no tp group): weight [num_embeddings, embedding_dim]. Parallel embedding: sharding_dim 0
holds rows [ceil(num/tp), dim] of this tp_rank (out-of-range ids give zero rows, then all-reduce); sharding_dim 1
holds columns [num, dim/tp] (all-gather along the last dim). Prompt tuning is refused.
"""
from __future__ import annotations

import torch

from .. import _rank
from ..functional import Tensor
from ..module import Module
from ..parameter import Parameter


class Embedding(Module):
    def __init__(self, num_embeddings, embedding_dim, dtype=None, tp_size=1, tp_group=None, sharding_dim=0,
                 tp_rank=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.tp_size, self.tp_group, self.sharding_dim, self.tp_rank = tp_size, tp_group, sharding_dim, tp_rank or 0
        if tp_size > 1 and sharding_dim == 0:
            shape = (-(-num_embeddings // tp_size), embedding_dim)
        elif tp_size > 1 and sharding_dim == 1:
            shape = (num_embeddings, embedding_dim // tp_size)
        else:
            shape = (num_embeddings, embedding_dim)
        self.weight = Parameter(shape=shape, dtype=dtype)

    def forward(self, x: Tensor, prompt_embedding_table=None, tasks=None, task_vocab_size=None) -> Tensor:
        if prompt_embedding_table is not None:
            raise NotImplementedError("eager tensorrt_llm: prompt tuning tables are not modelled")
        ids, w = x.t.long(), self.weight.value.t
        if self.tp_size > 1 and self.sharding_dim == 0:
            lo = self.tp_rank * w.shape[0]
            local = ids - lo
            inside = (local >= 0) & (local < w.shape[0])
            y = torch.nn.functional.embedding(local.clamp(0, w.shape[0] - 1), w) * inside[..., None].to(w.dtype)
            return Tensor(_rank.comm().all_reduce(y))
        y = torch.nn.functional.embedding(ids, w)
        if self.tp_size > 1 and self.sharding_dim == 1:
            y = _rank.comm().all_gather(y)
        return Tensor(y)
