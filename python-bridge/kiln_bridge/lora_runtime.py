"""Runtime LoRA tensors (model.lora_weights.npy / model.lora_config.npy, examples/hf_lora_convert.py @ 05316d33) put
where TensorRT-LLM 1.2.1's runtime puts them, so the verifier can check them: each tp rank takes its share as the
LoRA cache does (cpp/tensorrt_llm/runtime/loraCache.cpp copyToPages @ c85e8726: column-parallel modules keep A and
take their rank's rows of B; row-parallel ones take their rank's columns of A and keep B), with module sizes from the
engine config (cpp/tensorrt_llm/runtime/loraModule.cpp createLoraModules @ 2a9abd95), and the plugin's term
B_r (A_r x) is added to that rank's Linear: attn_q / attn_k / attn_v to the q | k | v rows of the local fused qkv.
The result is written as a checkpoint whose rank files hold W_r + B_r A_r, which `verify_checkpoint` runs unchanged
(one adapter for every request; the TypeScript plugin simulation covers mixed batches). Written from TensorRT-LLM's
sources, not from Kiln's TypeScript.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import torch

from .checkpoint import layout_of
from .errors import CheckpointError
from .safetensors_io import load_file, save_file

# LoraManager.LORA_MODULE_IDS (tensorrt_llm/lora_manager.py @ 007e181b): id -> (module, split side, Linear, part)
MODULES = {
    1: ("attn_q", "out", "attention.qkv", 0), 2: ("attn_k", "out", "attention.qkv", 1), 3: ("attn_v", "out", "attention.qkv", 2),
    4: ("attn_dense", "in", "attention.dense", 0), 5: ("mlp_h_to_4h", "out", "mlp.fc", 0),
    6: ("mlp_4h_to_h", "in", "mlp.proj", 0), 7: ("mlp_gate", "out", "mlp.gate", 0),
}


def module_dims(cfg: dict) -> dict[str, tuple[int, int]]:
    """(in, out) per module, as createLoraModules sizes them from the model config."""
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or heads
    head = cfg.get("head_size") or hidden // heads
    mlp = cfg.get("intermediate_size") or 4 * hidden
    q, k = heads * head, kv * head
    return {"attn_q": (hidden, q), "attn_k": (hidden, k), "attn_v": (hidden, k), "attn_dense": (q, hidden),
            "mlp_h_to_4h": (hidden, mlp), "mlp_gate": (hidden, mlp), "mlp_4h_to_h": (mlp, hidden)}


def read_rows(task_dir: str, cfg: dict) -> list[tuple[int, int, torch.Tensor, torch.Tensor]]:
    """[(module id, layer, A [r, in], B [out, r])] from one adapter's .npy pair."""
    w = np.load(os.path.join(task_dir, "model.lora_weights.npy"))
    c = np.load(os.path.join(task_dir, "model.lora_config.npy"))
    if w.ndim != 3 or c.ndim != 3 or w.shape[:2] != c.shape[:2] or c.shape[2] < 3:
        raise CheckpointError(f"{task_dir}: lora_weights {list(w.shape)} and lora_config {list(c.shape)} do not pair up")
    dims = module_dims(cfg)
    rows = []
    for weights, (mod, layer, r) in zip(w[0], c[0][:, :3]):
        if int(mod) not in MODULES:
            raise CheckpointError(f"{task_dir}: module id {int(mod)} is not one this check knows")
        d_in, d_out = dims[MODULES[int(mod)][0]]
        a = torch.from_numpy(weights[: r * d_in].astype(np.float32).reshape(r, d_in))
        b = torch.from_numpy(weights[r * d_in: r * (d_in + d_out)].astype(np.float32).reshape(d_out, r))
        rows.append((int(mod), int(layer), a, b))
    return rows


def fold_runtime_lora(ckpt_dir: str, task_dir: str, out_dir: str) -> None:
    """Writes `out_dir`: the checkpoint with every rank's Linears plus that rank's LoRA term."""
    layout = layout_of(ckpt_dir)
    cfg = layout.config
    if layout.pp != 1:
        raise CheckpointError(f"{ckpt_dir}: the runtime-LoRA check handles pp = 1 only")
    tp = layout.tp
    dims = module_dims(cfg)
    rows = read_rows(task_dir, cfg)
    shutil.copytree(ckpt_dir, out_dir)
    for rank in range(tp):
        path = os.path.join(out_dir, f"rank{rank}.safetensors")
        w = load_file(path)
        for mod, layer, a, b in rows:
            name, split, linear, part = MODULES[mod]
            d_in, d_out = dims[name]
            if split == "out":
                b = b[rank * d_out // tp:(rank + 1) * d_out // tp]
            else:
                a = a[:, rank * d_in // tp:(rank + 1) * d_in // tp]
            key = f"transformer.layers.{layer}.{linear}.weight"
            delta = (b.double() @ a.double()).to(w[key].dtype)
            start = 0
            if linear == "attention.qkv":  # local q | k | v rows
                start = [0, dims["attn_q"][1] // tp, (dims["attn_q"][1] + dims["attn_k"][1]) // tp][part]
            w[key] = w[key].clone()
            w[key][start:start + delta.shape[0]] += delta
        save_file(w, path)
