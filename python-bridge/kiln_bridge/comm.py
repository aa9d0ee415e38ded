"""Collectives between the ranks of a TensorRT-LLM mapping: one interface, two transports.

The decoder program is written SPMD, once per rank, as the engine runs it. `ThreadWorld` runs every rank of the
mapping as a thread of this process (CPU, or all ranks on one GPU); `TorchDistComm` runs one process per rank over
torch.distributed (NCCL on GPUs, gloo on CPU), e.g. under torchrun.
Invariants: all_reduce sums the tensor over the rank's tensor-parallel group (the ranks of its pipeline stage) and
every member gets the same result (thread transport: summed in tp-rank order, so results are deterministic);
all_gather concatenates the members' tensors along the last dim in tp-rank order; pipeline hand-off goes from rank
r to r + tp (Mapping.next_pp_rank). A rank that fails aborts the thread world, so its peers raise instead of hanging.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import torch


class CommAborted(RuntimeError):
    """Raised in a rank thread when another rank failed."""


class _Exchange:
    """All members deposit a tensor, wait, and read every member's tensor."""

    def __init__(self, size: int):
        self.slots: list[torch.Tensor | None] = [None] * size
        self.barrier = threading.Barrier(size)

    def swap(self, index: int, x: torch.Tensor) -> list[torch.Tensor]:
        self.slots[index] = x
        self._wait()
        values = list(self.slots)
        self._wait()  # nobody overwrites a slot before everyone has read it
        return values  # type: ignore[return-value]

    def _wait(self) -> None:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            raise CommAborted("another rank failed") from None


class ThreadWorld:
    """Shared state of a simulated world of tp * pp ranks."""

    def __init__(self, tp: int, pp: int):
        self.tp, self.pp = tp, pp
        self.stage_exchanges = [_Exchange(tp) for _ in range(pp)]
        self.mailboxes: dict[tuple[int, int], queue.Queue[torch.Tensor]] = {}
        self.aborted = threading.Event()

    def comm(self, rank: int) -> ThreadComm:
        return ThreadComm(self, rank)

    def abort(self) -> None:
        self.aborted.set()
        for ex in self.stage_exchanges:
            ex.barrier.abort()

    def mailbox(self, src: int, dst: int) -> queue.Queue[torch.Tensor]:
        return self.mailboxes.setdefault((src, dst), queue.Queue())

    def run(self, fn: Callable[[ThreadComm], object]) -> list[object]:
        """Run fn(comm) for every rank in its own thread; return the per-rank results or re-raise the first error."""
        n = self.tp * self.pp
        for r in range(n - self.tp):  # pipeline mailboxes exist before any thread runs
            self.mailbox(r, r + self.tp)
        results: list[object] = [None] * n
        errors: list[tuple[int, BaseException]] = []

        def body(rank: int) -> None:
            try:
                results[rank] = fn(self.comm(rank))
            except BaseException as e:  # noqa: BLE001 - forwarded to the caller below
                errors.append((rank, e))
                self.abort()

        threads = [threading.Thread(target=body, args=(r,), name=f"rank{r}") for r in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:  # report the root cause, not a peer's CommAborted
            root = [e for _, e in errors if not isinstance(e, CommAborted)] or [errors[0][1]]
            raise root[0]
        return results


class ThreadComm:
    def __init__(self, world: ThreadWorld, rank: int):
        self.world = world
        self.rank = rank
        self.tp_size, self.pp_size = world.tp, world.pp
        self.tp_rank, self.pp_rank = rank % world.tp, rank // world.tp

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        if self.tp_size == 1:
            return x
        values = self.world.stage_exchanges[self.pp_rank].swap(self.tp_rank, x)
        total = values[0]
        for v in values[1:]:
            total = total + v
        return total

    def all_gather(self, x: torch.Tensor) -> torch.Tensor:
        if self.tp_size == 1:
            return x
        return torch.cat(self.world.stage_exchanges[self.pp_rank].swap(self.tp_rank, x), dim=-1)

    def send_next(self, x: torch.Tensor) -> None:
        self.world.mailbox(self.rank, self.rank + self.tp_size).put(x)

    def recv_prev(self, like: torch.Tensor) -> torch.Tensor:
        box = self.world.mailbox(self.rank - self.tp_size, self.rank)
        while True:
            try:
                x = box.get(timeout=0.05)
            except queue.Empty:
                if self.world.aborted.is_set():
                    raise CommAborted("another rank failed") from None
                continue
            if x.shape != like.shape:
                raise RuntimeError(f"rank {self.rank}: received hidden states {list(x.shape)}, expected {list(like.shape)}")
            return x


class TorchDistComm:
    """One rank of a torch.distributed world whose size equals the checkpoint's world size."""

    def __init__(self, tp: int, pp: int):
        import torch.distributed as dist

        self.dist = dist
        self.rank = dist.get_rank()
        self.tp_size, self.pp_size = tp, pp
        self.tp_rank, self.pp_rank = self.rank % tp, self.rank // tp
        # new_group is collective: every rank creates every stage's group, in the same order.
        groups = [dist.new_group(list(range(s * tp, (s + 1) * tp))) for s in range(pp)]
        self.group = groups[self.pp_rank]

    def all_reduce(self, x: torch.Tensor) -> torch.Tensor:
        if self.tp_size == 1:
            return x
        y = x.clone()
        self.dist.all_reduce(y, op=self.dist.ReduceOp.SUM, group=self.group)
        return y

    def all_gather(self, x: torch.Tensor) -> torch.Tensor:
        if self.tp_size == 1:
            return x
        parts = [torch.empty_like(x) for _ in range(self.tp_size)]
        self.dist.all_gather(parts, x.contiguous(), group=self.group)
        return torch.cat(parts, dim=-1)

    def send_next(self, x: torch.Tensor) -> None:
        self.dist.send(x.contiguous(), dst=self.rank + self.tp_size)

    def recv_prev(self, like: torch.Tensor) -> torch.Tensor:
        buf = torch.empty_like(like)
        self.dist.recv(buf, src=self.rank - self.tp_size)
        return buf
