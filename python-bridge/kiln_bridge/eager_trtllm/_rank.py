"""The rank an eager TensorRT-LLM model runs as: its comm (kiln_bridge.comm), device and dtype, per thread.

The verifier simulates every rank of a mapping as a thread of one process (or one process per rank under
torchrun), so collectives inside layers (RowLinear's all-reduce, gather_output, F.send/F.recv) find their transport
here instead of through a global. Invariant: code that builds or runs an eager model runs inside `rank_context`.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_local = threading.local()


class _Solo:
    """The comm of a world of one rank (tp = pp = 1): collectives are the identity."""

    rank = tp_rank = pp_rank = 0
    tp_size = pp_size = 1

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def all_gather(self, x: torch.Tensor) -> torch.Tensor:
        return x


@contextlib.contextmanager
def rank_context(comm, device: str = "cpu") -> Iterator[None]:
    old = getattr(_local, "state", None)
    _local.state = (comm, device)
    try:
        yield
    finally:
        _local.state = old


def comm():
    state: tuple | None = getattr(_local, "state", None)
    return _Solo() if state is None else state[0]


def device() -> str:
    state: tuple | None = getattr(_local, "state", None)
    return "cpu" if state is None else state[1]
