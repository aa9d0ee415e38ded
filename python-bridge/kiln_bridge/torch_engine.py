"""The torch engine of `kiln calibrate|eval --engine torch`: Kiln's model run in PyTorch, on the CPU or a GPU.

Kiln writes a job directory (src/driver/torch-job.ts): the hf target's generated code (config.json,
configuration_*.py, modeling_*.py, no weights) and job.json with the weight plan (each parameter's weight expression
over the source checkpoint, src/weights/weight-map.ts), the quantizable Linears and the attentions by TensorRT-LLM
module path. This module builds the model on the meta device, streams each parameter in from the Hugging Face
checkpoint in the model dtype (the checkpoint's: bf16 / fp16 stay half precision, so an 8B model fits one 80 GB GPU),
and runs prompts through it with two taps that see what src/lower/simulate.ts's hooks see:
- the input of every quantizable Linear (a forward pre-hook on the module `transformer.layers.N.attention.qkv`, ...);
- K after rotary and V as the KV cache stores them: the generated attention hands them to
  `past_key_values.update(k, v, layer_idx)`, so a cache object that stores nothing and returns them (observed or
  fake-quantized) is the tap.
Calibration records max |x| of each (src/quant/calibration.ts); evaluation swaps in fake-quantized weights and
quantizing taps (fake_quant.py) and compares logits with the unquantized model (quant_metrics.py).
Invariants: the module paths are the lowered graph's (the generated modules register parameters under exactly its
names, so `transformer.layers.0.attention.qkv` is both the module path and the calibration key); prompts of one
length run as one batch (no padding, so no padded position is ever observed); maxima stay on the device until the end.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from . import fake_quant as fq
from .errors import BridgeError
from .quant_metrics import Accumulator
from .weight_expr import SourceCheckpoint, evaluate

JOB_FORMAT = "kiln.torch-job/1"
CALIBRATION_FORMAT = "kiln.calibration/1"
_DTYPES = fq.MODEL_DTYPES
_KV_QMAX = {"int8": 127.0, "fp8": fq.E4M3_MAX}


@dataclass
class Job:
    dir: str
    model: str
    dtype: str
    vocab: int
    architecture: str
    modeling: str
    tensors: list[dict]
    linears: list[dict]
    attentions: list[str]
    excluded: list[str] = field(default_factory=list)


def read_job(job_dir: str) -> Job:
    path = os.path.join(job_dir, "job.json")
    try:
        with open(path) as f:
            j = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise BridgeError(f"{path}: cannot read the torch job ({e})") from e
    if j.get("format") != JOB_FORMAT:
        raise BridgeError(f"{path}: not a Kiln torch job (format must be {JOB_FORMAT!r})")
    return Job(job_dir, j["model"], j["dtype"], int(j["vocab"]), j["architecture"], j["modeling"], j["tensors"],
               j["linears"], j["attentions"], list(j.get("excluded", [])))


def pick_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise BridgeError(f"--device cuda: torch {torch.__version__} sees no CUDA device here")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise BridgeError(f"--device: expected cpu or cuda, got {device!r}")
    return torch.device(device)


def _import_generated(job: Job):
    """The generated modeling module, imported as a package so its relative imports resolve."""
    package = "kiln_torch_job_" + re.sub(r"\W", "_", os.path.abspath(job.dir))
    if package not in sys.modules:
        spec = importlib.util.spec_from_file_location(package, os.path.join(job.dir, "__init__.py"),
                                                      submodule_search_locations=[job.dir])
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"{package}.{job.modeling[:-3]}")


def load_model(job: Job, hf_dir: str, device: torch.device) -> torch.nn.Module:
    """The generated model with its parameters streamed in from the checkpoint, in the job's dtype, in eval mode."""
    modeling = _import_generated(job)
    cls = getattr(modeling, job.architecture)
    config = cls.config_class.from_pretrained(job.dir)
    dtype = _DTYPES[job.dtype]
    with torch.device("meta"):
        model = cls(config)
    model = model.to(dtype=dtype).to_empty(device=device).eval()
    params = dict(model.named_parameters(remove_duplicate=False))
    wanted = {t["name"] for t in job.tensors}
    missing = sorted(set(params) - wanted)
    if missing:
        raise BridgeError(f"{job.dir}: the generated model has parameter {missing[0]!r}, which the weight plan lacks")
    source = SourceCheckpoint(hf_dir)
    with torch.no_grad():
        for t in job.tensors:
            p = params.get(t["name"])
            if p is None:
                raise BridgeError(f"{job.dir}: weight plan tensor {t['name']!r} is no parameter of the generated model")
            # Sources move to the device first, so fusing (concat) and casting run there.
            value = evaluate(t["expr"], lambda n: source.read(n).to(device), dtype, device).to(dtype)
            if list(value.shape) != list(p.shape):
                raise BridgeError(f"{hf_dir}: {t['name']} evaluates to {list(value.shape)}, the model expects {list(p.shape)}")
            p.copy_(value)
    return model


class _KvTap:
    """Stands where the KV cache would: stores nothing, hands K and V back through `tap(module, which, t)`."""

    def __init__(self, module_of_layer: dict[int, str], tap: Callable[[str, str, torch.Tensor], torch.Tensor]) -> None:
        self.module_of_layer = module_of_layer
        self.tap = tap

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0

    def update(self, k: torch.Tensor, v: torch.Tensor, layer_idx: int, *args, **kwargs):
        m = self.module_of_layer[layer_idx]
        return self.tap(m, "k", k), self.tap(m, "v", v)


def _attention_layers(model: torch.nn.Module, attentions: Sequence[str]) -> dict[int, str]:
    out = {}
    for a in attentions:
        mod = model.get_submodule(a)
        out[int(mod.layer_idx)] = a
    return out


@contextmanager
def _linear_taps(model: torch.nn.Module, modules: Sequence[str], tap: Callable[[str, torch.Tensor], torch.Tensor]):
    handles = []
    for name in modules:
        def hook(_mod, args, name=name):
            return (tap(name, args[0]), *args[1:])
        handles.append(model.get_submodule(name).register_forward_pre_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _batches(prompts: Sequence[Sequence[int]], batch_tokens: int) -> Iterator[list[int]]:
    """Indices of prompts, grouped by length, at most `batch_tokens` tokens (at least one prompt) per batch."""
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for length, idx in by_len.items():
        per = max(1, batch_tokens // max(length, 1))
        for at in range(0, len(idx), per):
            yield idx[at:at + per]


def _forward(model, prompts, idx, device, logits: bool):
    ids = torch.tensor([list(prompts[i]) for i in idx], dtype=torch.long, device=device)
    out = model(input_ids=ids, past_key_values=model._kiln_kv_tap, use_cache=False, logits_to_keep=0 if logits else 1)
    return out.logits


def check_prompts(prompts: Sequence[Sequence[int]], vocab: int, source: str) -> None:
    if not prompts:
        raise BridgeError(f"{source}: no prompts")
    for p in prompts:
        if not p:
            raise BridgeError(f"{source}: an empty prompt")
        bad = [i for i in p if not 0 <= i < vocab]
        if bad:
            raise BridgeError(f"prompt token id {bad[0]} is out of range for a vocabulary of {vocab} ({source})")


class Engine:
    """A loaded job: the model, its taps, and calibration / evaluation over prompts."""

    def __init__(self, job: Job, hf_dir: str, device: torch.device, batch_tokens: int = 8192) -> None:
        self.job = job
        self.device = device
        self.batch_tokens = batch_tokens
        self.model = load_model(job, hf_dir, device)
        self.layers = _attention_layers(self.model, job.attentions)
        self.model._kiln_kv_tap = _KvTap(self.layers, lambda m, w, t: t)

    def run(self, prompts, linear_tap=None, kv_tap=None, logits=False) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(prompt indices, logits) per batch, with the taps in place."""
        self.model._kiln_kv_tap.tap = kv_tap or (lambda m, w, t: t)
        modules = [lin["module"] for lin in self.job.linears] if linear_tap else []
        try:
            with torch.no_grad(), _linear_taps(self.model, modules, linear_tap or (lambda m, x: x)):
                for idx in _batches(prompts, self.batch_tokens):
                    yield idx, _forward(self.model, prompts, idx, self.device, logits)
        finally:
            self.model._kiln_kv_tap.tap = lambda m, w, t: t

    def calibrate(self, prompts: Sequence[Sequence[int]]) -> dict:
        """The kiln.calibration/1 maxima over `prompts` (quantizers off, as ModelOpt's max calibration)."""
        amax: dict[str, torch.Tensor] = {}

        def observe(key: str, t: torch.Tensor) -> torch.Tensor:
            m = t.detach().abs().amax().float()
            amax[key] = torch.maximum(amax[key], m) if key in amax else m
            return t

        for _ in self.run(prompts, lambda m, x: observe(m, x), lambda m, w, t: observe(f"{m}#{w}", t)):
            pass
        values = {k: v.item() for k, v in amax.items()}
        for key, v in values.items():
            if v != v or v == float("inf"):
                module, _, which = key.partition("#")
                raise BridgeError(f"calibration of {module!r}{f' ({which.upper()})' if which else ''}: non-finite value")
        return {
            "format": CALIBRATION_FORMAT,
            "model": self.job.model,
            "prompts": len(prompts),
            "tokens": sum(len(p) for p in prompts),
            "inputs": {lin["module"]: values.get(lin["module"], 0.0) for lin in self.job.linears},
            "kvCache": {a: {"k": values.get(f"{a}#k", 0.0), "v": values.get(f"{a}#v", 0.0)} for a in self.job.attentions},
        }

    def evaluate(self, prompts, weight: str | None, kv: str | None, dtype: str, calibration: dict | None) -> dict:
        """Metrics of the simulated quantized engine against the unquantized model, pooled and per prompt."""
        linears = [lin for lin in self.job.linears if lin["module"] not in set(self.job.excluded)] if weight else []
        needs = weight == "fp8" or kv is not None
        if needs and calibration is None:
            calibration = self.calibrate(prompts)
        if needs:
            _check_coverage(calibration, [lin["module"] for lin in linears] if weight == "fp8" else [],
                            self.job.attentions if kv else [])
        quantized = self._quantized_weights(linears, weight, dtype)
        act = {lin["module"]: fq.round_to(fq.scale_from_amax(calibration["inputs"][lin["module"]], fq.E4M3_MAX), dtype)
               for lin in linears} if weight == "fp8" else {}
        kv_scale = {a: fq.scale_from_amax(max(calibration["kvCache"][a]["k"], calibration["kvCache"][a]["v"]), _KV_QMAX[kv])
                    for a in self.job.attentions} if kv else {}
        kv_quant = fq.fake_int8_kv if kv == "int8" else fq.fake_fp8

        def linear_tap(m: str, x: torch.Tensor) -> torch.Tensor:
            return fq.fake_fp8(x, act[m]) if m in act else x

        def kv_tap(m: str, _which: str, t: torch.Tensor) -> torch.Tensor:
            return kv_quant(t, kv_scale[m]) if m in kv_scale else t

        per_prompt = [Accumulator() for _ in prompts]
        params = dict(self.model.named_parameters())
        originals = {name: params[name].data for name in quantized}
        for idx, ref in self.run(prompts, logits=True):
            for name, w in quantized.items():
                params[name].data = w
            try:
                q = next(iter(self._run_batch(prompts, idx, linear_tap, kv_tap)))
            finally:
                for name, w in originals.items():
                    params[name].data = w
            for row, i in enumerate(idx):
                per_prompt[i].add(ref[row], q[row])
        total = Accumulator()
        for a in per_prompt:
            total.merge(a)
        return {**total.result(), "perPrompt": [a.result() for a in per_prompt], "quantizedLinears": len(linears),
                "calibration": calibration}

    def _run_batch(self, prompts, idx, linear_tap, kv_tap):
        self.model._kiln_kv_tap.tap = kv_tap
        modules = [lin["module"] for lin in self.job.linears]
        try:
            with torch.no_grad(), _linear_taps(self.model, modules, linear_tap):
                yield _forward(self.model, prompts, idx, self.device, True)
        finally:
            self.model._kiln_kv_tap.tap = lambda m, w, t: t

    def _quantized_weights(self, linears: list[dict], weight: str | None, dtype: str) -> dict[str, torch.Tensor]:
        """Parameter name -> the weight the quantized engine multiplies with."""
        if not weight:
            return {}
        params = dict(self.model.named_parameters())
        if weight != "fp8":
            return {f"{lin['module']}.weight": fq.fake_weight_int(params[f"{lin['module']}.weight"].data, weight, dtype)
                    for lin in linears}
        group_amax: dict[str, float] = {}
        for lin in linears:
            name = f"{lin['module']}.weight"
            amax = fq.weight_amax(params[name].data, name)
            group_amax[lin["scaleGroup"]] = max(group_amax.get(lin["scaleGroup"], 0.0), amax)
        return {f"{lin['module']}.weight": fq.fake_weight_fp8(params[f"{lin['module']}.weight"].data,
                                                              fq.scale_from_amax(group_amax[lin["scaleGroup"]], fq.E4M3_MAX),
                                                              dtype)
                for lin in linears}


def _check_coverage(calibration: dict, linears: list[str], attentions: list[str]) -> None:
    missing = [m for m in linears if m not in calibration.get("inputs", {})]
    missing += [a for a in attentions if a not in calibration.get("kvCache", {})]
    if missing:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise BridgeError(f"calibration of model {calibration.get('model')!r} has no statistics for {', '.join(missing[:4])}{more}")


def format_calibration(c: dict) -> str:
    return json.dumps(c, indent=2) + "\n"


def parse_prompt_file(path: str) -> list[list[int]]:
    """Token-id prompts, one per line, ids separated by commas and/or whitespace, `#` comments (src/quant/prompts.ts)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise BridgeError(f"{path}: cannot read the prompt file ({e.strerror})") from e
    prompts = []
    for number, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        ids = []
        for tok in filter(None, re.split(r"[\s,]+", s)):
            if not tok.isdigit():
                raise BridgeError(f"{path}:{number}: {tok!r} is not a token id")
            ids.append(int(tok))
        prompts.append(ids)
    if not prompts:
        raise BridgeError(f"{path}: no prompts (one line of token ids per prompt)")
    return prompts


class Stopwatch:
    """Wall time and peak GPU memory of a run, for the stats file."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.t0 = time.perf_counter()
        self.marks: dict[str, float] = {}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def mark(self, name: str) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.marks[name] = round(time.perf_counter() - self.t0, 3)

    def stats(self) -> dict:
        out: dict = {"device": str(self.device), "seconds": self.marks, "torch": torch.__version__}
        if self.device.type == "cuda":
            out["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(self.device)
            out["gpu"] = torch.cuda.get_device_name(self.device)
        return out
