"""`kiln_bridge build`: build one TensorRT engine per rank of a Kiln checkpoint with tensorrt_llm 1.2.x.

Per rank, in this order (what trtllm-build does, tensorrt_llm/commands/build.py):
1. import `<ckpt>/model.py` when present: it registers its architecture in `tensorrt_llm.models.MODEL_MAP` on
   import, and `PretrainedConfig.from_json_file` looks the architecture up in MODEL_MAP, so the import must come
   first (else KeyError, NVIDIA/TensorRT-LLM issue #2430);
2. `config = PretrainedConfig.from_json_file(<ckpt>/config.json)`; `config.set_rank(r)`;
3. `model = MODEL_MAP[config.architecture].from_checkpoint(<ckpt>, config=config)` (loads rank{r}.safetensors);
4. `build_config = BuildConfig.from_dict(<ckpt>/build_config.json)`; `engine = tensorrt_llm.build(model,
   build_config)` (a fresh model per build: build() mutates it); `engine.save(<engine dir>)` (rank 0 also writes
   the engine config.json).
Ranks run sequentially (--workers 1), in a spawn process pool (GPU = rank % workers), or under MPI (OMPI/PMI
environment: MPI rank m builds the ranks r with r % mpi_size == m, on its node-local GPU).
`plan_build` is pure (no tensorrt_llm, no GPU) so tests and dry runs can check the plan.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import importlib.util
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from .checkpoint import layout_of
from .errors import BridgeError, CheckpointError, TrtLlmMissing

CONTAINER_HINT = ("engine builds need TensorRT-LLM 1.2.1 and a GPU; use the bridge image: "
                  "`docker build -t kiln-bridge python-bridge && docker run --gpus all -v $PWD/OUT:/ckpt "
                  "-v $PWD/ENG:/eng kiln-bridge python3 -m kiln_bridge build --ckpt /ckpt --engine-dir /eng`")


@dataclass(frozen=True)
class RankPlan:
    rank: int
    tp_rank: int
    pp_rank: int
    gpu: int
    architecture: str            # MODEL_MAP key whose class loads and builds this rank
    model_py: str | None      # generated model code imported before config.json is read
    files: tuple[str, ...]       # inputs this rank reads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def mpi_env(environ: dict[str, str] | None = None) -> tuple[int, int, int] | None:
    """(rank, size, node-local rank) when launched by Open MPI or an MPICH-style PMI launcher, else None."""
    env = os.environ if environ is None else environ
    for rank_key, size_key, local_keys in (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", ("OMPI_COMM_WORLD_LOCAL_RANK",)),
                                           ("PMI_RANK", "PMI_SIZE", ("MPI_LOCALRANKID", "PMI_LOCAL_RANK"))):
        if rank_key in env:
            rank = int(env[rank_key])
            local = next((int(env[k]) for k in local_keys if k in env), rank)
            return rank, int(env.get(size_key, "1")), local
    return None


def plan_build(ckpt_dir: str, workers: int = 1, mpi: tuple[int, int, int] | None = None) -> list[RankPlan]:
    """The ranks this process builds, with GPU and inputs. `mpi` = (rank, size, local rank) or None."""
    if workers < 1:
        raise BridgeError(f"--workers {workers}: must be at least 1")
    layout = layout_of(ckpt_dir)
    build_json = os.path.join(ckpt_dir, "build_config.json")
    read_build_config(build_json)
    model_py = os.path.join(ckpt_dir, "model.py")
    model_py = model_py if os.path.exists(model_py) else None
    ranks = range(layout.world_size)
    if mpi is not None:
        mpi_rank, mpi_size, _ = mpi
        ranks = [r for r in ranks if r % mpi_size == mpi_rank]
    plans = []
    for r in ranks:
        files = [os.path.join(ckpt_dir, "config.json"), layout.rank_file(r), build_json] + ([model_py] if model_py else [])
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise CheckpointError(f"{missing[0]}: missing (needed to build rank {r})")
        plans.append(RankPlan(rank=r, tp_rank=layout.tp_rank(r), pp_rank=layout.pp_rank(r),
                              gpu=mpi[2] if mpi is not None else r % workers, architecture=layout.architecture,
                              model_py=model_py, files=tuple(files)))
    return plans


def read_build_config(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found (kiln compile writes the BuildConfig there)") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: invalid JSON ({e})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    return config


def import_trtllm():
    try:
        import tensorrt_llm
    except Exception as e:  # ImportError, or OSError when libcuda / libnvinfer is absent
        raise TrtLlmMissing(f"cannot import tensorrt_llm ({type(e).__name__}: {e}); {CONTAINER_HINT}") from None
    version = str(getattr(tensorrt_llm, "__version__", "unknown"))
    if not version.startswith("1.2"):
        raise TrtLlmMissing(f"tensorrt_llm {version} is installed; Kiln targets 1.2.x, the last release line with "
                            f"the TensorRT engine backend; {CONTAINER_HINT}")
    return tensorrt_llm


_IMPORTED_MODEL_PY: dict[str, object] = {}


def import_model_py(path: str) -> object:
    """Execute the generated model.py once per process; its import registers the architecture in MODEL_MAP."""
    path = os.path.realpath(path)
    if path not in _IMPORTED_MODEL_PY:
        name = "kiln_generated_model_" + hashlib.sha1(path.encode()).hexdigest()[:10]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise BridgeError(f"{path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _IMPORTED_MODEL_PY[path] = module
    return _IMPORTED_MODEL_PY[path]


def select_gpu(gpu: int) -> None:
    import torch

    if not torch.cuda.is_available():
        raise BridgeError(f"no CUDA device visible; {CONTAINER_HINT}")
    if gpu >= torch.cuda.device_count():
        raise BridgeError(f"GPU {gpu} requested but only {torch.cuda.device_count()} visible (lower --workers)")
    torch.cuda.set_device(gpu)


def _checked_build_config(trtllm, path: str) -> object:
    """BuildConfig.from_dict silently drops unknown keys (and PluginConfig.model_copy accepts them), so a typo in
    build_config.json would build a different engine than asked: reject names the installed API lacks."""
    raw = read_build_config(path)
    cls = trtllm.BuildConfig
    if dataclasses.is_dataclass(cls):
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise CheckpointError(f"{path}: {', '.join(unknown)} not BuildConfig field(s) of tensorrt_llm "
                                  f"{trtllm.__version__}")
    plugin = raw.get("plugin_config")
    if isinstance(plugin, dict):
        from tensorrt_llm.plugin.plugin import PluginConfig

        fields = getattr(PluginConfig, "model_fields", None)
        unknown = sorted(set(plugin) - set(fields)) if fields else []
        if unknown:
            raise CheckpointError(f"{path}: plugin_config {', '.join(unknown)} not PluginConfig field(s)")
    return cls.from_dict(raw)


def build_rank(plan: RankPlan, ckpt_dir: str, engine_dir: str) -> dict:
    """Build and save one rank's engine (runs in a worker process or inline)."""
    start = time.perf_counter()
    trtllm = import_trtllm()
    select_gpu(plan.gpu)
    if plan.model_py:
        import_model_py(plan.model_py)  # registration before from_json_file (issue #2430)
    from tensorrt_llm.models import MODEL_MAP, PretrainedConfig

    config_path = os.path.join(ckpt_dir, "config.json")
    try:
        config = PretrainedConfig.from_json_file(config_path)
    except KeyError as e:
        raise BridgeError(f"{config_path}: architecture {e} is not in tensorrt_llm.models.MODEL_MAP "
                          f"({'model.py did not register it' if plan.model_py else 'and the checkpoint has no model.py'})") from None
    config.set_rank(plan.rank)
    model_cls = MODEL_MAP[config.architecture]
    model = model_cls.from_checkpoint(ckpt_dir, config=config)
    build_config = _checked_build_config(trtllm, os.path.join(ckpt_dir, "build_config.json"))
    engine = trtllm.build(model, build_config)
    engine.save(engine_dir)
    return {"rank": plan.rank, "gpu": plan.gpu, "engine": os.path.join(engine_dir, f"rank{plan.rank}.engine"),
            "seconds": round(time.perf_counter() - start, 3)}


def _spawn_pool(workers: int) -> concurrent.futures.Executor:
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def build_engines(ckpt_dir: str, engine_dir: str, workers: int = 1,
                  pool: Callable[[int], concurrent.futures.Executor] = _spawn_pool) -> list[dict]:
    """Build every rank this process is responsible for; returns one result dict per built rank."""
    plans = plan_build(ckpt_dir, workers, mpi_env())
    os.makedirs(engine_dir, exist_ok=True)
    if workers == 1 or len(plans) <= 1:
        return [build_rank(p, ckpt_dir, engine_dir) for p in plans]
    with pool(workers) as executor:
        futures = {executor.submit(build_rank, p, ckpt_dir, engine_dir): p.rank for p in plans}
        results, failures = [], []
        for future in concurrent.futures.as_completed(futures):
            try:
                results.append(future.result())
            except Exception as e:  # noqa: BLE001 - reported per rank below
                failures.append(f"rank {futures[future]}: {e}")
    if failures:
        raise BridgeError("; ".join(sorted(failures)))
    return sorted(results, key=lambda r: r["rank"])


def main(args) -> int:
    if args.dry_run:
        print(json.dumps([p.to_dict() for p in plan_build(args.ckpt, args.workers, mpi_env())], indent=2))
        return 0
    for result in build_engines(args.ckpt, args.engine_dir, args.workers):
        print(f"rank {result['rank']} (GPU {result['gpu']}): {result['engine']} in {result['seconds']}s")
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--ckpt", required=True, help="Kiln checkpoint directory (config.json, rank*.safetensors, "
                                                      "build_config.json, optional model.py)")
    parser.add_argument("--engine-dir", required=True, help="output directory for config.json + rank*.engine")
    parser.add_argument("--workers", type=int, default=1, help="parallel build processes (GPU = rank %% workers)")
    parser.add_argument("--dry-run", action="store_true", help="print the per-rank plan and exit (no tensorrt_llm)")
