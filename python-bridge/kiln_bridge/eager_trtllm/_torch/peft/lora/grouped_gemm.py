"""Eager `torch.ops.trtllm.lora_grouped_gemm` (cpp/tensorrt_llm/thop/loraOp.cpp @ 2a9abd95 with
cpp/tensorrt_llm/kernels/lora/lora.cpp @ 0f4dc1d0), and the memory its weight pointers point into.

lora_grouped_gemm(input [tokens, K], host_request_types [reqs], lora_ranks (one [reqs] int tensor per module),
lora_weights_pointers (one [reqs * 3] int64 tensor per module: A, B, DoRA magnitude), host_context_lengths [reqs],
output_hidden_sizes, transA, transB, max_low_rank, weight_index, isRemoveInputPadding) -> one [tokens, N2] tensor per
module. Requests are expanded to tokens in order (a context request covers its context length, a generation
request one token); outputs start at zero; for a token of rank N > 0 the output is (x A^T) B^T with A [N, K] read
at pointer A and B [N2, N] at pointer B (transB), the low-rank intermediate stored in the input dtype; rank 0 leaves
zeros; the DoRA magnitude is ignored. Only transA False / transB True and remove-input-padding inputs are modelled.
The real op takes float16 / bfloat16 only; the eager one also runs float32, so the verifier can compare at 1e-5.

Pointers: the PEFT cache hands the model raw device addresses. Here `register(t)` records a tensor under its
data_ptr() and `_read(ptr, rows, cols)` views the first rows * cols elements there, as the kernel would read them.
"""
from __future__ import annotations

import threading

import torch

_MEMORY: dict[int, torch.Tensor] = {}
_LOCK = threading.Lock()


def register(t: torch.Tensor) -> int:
    """Makes `t` (contiguous) readable through its address; returns the address."""
    t = t.contiguous()
    with _LOCK:
        _MEMORY[t.data_ptr()] = t
    return t.data_ptr()


def release(pointers) -> None:
    with _LOCK:
        for p in pointers:
            _MEMORY.pop(int(p), None)


def _read(ptr: int, rows: int, cols: int) -> torch.Tensor:
    t = _MEMORY.get(int(ptr))
    if t is None:
        raise ValueError(f"lora_grouped_gemm: no LoRA weights at address {int(ptr):#x}")
    if t.numel() < rows * cols:
        raise ValueError(f"lora_grouped_gemm: {rows}x{cols} weights read at {int(ptr):#x}, which holds {t.numel()}")
    return t.reshape(-1)[: rows * cols].reshape(rows, cols)


def lora_grouped_gemm(x, host_request_types, lora_ranks, lora_weights_pointers, host_context_lengths,
                      output_hidden_sizes, trans_a, trans_b, max_low_rank, weight_index, remove_input_padding):
    if trans_a or not trans_b or not remove_input_padding or weight_index != 0:
        raise NotImplementedError("eager lora_grouped_gemm: only transA=False, transB=True, packed input, "
                                  "weight_index 0")
    if len(lora_ranks) != len(lora_weights_pointers):
        raise ValueError("lora_grouped_gemm: both should be numLoraModules")
    tokens, k = x.shape
    types = [int(t) for t in host_request_types]
    lengths = [int(n) for n in host_context_lengths]
    spans, start = [], 0
    for req, kind in enumerate(types):
        count = 1 if kind == 1 else lengths[req]  # RequestType kGENERATION = 1, kCONTEXT = 0
        spans.append((start, start + count))
        start += count
    if start != tokens:
        raise ValueError(f"LoraParams and input dims don't match, lora tokens {start} input tokens {tokens}")
    outputs = []
    for ranks, pointers, n2 in zip(lora_ranks, lora_weights_pointers, output_hidden_sizes):
        out = torch.zeros(tokens, int(n2), dtype=x.dtype, device=x.device)
        ptrs = pointers.reshape(-1, 3)
        for req, (lo, hi) in enumerate(spans):
            n = int(ranks[req])
            if n <= 0 or hi == lo:
                continue
            if n > max_low_rank:
                raise ValueError(f"Invalid low_rank ({n}). low_rank must be smaller than mMaxLowRank ({max_low_rank})")
            a = _read(ptrs[req, 0], n, k).to(x.device, x.dtype)
            b = _read(ptrs[req, 1], int(n2), n).to(x.device, x.dtype)
            low = (x[lo:hi] @ a.T).to(x.dtype)
            out[lo:hi] = low @ b.T
        outputs.append(out)
    return outputs
