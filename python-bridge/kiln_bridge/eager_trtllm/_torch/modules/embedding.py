"""Eager `tensorrt_llm._torch.modules.embedding` Embedding and LMHead (@ 06d0733f493698c0855bfed9c3fc00dd198e279c).

LMHead(num_embeddings, embedding_dim, ..., tensor_parallel_mode, gather_output) is a Linear: COLUMN pads the vocab
to a multiple of tp (weight [ceil(V/tp), hidden]); the last rank's padding rows stay zero at load; gathered logits
are cut back to num_embeddings. ROW splits the hidden dim.
Embedding: COLUMN is vocab-parallel: ids outside this rank's range [rank * rows, (rank + 1) * rows) give zero rows,
then the ranks' outputs are all-reduced; ROW splits the hidden dim and all-gathers when gather_output.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ... import _rank
from ...mapping import Mapping
from .linear import Linear, TensorParallelMode


class LMHead(Linear):
    def __init__(self, num_embeddings, embedding_dim, dtype=None, mapping: Mapping | None = None,
                 tensor_parallel_mode: TensorParallelMode | None = None, gather_output: bool = False, **_unused):
        mapping = mapping or Mapping()
        tp = mapping.tp_size
        local_in, local_out = embedding_dim, num_embeddings
        self_padding = 0
        if tensor_parallel_mode == TensorParallelMode.ROW:
            local_in = math.ceil(embedding_dim / tp)
            self_padding = tp * local_in - embedding_dim
        elif tensor_parallel_mode == TensorParallelMode.COLUMN:
            local_out = math.ceil(num_embeddings / tp)
            self_padding = tp * local_out - num_embeddings
        row, col = tensor_parallel_mode == TensorParallelMode.ROW, tensor_parallel_mode == TensorParallelMode.COLUMN
        super().__init__(local_in * tp if row else local_in, local_out * tp if col else local_out, bias=False, dtype=dtype, mapping=mapping,
                         tensor_parallel_mode=tensor_parallel_mode, gather_output=gather_output)
        self.num_embeddings, self.embedding_dim, self.padding_size = num_embeddings, embedding_dim, self_padding
        with torch.no_grad():
            self.weight.zero_()

    def forward(self, input, *, all_reduce_params=None, **_unused):
        out = super().forward(input)
        if self.tp_mode == TensorParallelMode.COLUMN and self.gather_output and self.padding_size:
            out = out[..., : self.num_embeddings]
        return out

    def skip_forward(self, input, **_unused):
        """Off the last pipeline stage: logits of the right shape, never read (upstream leaves them uninitialised;
        zeros keep runs deterministic)."""
        return input.new_zeros(*input.shape[:-1], self.num_embeddings)

    def load_weights(self, weights: list[dict], allow_partial_loading: bool = False) -> None:
        if self.tp_mode == TensorParallelMode.COLUMN and self.tp_rank == self.tp_size - 1 and self.padding_size:
            full = self.weight
            self.weight = nn.Parameter(full.data[: -self.padding_size], requires_grad=False)
            try:
                super().load_weights(weights)
            finally:
                self.weight = full
            return
        super().load_weights(weights)


class Embedding(LMHead):
    def skip_forward(self, input, **_unused):
        """Off the first pipeline stage: [tokens, hidden] zeros, replaced by the received hidden states."""
        return torch.zeros(*input.shape, self.embedding_dim, dtype=self.weight.dtype, device=input.device)

    def forward(self, input: torch.Tensor, **_unused) -> torch.Tensor:
        ids = input.long()
        if self.tp_size > 1 and self.tp_mode == TensorParallelMode.COLUMN:
            rows = self.weight.shape[0]
            start = self.tp_rank * rows
            inside = (ids >= start) & (ids < start + rows)
            out = nn.functional.embedding(torch.where(inside, ids - start, torch.zeros_like(ids)), self.weight)
            out = out.masked_fill(~inside.unsqueeze(-1), 0)
            return _rank.comm().all_reduce(out)
        out = nn.functional.embedding(ids, self.weight)
        if self.tp_size > 1 and self.tp_mode == TensorParallelMode.ROW and self.gather_output:
            out = _rank.comm().all_gather(out)
            out = out[..., : self.embedding_dim]
        return out
