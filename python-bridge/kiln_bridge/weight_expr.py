"""Evaluates Kiln weight expressions (src/weights/weight-map.ts: plain JSON saying how a model parameter is made from
checkpoint tensors) with torch, reading a Hugging Face safetensors checkpoint (one file or an index of shards).

Invariants: the ops and their semantics are weight-map.ts's (transpose of a 2-D tensor, concat / slice / pad /
repeat_interleave along one dim, reshape, zeros); values keep the source dtype (no float32 detour, so an 8B bf16
model is never widened); a source tensor is read lazily from a private mmap, so only the tensors being evaluated
occupy memory; an unknown op, a missing tensor or a malformed expression is a BridgeError naming it.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable

import torch

from .errors import BridgeError
from .safetensors_io import load_file, read_header


class SourceCheckpoint:
    """The tensors of a Hugging Face checkpoint directory, by name (model.safetensors or an index of shards)."""

    def __init__(self, hf_dir: str) -> None:
        self.dir = hf_dir
        index = os.path.join(hf_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                self.file_of: dict[str, str] = dict(json.load(f)["weight_map"])
        else:
            single = os.path.join(hf_dir, "model.safetensors")
            if not os.path.exists(single):
                raise BridgeError(f"{hf_dir}: no model.safetensors or model.safetensors.index.json")
            header, _, _ = read_header(single)
            self.file_of = {name: "model.safetensors" for name in header if name != "__metadata__"}

    def read(self, name: str) -> torch.Tensor:
        file = self.file_of.get(name)
        if file is None:
            raise BridgeError(f"{self.dir}: the checkpoint has no tensor {name!r}")
        return load_file(os.path.join(self.dir, file), [name])[name]


def _dim(e: dict) -> int:
    return int(e["dim"])


def _slice(e: dict, x: torch.Tensor) -> torch.Tensor:
    return x.narrow(_dim(e), int(e["start"]), int(e["end"]) - int(e["start"]))


def _pad(e: dict, x: torch.Tensor) -> torch.Tensor:
    dim, to = _dim(e), int(e["to"])
    extra = to - x.shape[dim]
    if extra < 0:
        raise BridgeError(f"weight expression pads dim {dim} of {list(x.shape)} to {to}, which would shrink it")
    shape = list(x.shape)
    shape[dim] = extra
    return torch.cat([x, x.new_zeros(shape)], dim=dim) if extra else x


def _transpose(x: torch.Tensor) -> torch.Tensor:
    if x.dim() != 2:
        raise BridgeError(f"weight expression transposes a {x.dim()}-D tensor {list(x.shape)}")
    return x.t()


_UNARY: dict[str, Callable[[dict, torch.Tensor], torch.Tensor]] = {
    "transpose": lambda e, x: _transpose(x),
    "slice": _slice,
    "pad": _pad,
    "repeat_interleave": lambda e, x: x.repeat_interleave(int(e["repeats"]), dim=_dim(e)),
    "reshape": lambda e, x: x.reshape([int(d) for d in e["shape"]]),
}


def evaluate(expr: dict, read: Callable[[str], torch.Tensor], dtype: torch.dtype,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """The tensor `expr` describes; sources come from `read`, zeros are made in `dtype` on `device`."""
    if "source" in expr:
        return read(str(expr["source"]))
    op = expr.get("op")
    if op == "zeros":
        return torch.zeros([int(d) for d in expr["shape"]], dtype=dtype, device=device)
    if op == "concat":
        return torch.cat([evaluate(x, read, dtype, device) for x in expr["xs"]], dim=_dim(expr))
    if op in _UNARY:
        return _UNARY[op](expr, evaluate(expr["x"], read, dtype, device))
    raise BridgeError(f"unknown weight expression op {op!r}")
