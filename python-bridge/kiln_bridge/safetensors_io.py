"""Read and write safetensors files with torch alone (no `safetensors` package).

Format: 8-byte little-endian header length N, N bytes of JSON header
`{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}`, then the raw little-endian
data; offsets are relative to the end of the header. Invariants: readers check every tensor's byte range against its
dtype and shape and the file size; `load_file` maps the file copy-on-write, so tensors share pages with the file
until written; `save_file` pads the header with spaces to a multiple of 8 so every tensor starts 8-byte aligned.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
import sys
from collections.abc import Iterable, Mapping

import torch

from .errors import SafetensorsError

# safetensors dtype name -> (torch dtype or None when this torch lacks it, bytes per element)
_DTYPES: dict[str, tuple[torch.dtype | None, int]] = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
    # float8 exists from torch 2.1 on; Debian's torch 1.13 lacks it.
    "F8_E4M3": (getattr(torch, "float8_e4m3fn", None), 1),
}
_NAME_OF = {dt: name for name, (dt, _) in _DTYPES.items() if dt is not None}

if sys.byteorder != "little":  # the format is little-endian and we reinterpret bytes in place
    raise ImportError("kiln_bridge.safetensors_io needs a little-endian host")


def dtype_name(dtype: torch.dtype) -> str:
    """safetensors name of a torch dtype (F32, BF16, ...)."""
    if dtype not in _NAME_OF:
        raise SafetensorsError(f"torch dtype {dtype} has no safetensors name")
    return _NAME_OF[dtype]


def read_header(path: str) -> tuple[dict[str, dict], dict[str, str], int]:
    """Parse the header of `path`: (tensor entries, metadata, byte offset where data starts)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise SafetensorsError(f"{path}: shorter than the 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > size - 8:
            raise SafetensorsError(f"{path}: header length {n} exceeds file size {size}")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SafetensorsError(f"{path}: header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + n
    for name, entry in header.items():
        _check_entry(path, name, entry, size - data_start)
    return header, metadata, data_start


def _check_entry(path: str, name: str, entry: dict, data_len: int) -> None:
    try:
        dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
    except (KeyError, TypeError, ValueError):
        raise SafetensorsError(f"{path}: tensor {name!r} lacks dtype/shape/data_offsets") from None
    if dtype not in _DTYPES:
        raise SafetensorsError(f"{path}: tensor {name!r} has unknown dtype {dtype!r}")
    numel = 1
    for d in shape:
        numel *= int(d)
    if not (0 <= begin <= end <= data_len) or end - begin != numel * _DTYPES[dtype][1]:
        raise SafetensorsError(
            f"{path}: tensor {name!r} byte range [{begin}, {end}) does not fit {dtype}{list(shape)} in {data_len} bytes")


def load_file(path: str, names: Iterable[str] | None = None, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Load all tensors (or only `names`) of a safetensors file. CPU tensors are zero-copy views of a private mmap."""
    header, _, data_start = read_header(path)
    wanted = list(header) if names is None else list(names)
    missing = [n for n in wanted if n not in header]
    if missing:
        raise SafetensorsError(f"{path}: no tensor named {missing[0]!r}")
    out: dict[str, torch.Tensor] = {}
    buf = None
    with open(path, "rb") as f:
        if os.path.getsize(path) > data_start:
            # ACCESS_COPY gives a writable private mapping, so torch.frombuffer does not warn; the tensor keeps a
            # reference to the mmap object, which stays mapped as long as any tensor uses it.
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    for name in wanted:
        entry = header[name]
        dtype, itemsize = _DTYPES[entry["dtype"]]
        if dtype is None:
            raise SafetensorsError(f"{path}: tensor {name!r} is {entry['dtype']}, which torch {torch.__version__} lacks")
        shape = [int(d) for d in entry["shape"]]
        begin, end = entry["data_offsets"]
        if end == begin:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(buf, dtype=dtype, count=(end - begin) // itemsize, offset=data_start + begin)
            t = t.reshape(shape)
        out[name] = t if device == "cpu" else t.to(device)
    return out


def save_file(tensors: Mapping[str, torch.Tensor], path: str, metadata: Mapping[str, str] | None = None) -> None:
    """Write `tensors` (any device, any layout) to `path`, tensors in name order."""
    header: dict[str, object] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8)
        data = raw.numpy().tobytes()
        header[name] = {"dtype": dtype_name(t.dtype), "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
