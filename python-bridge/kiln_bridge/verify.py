"""`kiln_bridge verify`: run a TensorRT-LLM checkpoint with an independent PyTorch executor, compare with golden logits.

The golden file is `<hf dir>/golden.safetensors`: for i = 0, 1, ... `input_ids.{i}` (I32 [T]) and `logits.{i}`
(F32 [T, vocab]) produced by Hugging Face transformers from the source model. Per prompt we report the relative L2
error ||ours - ref|| / ||ref|| over all positions (unpadded vocab), the max abs error, argmax agreement and wall
time; the checkpoint passes when every prompt's relative error is within the tolerance.

LoRA (a trtllm-torch output compiled with --lora): `--lora NAME=DIR` adds the prompts of DIR/golden.safetensors (PEFT's
logits for that adapter) to one packed batch with the base prompts, each request carrying its adapter (NAME is the
lora_name or lora_int_id in lora/adapters.json), as the executor batches LoRARequests; every prompt is compared with
its own golden (torch_lora.py).

Transports: one process simulating every rank as a thread (default; CPU or one GPU), or one process per rank under
torchrun / torch.distributed (WORLD_SIZE > 1; NCCL with --device cuda, gloo with --device cpu).

Default tolerances, by the effective precision = the coarser of the compute dtype and the checkpoint's dtype
(unit roundoff u = 2^-24 fp32, 2^-11 fp16, 2^-8 bf16; see DEFAULT_TOLERANCE for the reasoning).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta

import torch

from .architectures import ARCHITECTURES, resolve_program
from .checkpoint import CheckpointLayout, layout_of
from .comm import ThreadWorld, TorchDistComm
from .errors import BridgeError, CheckpointError
from .generated import Generated, GeneratedCodeError, detect, run_generated
from .numerics import DTYPES, Numerics
from .quantized import dequantize_rank
from .safetensors_io import load_file
from .torch_lora import PeftCache, read_adapter_set

# Relative-L2 tolerance per effective precision. fp32: two correct fp32 implementations of these networks differ by
# ~1e-7..1e-6 (summation order, libm); 1e-5 leaves >10x headroom while any layout bug (a swapped head, a bias on the
# wrong rank, a wrong RoPE style) moves logits by >1e-2. fp16: every stored activation and weight carries a relative
# rounding error up to u = 4.9e-4; through a few layers these random errors add up to a logits error of a few u
# (measured 1e-3..3e-3 on the test models), so 2e-2 (~40u) stays well above honest rounding for deeper models and
# still far below layout bugs. bf16 has 8x the roundoff of fp16 (u = 3.9e-3, measured 1e-2..2.5e-2), so 5e-2 (~13u).
DEFAULT_TOLERANCE = {"float32": 1e-5, "float16": 2e-2, "bfloat16": 5e-2}
_COARSENESS = ["float32", "float16", "bfloat16"]  # increasing unit roundoff


def effective_precision(compute_dtype: str, checkpoint_dtype: str | None) -> str:
    known = [d for d in (compute_dtype, checkpoint_dtype) if d in _COARSENESS]
    return max(known, key=_COARSENESS.index)


def load_golden(hf_dir: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(input_ids [T], logits [T, vocab])] from <hf_dir>/golden.safetensors."""
    path = os.path.join(hf_dir, "golden.safetensors")
    if not os.path.exists(path):
        raise BridgeError(f"{path}: not found (the HF fixture directory must hold golden.safetensors)")
    tensors = load_file(path)
    prompts = []
    while f"input_ids.{len(prompts)}" in tensors:
        i = len(prompts)
        if f"logits.{i}" not in tensors:
            raise BridgeError(f"{path}: input_ids.{i} has no logits.{i}")
        ids, logits = tensors[f"input_ids.{i}"], tensors[f"logits.{i}"].to(torch.float32)
        if ids.dim() != 1 or logits.dim() != 2 or logits.shape[0] != ids.shape[0]:
            raise BridgeError(f"{path}: logits.{i} {list(logits.shape)} does not match input_ids.{i} {list(ids.shape)}")
        prompts.append((ids.to(torch.long), logits))
    if not prompts:
        raise BridgeError(f"{path}: no input_ids.0 / logits.0 pair")
    return prompts


def compare(ours: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    a, b = ours.to(torch.float64).cpu(), ref.to(torch.float64).cpu()
    agree = (a.argmax(dim=-1) == b.argmax(dim=-1))
    return {
        "rel_l2": float((a - b).norm() / b.norm()),
        "max_abs": float((a - b).abs().max()),
        "argmax_agree": float(agree.to(torch.float64).mean()),
        "argmax_matches": int(agree.sum()),
    }


@dataclass
class RankResult:
    warnings: list[str] = field(default_factory=list)
    logits: list[torch.Tensor | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def _load_checked(layout: CheckpointLayout, program, rank: int, nm: Numerics, device: str):
    raw, inputs = dequantize_rank(layout.config, layout.load_rank(rank), layout.rank_file(rank))
    warnings = program.check_weights(layout, rank, raw)
    weights = program.prepare(layout, rank, raw, nm, device)
    weights.update({name: t.to(device) for name, t in inputs.items()})  # quantized GEMM inputs (quantized.py)
    return weights, warnings


def _run_prompts(layout, program, comm, weights, prompts, nm: Numerics, device: str) -> RankResult:
    out = RankResult()
    for ids, _ in prompts:
        start = time.perf_counter()
        logits = program.run_rank(layout, weights, comm, ids, nm)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out.seconds.append(time.perf_counter() - start)
        out.logits.append(None if logits is None else logits.cpu())
    return out


def _report(layout: CheckpointLayout, program, prompts, result: RankResult, warnings: list[str], *, dtype: str,
            device: str, transport: str, tolerance: float | None, ckpt_dir: str, hf_dir: str) -> dict:
    precision = effective_precision(dtype, layout.config.get("dtype"))
    tol = DEFAULT_TOLERANCE[precision] if tolerance is None else float(tolerance)
    rows = []
    for i, ((ids, ref), ours, secs) in enumerate(zip(prompts, result.logits, result.seconds)):
        if ref.shape[-1] != program.vocab_size:
            raise CheckpointError(f"golden logits.{i} have vocab {ref.shape[-1]}, config.json vocab_size="
                                  f"{program.vocab_size}")
        rows.append({"prompt": i, "tokens": int(ids.shape[0]), **compare(ours, ref), "wall_s": round(secs, 6)})
    return {
        "ok": all(r["rel_l2"] <= tol for r in rows),
        "checkpoint": ckpt_dir, "golden": os.path.join(hf_dir, "golden.safetensors"),
        "architecture": layout.architecture, "tp": layout.tp, "pp": layout.pp, "world_size": layout.world_size,
        "device": device, "dtype": dtype, "checkpoint_dtype": layout.config.get("dtype"),
        "effective_precision": precision, "tolerance": tol, "transport": transport,
        "prompts": rows, "warnings": warnings,
    }


def _setup(ckpt_dir: str, hf_dir: str, dtype: str, device: str):
    if dtype not in DTYPES:
        raise BridgeError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BridgeError("--device cuda: torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False  # TF32 GEMMs would blur fp32 comparisons to ~1e-3
        torch.backends.cudnn.allow_tf32 = False
    elif device != "cpu":
        raise BridgeError(f"--device {device!r} is not cpu or cuda")
    layout = layout_of(ckpt_dir)
    return layout, resolve_program(layout.config), load_golden(hf_dir), Numerics(dtype)


def _check_device(dtype: str, device: str) -> None:
    if dtype not in DTYPES:
        raise BridgeError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BridgeError("--device cuda: torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    elif device != "cpu":
        raise BridgeError(f"--device {device!r} is not cpu or cuda")


def verify_generated(g: Generated, hf_dir: str, device: str = "cpu", dtype: str = "float32",
                     tolerance: float | None = None, kernels: dict[str, str] | None = None) -> dict:
    """Execute generated code (model.py or the trtllm-torch package) on the eager TensorRT-LLM, compare with the
    goldens under the same tolerances as the built-in path."""
    _check_device(dtype, device)
    prompts = load_golden(hf_dir)
    try:
        logits, seconds = run_generated(g, [ids for ids, _ in prompts], device, dtype, kernels)
    except BridgeError:
        raise
    except Exception as e:  # noqa: BLE001 - generated code failing at run time: one line naming the directory
        raise GeneratedCodeError(f"{g.ckpt_dir} ({g.kind}): {type(e).__name__}: {e}") from None
    result = RankResult(logits=logits, seconds=seconds)
    report = _report(g, g, prompts, result, [], dtype=dtype, device=device,
                     transport=f"threads ({g.world_size} simulated ranks)", tolerance=tolerance,
                     ckpt_dir=g.ckpt_dir, hf_dir=hf_dir)
    report["executed"] = g.kind
    return report


def verify_lora(ckpt_dir: str, hf_dir: str, cases: list[tuple[str, str]], device: str = "cpu",
                dtype: str = "float32", tolerance: float | None = None, tp: int = 1, pp: int = 1) -> dict:
    """A trtllm-torch output with runtime LoRA: the base prompts (goldens in hf_dir) and, per (adapter, golden dir)
    case, that golden's prompts with the adapter's LoRARequest, all in one packed batch."""
    _check_device(dtype, device)
    g = detect(ckpt_dir, tp, pp)
    if g is None or g.kind != "trtllm-torch":
        raise BridgeError(f"{ckpt_dir}: --lora checks a trtllm-torch output (kiln compile --target trtllm-torch --lora ...)")
    adapters = read_adapter_set(ckpt_dir)
    batch = [("base", None, ids, ref) for ids, ref in load_golden(hf_dir)]
    for key, golden_dir in cases:
        a = adapters.find(key)
        batch += [(str(a["lora_name"]), int(a["lora_int_id"]), ids, ref) for ids, ref in load_golden(golden_dir)]
    cache = PeftCache(adapters, DTYPES[dtype], g.tp)
    try:
        logits, seconds = run_generated(g, [b[2] for b in batch], device, dtype, lora=(cache, [b[1] for b in batch]))
    except BridgeError:
        raise
    except Exception as e:  # noqa: BLE001 - generated code failing at run time: one line naming the directory
        raise GeneratedCodeError(f"{g.ckpt_dir} ({g.kind} + LoRA): {type(e).__name__}: {e}") from None
    finally:
        cache.release()
    prompts = [(ids, ref) for _, _, ids, ref in batch]
    report = _report(g, g, prompts, RankResult(logits=logits, seconds=seconds), [], dtype=dtype, device=device,
                     transport=f"threads ({g.world_size} simulated ranks), one packed batch", tolerance=tolerance,
                     ckpt_dir=g.ckpt_dir, hf_dir=hf_dir)
    for row, b in zip(report["prompts"], batch):
        row["request"] = b[0]
    report["executed"] = "trtllm-torch + LoRA"
    return report


def verify_checkpoint(ckpt_dir: str, hf_dir: str, device: str = "cpu", dtype: str = "float32",
                      tolerance: float | None = None, kernels: dict[str, str] | None = None,
                      tp: int = 1, pp: int = 1) -> dict:
    """Verify in this process, every rank of the mapping simulated as a thread. Returns the report dict
    (report['ok'] says whether every prompt is within tolerance); raises BridgeError for a malformed checkpoint.
    Generated code (a custom architecture's model.py, a trtllm-torch package) is executed on the eager
    TensorRT-LLM; built-in architectures run on the independent decoder."""
    generated = detect(ckpt_dir, tp, pp)
    if generated is not None and (generated.kind == "trtllm-torch" or generated.architecture not in ARCHITECTURES):
        return verify_generated(generated, hf_dir, device, dtype, tolerance, kernels)
    layout, program, prompts, nm = _setup(ckpt_dir, hf_dir, dtype, device)

    def rank_main(comm) -> RankResult:
        weights, warnings = _load_checked(layout, program, comm.rank, nm, device)
        result = _run_prompts(layout, program, comm, weights, prompts, nm, device)
        result.warnings = warnings
        return result

    results = ThreadWorld(layout.tp, layout.pp).run(rank_main)
    warnings = [w for r in results for w in r.warnings]
    reporter = results[layout.rank_of(layout.pp - 1, 0)]
    return _report(layout, program, prompts, reporter, warnings, dtype=dtype, device=device,
                   transport=f"threads ({layout.world_size} simulated ranks)", tolerance=tolerance,
                   ckpt_dir=ckpt_dir, hf_dir=hf_dir)


def verify_distributed(ckpt_dir: str, hf_dir: str, device: str = "cuda", dtype: str = "float32",
                       tolerance: float | None = None) -> dict:
    """Verify as one rank of a torch.distributed world (launched by torchrun). Every rank returns the same report."""
    import torch.distributed as dist

    generated = detect(ckpt_dir)
    if generated is not None and (generated.kind == "trtllm-torch" or generated.architecture not in ARCHITECTURES):
        raise BridgeError(f"{ckpt_dir}: generated code ({generated.kind}) runs with simulated ranks in one process; "
                          "run it without torchrun")
    local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BridgeError("--device cuda: torch sees no CUDA device")
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend=backend, timeout=timedelta(minutes=10))
    try:
        # Every rank reaches the status exchange, even when its own setup failed, so no rank hangs in a collective.
        error = None
        try:
            layout, program, prompts, nm = _setup(ckpt_dir, hf_dir, dtype, device)
            if layout.world_size != dist.get_world_size():
                raise BridgeError(f"{ckpt_dir}/config.json: mapping world_size={layout.world_size} but torchrun "
                                  f"started {dist.get_world_size()} processes")
            weights, warnings = _load_checked(layout, program, dist.get_rank(), nm, device)
        except BridgeError as e:
            error, warnings = f"rank {dist.get_rank()}: {e}", []
        status: list[object] = [None] * dist.get_world_size()
        dist.all_gather_object(status, (error, warnings))
        errors = [e for e, _ in status if e]  # type: ignore[misc]
        if errors:
            raise BridgeError(errors[0])
        comm = TorchDistComm(layout.tp, layout.pp)
        result = _run_prompts(layout, program, comm, weights, prompts, nm, device)
        reporter = layout.rank_of(layout.pp - 1, 0)
        box: list[object] = [None]
        if dist.get_rank() == reporter:
            box[0] = _report(layout, program, prompts, result, [w for _, ws in status for w in ws], dtype=dtype,
                             device=device, transport=f"torch.distributed ({backend}, {layout.world_size} processes)",
                             tolerance=tolerance, ckpt_dir=ckpt_dir, hf_dir=hf_dir)
        dist.broadcast_object_list(box, src=reporter)
        return box[0]  # type: ignore[return-value]
    finally:
        dist.destroy_process_group()


def format_report(report: dict) -> str:
    lines = [f"kiln verify: {report['architecture']} tp={report['tp']} pp={report['pp']} dtype={report['dtype']} "
             f"(checkpoint {report['checkpoint_dtype']}) on {report['device']} via {report['transport']}; "
             f"tolerance {report['tolerance']:g}"]
    for r in report["prompts"]:
        lines.append(f"  prompt {r['prompt']}{' [' + r['request'] + ']' if 'request' in r else ''}: {r['tokens']} tokens  rel_l2 {r['rel_l2']:.3e}  max_abs "
                     f"{r['max_abs']:.3e}  argmax {r['argmax_matches']}/{r['tokens']}  {r['wall_s']:.3f}s")
    lines += [f"  warning: {w}" for w in report["warnings"]]
    lines.append("PASS" if report["ok"] else "FAIL: relative L2 error above tolerance")
    return "\n".join(lines)


def main(args) -> int:
    """CLI body of `python -m kiln_bridge verify`: 0 pass, 1 outside tolerance (BridgeError -> caller, exit 2)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    run = verify_distributed if world > 1 else verify_checkpoint
    kernels = dict(_kernel_arg(k) for k in args.kernel or [])
    if args.lora:
        if world > 1:
            raise BridgeError("--lora runs the trtllm-torch package with simulated ranks in one process; run it "
                              "without torchrun")
        report = verify_lora(args.ckpt, args.hf, [_lora_arg(x) for x in args.lora], device=args.device,
                             dtype=args.dtype, tolerance=args.tol, tp=args.tp, pp=args.pp)
        print(json.dumps(report, indent=2) if args.json else format_report(report))
        return 0 if report["ok"] else 1
    if world > 1:
        report = run(args.ckpt, args.hf, device=args.device, dtype=args.dtype, tolerance=args.tol)
    else:
        report = run(args.ckpt, args.hf, device=args.device, dtype=args.dtype, tolerance=args.tol, kernels=kernels,
                     tp=args.tp, pp=args.pp)
    if world == 1 or int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0 if report["ok"] else 1


def _kernel_arg(spec: str) -> tuple[str, str]:
    stem, sep, file = spec.partition("=")
    if not sep or not stem or not file:
        raise BridgeError(f"--kernel {spec!r}: expected MODULE=FILE.py (e.g. fused_add_rms_norm_kernel=ref.py)")
    return stem, file


def _lora_arg(spec: str) -> tuple[str, str]:
    name, sep, golden = spec.partition("=")
    if not sep or not name or not golden:
        raise BridgeError(f"--lora {spec!r}: expected ADAPTER=DIR (lora_name or lora_int_id, and the directory "
                          "holding that adapter's golden.safetensors)")
    return name, golden


def add_arguments(parser) -> None:
    parser.add_argument("--ckpt", required=True, help="TensorRT-LLM checkpoint directory (config.json + rank*.safetensors)")
    parser.add_argument("--hf", required=True, help="directory holding golden.safetensors (input_ids.i / logits.i)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--tol", type=float, default=None,
                        help="relative L2 tolerance (default by precision: " +
                             ", ".join(f"{k} {v:g}" for k, v in DEFAULT_TOLERANCE.items()) + ")")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--tp", type=int, default=1, help="trtllm-torch outputs only (their checkpoint has no "
                        "mapping): the tensor-parallel size to simulate")
    parser.add_argument("--pp", type=int, default=1, help="trtllm-torch outputs only: the pipeline-parallel size")
    parser.add_argument("--lora", action="append", metavar="ADAPTER=DIR",
                        help="trtllm-torch outputs compiled with --lora: run DIR/golden.safetensors' prompts with this "
                             "adapter (lora_name or lora_int_id), batched with the base prompts; repeat for more")
    parser.add_argument("--kernel", action="append", metavar="MODULE=FILE",
                        help="replace a custom op's kernel module (kiln_plugins/MODULE.py) by FILE, which defines the "
                             "same launch(); e.g. the op's reference in PyTorch on a CPU without Triton")
