"""Execute what `kiln compile` wrote for a custom architecture: the engine flow's model.py, or the trtllm-torch
package, on the eager TensorRT-LLM (eager_trtllm), every rank of the mapping simulated (kiln_bridge.comm).

Detection from the directory: `config.json` with `architectures` (a list) and a `kiln_<name>/` package -> trtllm-torch;
`config.json` with `architecture` and a `model.py` -> engine flow. Built-in TensorRT-LLM classes are not run here
(verify.py keeps its independent decoder for them).
Engine flow per rank: `MODEL_MAP[architecture].from_checkpoint(dir, rank)` (config dtype set to the compute dtype),
then the model's forward over each golden prompt. trtllm-torch per rank: ModelConfig(mapping of that rank), the
registered class built and loaded through its own `load_weights` from model.safetensors, then forward.
Custom-op kernels can be replaced by a Python module with the same `launch` (e.g. the op's reference transcribed to
PyTorch, for CPUs without Triton): `kernels={'<kernel module stem>': '<file.py>'}`.
Invariant: generated code is imported only inside `as_tensorrt_llm()`, and its modules are removed afterwards.
"""
from __future__ import annotations

import contextlib
import glob
import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .comm import ThreadWorld
from .eager_trtllm import _rank
from .eager_trtllm.alias import as_tensorrt_llm
from .errors import BridgeError, CheckpointError, UnsupportedConfig


class GeneratedCodeError(BridgeError):
    """The generated code failed to import, build or load (the message names the file and the cause)."""


@dataclass
class Generated:
    kind: str  # "model.py" | "trtllm-torch"
    ckpt_dir: str
    config: dict
    architecture: str
    tp: int
    pp: int
    vocab_size: int
    package: str | None = None  # trtllm-torch: kiln_<name>

    @property
    def world_size(self) -> int:
        return self.tp * self.pp


def detect(ckpt_dir: str, tp: int = 1, pp: int = 1) -> Generated | None:
    """What the directory holds, or None when it is not generated code (a built-in engine checkpoint). A trtllm-torch
    checkpoint has no mapping (the runtime picks it), so `tp`/`pp` say which one to simulate; model.py checkpoints
    carry theirs in config.json."""
    path = os.path.join(ckpt_dir, "config.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON ({e})") from None
    if isinstance(config.get("architectures"), list):
        packages = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ckpt_dir, "kiln_*", "__init__.py")))
        if not packages:
            return None
        if len(packages) > 1:
            raise CheckpointError(f"{ckpt_dir}: several packages {packages}; expected one kiln_<name>/")
        config = dict(config, dtype=config.get("torch_dtype", config.get("dtype")))
        return Generated("trtllm-torch", ckpt_dir, config, config["architectures"][0], tp, pp,
                         int(config["vocab_size"]), packages[0])
    if "architecture" in config and os.path.exists(os.path.join(ckpt_dir, "model.py")):
        m = config.get("mapping") or {}
        tp, pp = int(m.get("tp_size", 1)), int(m.get("pp_size", 1))
        if int(m.get("world_size", tp * pp)) != tp * pp:
            raise CheckpointError(f"{path}: mapping world_size != tp_size * pp_size")
        return Generated("model.py", ckpt_dir, config, config["architecture"], tp, pp, int(config["vocab_size"]))
    return None


@contextlib.contextmanager
def _imported_from(ckpt_dir: str, kernels: dict[str, str]) -> Iterator[None]:
    """sys.path gets ckpt_dir (kiln_plugins, kiln_<name>); the modules imported from it (and the kernel
    replacements) are dropped afterwards, so the next output's packages of the same name load afresh."""
    before = set(sys.modules)
    sys.path.insert(0, os.path.abspath(ckpt_dir))
    try:
        for stem, file in kernels.items():
            _load_module_file(f"kiln_plugins.{stem}", file)
        yield
    finally:
        sys.path.remove(os.path.abspath(ckpt_dir))
        root = os.path.abspath(ckpt_dir) + os.sep
        for name in set(sys.modules) - before:  # only the generated modules; libraries imported meanwhile stay
            module = sys.modules[name]
            file = getattr(module, "__file__", None) or ""
            if name == "kiln_generated_model" or name.split(".")[0] == "kiln_plugins" or file.startswith(root):
                del sys.modules[name]


def _load_module_file(name: str, file: str):
    if not os.path.exists(file):
        raise BridgeError(f"{file}: not found")
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _import_model_py(g: Generated):
    path = os.path.join(g.ckpt_dir, "model.py")
    try:
        _load_module_file("kiln_generated_model", path)
    except NotImplementedError as e:
        raise UnsupportedConfig(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - any failure of generated code is reported with its file
        raise GeneratedCodeError(f"{path}: import failed: {type(e).__name__}: {e}") from None
    from tensorrt_llm.models import MODEL_MAP  # the eager one, inside as_tensorrt_llm()

    if g.architecture not in MODEL_MAP:
        raise GeneratedCodeError(f"{path}: does not register config.json architecture {g.architecture!r} in MODEL_MAP")
    return MODEL_MAP[g.architecture]


def _engine_rank(g: Generated, model_cls, dtype: str) -> Callable[[int], Callable[[torch.Tensor], torch.Tensor | None]]:
    from tensorrt_llm.models.modeling_utils import CheckpointLoadError, PretrainedConfig, run_prompt

    def build(rank: int):
        config = dict(g.config, dtype=dtype)
        cfg_cls = getattr(model_cls, "config_class", None) or PretrainedConfig
        try:
            cfg = cfg_cls(**config)
            model = model_cls.from_checkpoint(g.ckpt_dir, rank=rank, config=cfg)
        except CheckpointLoadError as e:
            raise CheckpointError(f"{g.ckpt_dir}/rank{rank}.safetensors: {e}") from None
        except NotImplementedError as e:
            raise UnsupportedConfig(f"{g.ckpt_dir}/model.py: {e}") from None
        return lambda ids: run_prompt(model, ids)

    return build


def run_generated(g: Generated, prompts: list[torch.Tensor], device: str, dtype: str,
                  kernels: dict[str, str] | None = None, lora=None):
    """Logits [T, vocab] per prompt (from the last stage's tp rank 0) and wall seconds per prompt.
    `lora` (trtllm-torch only): (torch_lora.PeftCache, the lora_int_id or None per prompt) runs every prompt in
    one packed batch, each with its own adapter, as the executor batches requests; the seconds are then the
    batch's, per prompt."""
    with as_tensorrt_llm(), _imported_from(g.ckpt_dir, kernels or {}):
        if g.kind == "model.py":
            build = _engine_rank(g, _import_model_py(g), dtype)
        else:
            from .generated_torch import torch_rank

            build = torch_rank(g, dtype)

        def rank_main(comm):
            with _rank.rank_context(comm, device):
                forward = build(comm.rank)
                if lora is not None:
                    cache, requests = lora
                    start = time.perf_counter()
                    params = cache.lora_params(comm.tp_rank, requests, [int(p.shape[0]) for p in prompts], device)
                    out = forward.packed(prompts, params)
                    wall = time.perf_counter() - start
                    return ([None if o is None else o[..., : g.vocab_size].float().cpu() for o in out or [None] * len(prompts)],
                            [wall] * len(prompts))
                logits, seconds = [], []
                for ids in prompts:
                    start = time.perf_counter()
                    out = forward(ids)
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    seconds.append(time.perf_counter() - start)
                    logits.append(None if out is None else out[..., : g.vocab_size].float().cpu())
                return logits, seconds

        results = ThreadWorld(g.tp, g.pp).run(rank_main)
    return results[(g.pp - 1) * g.tp]
