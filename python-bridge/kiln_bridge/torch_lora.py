"""What TensorRT-LLM 1.2.1's PyTorch executor does between `LoRARequest`s and the model's forward, for the verifier:
load each adapter directory of a trtllm-torch output (`kiln compile --target trtllm-torch --lora ...`), split it per
tensor-parallel rank, and hand the model the `lora_params` table its LoraLayers read. Written from TensorRT-LLM's
sources, not from Kiln's TypeScript:

- Loading (tensorrt_llm/lora_manager.py @ 30e6fb55, LoraManager.load_from_hf): adapter_model.safetensors keys
  `<prefix>.<layer>.<parent>.<module>.lora_{A,B}.weight` (HF_LORA_PATTERN; `lm_head` / `embed_tokens` keys are
  skipped, any other key is an error); the HF module is `<parent>.<module>` when LoraConfig.trtllm_modules_to_hf_modules
  names it so, else `<module>`, and maps to a TensorRT-LLM module through the inverted table; a module outside
  lora_target_modules is skipped; B is multiplied by lora_alpha / rank (rank = A's rows; / sqrt(rank) with
  use_rslora), A and B are cast to the model dtype.
- Per-rank split (the PEFT cache, cpp/tensorrt_llm/runtime/loraCache.cpp copyToPages @ c85e8726, as
  lora_runtime.py): column-parallel modules keep A and take their rank's rows of B, row-parallel ones (attn_dense,
  mlp_4h_to_h) take their rank's columns of A and keep B.
- The table (tensorrt_llm/_torch/pyexecutor/model_engine.py _get_lora_params_from_requests, the stored version of
  107,488 characters; default stored version 1a0dc5f7): for every (layer, module id) any request of the batch has,
  per request `adapter_size` (0 for a request without it) and `weight_pointers` [A, B, 0] (zeros without it);
  plus `host_request_types` (context = 0), `prompt_lens_cpu` and `num_seqs`. Empty when no request has an adapter.
Pointers are addresses registered with the eager lora_grouped_gemm (eager_trtllm/_torch/peft/lora/grouped_gemm.py).
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field

import torch

from .errors import CheckpointError
from .safetensors_io import load_file

# LoraManager.LORA_MODULE_IDS (tensorrt_llm/lora_manager.py @ 30e6fb55) -> side the PEFT cache splits per tp rank.
MODULE_IDS = {"attn_qkv": 0, "attn_q": 1, "attn_k": 2, "attn_v": 3, "attn_dense": 4, "mlp_h_to_4h": 5,
              "mlp_4h_to_h": 6, "mlp_gate": 7, "mlp_gate_up": 18}
ROW_PARALLEL = {"attn_dense", "mlp_4h_to_h"}
_KEY = re.compile(r"(.*)\.(\d+)\.(\w+)\.(\w+)\.lora_(A|B)\.weight$")


@dataclass
class LoraAdapterSet:
    """lora/adapters.json of a trtllm-torch output: the LoraConfig settings and the adapters by name and id."""

    ckpt_dir: str
    lora_config: dict
    adapters: list[dict]

    def find(self, key: str) -> dict:
        for a in self.adapters:
            if key in (a["lora_name"], str(a["lora_int_id"])):
                return a
        names = ", ".join(f"{a['lora_int_id']}={a['lora_name']}" for a in self.adapters)
        raise CheckpointError(f"{self.ckpt_dir}/lora/adapters.json: no adapter {key!r} (have {names})")


def read_adapter_set(ckpt_dir: str) -> LoraAdapterSet:
    path = os.path.join(ckpt_dir, "lora", "adapters.json")
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: not found (compile with --target trtllm-torch --lora DIR[,DIR...])")
    try:
        with open(path) as f:
            data = json.load(f)
        return LoraAdapterSet(ckpt_dir, dict(data["lora_config"]), list(data["adapters"]))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a Kiln LoRA manifest ({type(e).__name__}: {e})") from None


def load_hf_adapter(adapter_dir: str, lora_config: dict, dtype: torch.dtype) -> dict[tuple[int, str], tuple]:
    """{(layer, TensorRT-LLM module): (A [r, in], B [out, r] scaled)} as LoraManager.load_from_hf builds them."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        hf_config = json.load(f)
    weights = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    to_trtllm = {hf: trt for trt, hf in lora_config["trtllm_modules_to_hf_modules"].items()}
    targets = set(lora_config["lora_target_modules"])
    pairs: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, value in weights.items():
        m = _KEY.match(key)
        if m is None:
            if "lm_head" in key or "embed_tokens" in key:
                continue
            raise CheckpointError(f"{adapter_dir}: unsupported key {key} from HF LoRA weights")
        hf_module = f"{m.group(3)}.{m.group(4)}"
        if hf_module not in to_trtllm:
            hf_module = m.group(4)
            if hf_module not in to_trtllm:
                raise CheckpointError(f"{adapter_dir}: hf_module {hf_module} is not in {sorted(to_trtllm)}")
        pairs.setdefault((int(m.group(2)), to_trtllm[hf_module]), {})["in" if m.group(5) == "A" else "out"] = value
    alpha, rs_lora = float(hf_config["lora_alpha"]), bool(hf_config.get("use_rslora", False))
    out = {}
    for (layer, module), p in sorted(pairs.items()):
        if module not in targets:
            continue
        if "in" not in p or "out" not in p:
            raise CheckpointError(f"{adapter_dir}: layer {layer} {module} lacks its lora_A or lora_B")
        rank = p["in"].shape[0]
        scale = alpha / math.sqrt(rank) if rs_lora else alpha / rank
        out[(layer, module)] = (p["in"].to(dtype), (p["out"].double() * scale).to(dtype))
    return out


def split_for_rank(module: str, a: torch.Tensor, b: torch.Tensor, tp: int, rank: int) -> tuple:
    """The rank's share of one module's (A, B), as the PEFT cache pages it."""
    if tp == 1:
        return a, b
    if module in ROW_PARALLEL:
        if a.shape[1] % tp:
            raise CheckpointError(f"{module}: input size {a.shape[1]} does not split over tp {tp}")
        w = a.shape[1] // tp
        return a[:, rank * w:(rank + 1) * w], b
    if b.shape[0] % tp:
        raise CheckpointError(f"{module}: output size {b.shape[0]} does not split over tp {tp}")
    w = b.shape[0] // tp
    return a, b[rank * w:(rank + 1) * w]


@dataclass
class PeftCache:
    """Every adapter of a trtllm-torch output, loaded once; each rank registers its own share on first use."""

    adapters: LoraAdapterSet
    dtype: torch.dtype
    tp: int
    loaded: dict[int, dict] = field(default_factory=dict)
    pointers: list[int] = field(default_factory=list)

    def load(self, lora_int_id: int) -> dict:
        if lora_int_id not in self.loaded:
            a = next((x for x in self.adapters.adapters if x["lora_int_id"] == lora_int_id), None)
            if a is None:
                raise CheckpointError(f"{self.adapters.ckpt_dir}: no adapter with lora_int_id {lora_int_id}")
            path = os.path.join(self.adapters.ckpt_dir, a["lora_path"])
            self.loaded[lora_int_id] = load_hf_adapter(path, self.adapters.lora_config, self.dtype)
        return self.loaded[lora_int_id]

    def lora_params(self, rank: int, requests: list[int | None], seq_lens: list[int], device: str) -> dict | None:
        """The table _get_lora_params_from_requests builds for this batch, with this rank's pointers."""
        from .eager_trtllm._torch.peft.lora.grouped_gemm import register

        def keep(t: torch.Tensor) -> int:
            ptr = register(t)
            self.pointers.append(ptr)
            return ptr

        per_request: list[dict[tuple[int, int], tuple[int, int, int]]] = []
        for req in requests:
            configs = {}
            if req is not None:
                for (layer, module), (a, b) in self.load(req).items():
                    a_r, b_r = split_for_rank(module, a, b, self.tp, rank)
                    configs[(layer, MODULE_IDS[module])] = (a_r.shape[0], keep(a_r.to(device)), keep(b_r.to(device)))
            per_request.append(configs)
        keys = sorted({k for c in per_request for k in c})
        if not keys:
            return None
        params: dict = {}
        for layer, module_id in keys:
            sizes, pointers = [], []
            for c in per_request:
                size, a_ptr, b_ptr = c.get((layer, module_id), (0, 0, 0))
                sizes.append(size)
                pointers += [a_ptr, b_ptr, 0]
            params.setdefault(layer, {})[module_id] = {
                "adapter_size": torch.IntTensor(sizes), "is_dora": [False] * len(sizes),
                "weight_pointers": torch.LongTensor(pointers)}
        params["host_request_types"] = torch.zeros(len(requests), dtype=torch.int32)
        params["prompt_lens_cpu"] = torch.tensor(seq_lens, dtype=torch.int32)
        params["num_seqs"] = len(requests)
        return params

    def release(self) -> None:
        """Forgets every address this cache registered (the PEFT cache freeing its pages)."""
        from .eager_trtllm._torch.peft.lora.grouped_gemm import release

        release(self.pointers)
        self.pointers.clear()
