#!/usr/bin/env python3
"""Checks a Kiln custom op's Triton kernel against Kiln's TypeScript reference, and times it (written by `kiln verify-op`).

    python3 verify_op_runner.py [--dir DIR] [--cpu] [--require-gpu] [--json FILE] [--report FILE]

DIR (default: this file's folder) holds manifest.json, cases.safetensors (inputs and reference outputs computed by
Kiln's interpreter) and the user's kernel module. For every case and dtype the runner compares, against the reference:
  - torch_reference, the kernel module's transcription of the op in unfused PyTorch ops (on the CPU too);
  - the Triton kernel through the module's `launch(inputs, outputs, **attrs)` (CUDA only).
Then, on CUDA, for every bench shape it times the kernel, torch_reference and the module's BASELINES on random inputs
made on the GPU (median of several CUDA-event timed loops; also as a CUDA-graph replay, without launch overhead).
Errors are relative L2 (||got - ref|| / ||ref||, the pass criterion, per dtype in manifest.json) and max |got - ref|.
Exit status: 0 all checks pass, 1 a check failed, 2 the runner could not run (bad folder, no CUDA with --require-gpu).
Invariants: only the standard library, torch and (for the kernel) triton; the folder is only read, except the
--json/--report files.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import struct
import sys
import time
import types

import torch

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32}


def read_safetensors(path):
    """name -> CPU tensor (the format is an 8-byte header length, a JSON header, then raw little-endian data)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = bytearray(data[start:end])
        t = torch.frombuffer(buf, dtype=ST_DTYPES[info["dtype"]]) if buf else torch.empty(0, dtype=ST_DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


class _Stub(types.ModuleType):
    """Stands in for triton where it is not installed, so the kernel module imports and torch_reference can run on the
    CPU. Attributes are stubs; calling one with a single function returns it (a decorator), else returns itself."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub(f"{self.__name__}.{name}")

    def __call__(self, *args, **kwargs):
        return args[0] if len(args) == 1 and callable(args[0]) and not kwargs else self


def load_kernel_module(path, stub_triton):
    if stub_triton:
        for name in ("triton", "triton.language"):
            sys.modules.setdefault(name, _Stub(name))
        sys.modules["triton"].language = sys.modules["triton.language"]
    spec = importlib.util.spec_from_file_location("kiln_user_kernel", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def errors(got, ref):
    got, ref = got.double(), ref.double()
    diff = (got - ref).norm().item()
    den = ref.norm().item()
    rel = diff / den if den > 0 else diff
    return {"rel_l2": rel if math.isfinite(rel) else float("inf"), "max_abs": (got - ref).abs().max().item() if ref.numel() else 0.0}


def check_outputs(outs, refs, names, tol):
    rows = []
    for name, got, ref in zip(names, outs, refs):
        if tuple(got.shape) != tuple(ref.shape):
            rows.append({"output": name, "rel_l2": float("inf"), "max_abs": float("inf"), "ok": False, "why": f"shape {list(got.shape)} != {list(ref.shape)}"})
            continue
        e = errors(got.float().cpu(), ref.float().cpu())
        rows.append({"output": name, **e, "ok": e["rel_l2"] <= tol})
    return rows


def run_cases(m, tensors, mod, device, run_kernel):
    results = []
    ref_fn = getattr(mod, m["torch_reference"]) if m.get("torch_reference") else None
    launch = getattr(mod, m["launch"])
    for c in m["cases"]:
        dt = DTYPES[c["dtype"]]
        tol = m["tolerance"][c["dtype"]]
        ins = [tensors[i["tensor"]].to(device=device, dtype=dt if tensors[i["tensor"]].is_floating_point() else None) for i in c["inputs"]]
        refs = [tensors[o["tensor"]] for o in c["outputs"]]
        names = [o["name"] for o in c["outputs"]]
        row = {"case": c["id"], "dtype": c["dtype"], "shapes": [i["shape"] for i in c["inputs"]], "attrs": c["attrs"], "tolerance": tol}
        if ref_fn:
            with torch.no_grad():
                row["torch_reference"] = check_outputs(list(ref_fn(ins, **c["attrs"])), refs, names, tol)
        if run_kernel:
            outs = [torch.empty(o["shape"], dtype=DTYPES[o["dtype"]], device=device) for o in c["outputs"]]
            launch(ins, outs, **c["attrs"])
            torch.cuda.synchronize()
            row["kernel"] = check_outputs(outs, refs, names, tol)
        results.append(row)
    return results


def time_ms(fn, min_ms=25.0, reps=7):
    """Median milliseconds per call over `reps` loops, each long enough (>= min_ms) for the event resolution."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    n = 1
    while True:
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        if start.elapsed_time(end) >= min_ms or n >= 1 << 16:
            break
        n *= 2
    samples = []
    for _ in range(reps):
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / n)
    return statistics.median(samples)


def graph_time_ms(fn, per_graph=20):
    """GPU time per call without launch overhead: `per_graph` calls captured in one CUDA graph, replayed."""
    try:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(per_graph):
                fn()
        return time_ms(g.replay) / per_graph
    except Exception as e:  # some callables cannot be captured; report that instead of failing the run
        return f"n/a ({type(e).__name__})"


def run_bench(m, mod, device):
    rows = []
    launch = getattr(mod, m["launch"])
    ref_fn = getattr(mod, m["torch_reference"]) if m.get("torch_reference") else None
    baselines = dict(getattr(mod, "BASELINES", {}) or {})
    gen = torch.Generator(device=device).manual_seed(0)
    for b in m["bench"]:
        dt = DTYPES[b["dtype"]]
        ins = [torch.randn(s, generator=gen, device=device, dtype=torch.float32).to(dt) for s in b["input_shapes"]]
        outs = [torch.empty(o["shape"], dtype=DTYPES[o["dtype"]], device=device) for o in b["outputs"]]
        attrs = b["attrs"]
        kernel = lambda: launch(ins, outs, **attrs)
        row = {"case": b["id"], "dtype": b["dtype"], "shapes": b["input_shapes"],
               "bytes": sum(t.numel() * t.element_size() for t in ins + outs)}
        kernel()
        torch.cuda.synchronize()
        if ref_fn:
            with torch.no_grad():
                refs = list(ref_fn(ins, **attrs))
            row["kernel_vs_torch_reference"] = check_outputs(outs, refs, [o["name"] for o in b["outputs"]], m["tolerance"][b["dtype"]])
        timed = {"kernel": kernel, **({"torch_reference": lambda: ref_fn(ins, **attrs)} if ref_fn else {}),
                 **{name: (lambda f=f: f(ins, **attrs)) for name, f in baselines.items()}}
        with torch.no_grad():
            row["ms"] = {name: time_ms(fn) for name, fn in timed.items()}
            row["graph_ms"] = {name: graph_time_ms(fn) for name, fn in timed.items()}
        row["kernel_GBps"] = row["bytes"] / (row["graph_ms"]["kernel"] if isinstance(row["graph_ms"]["kernel"], float) else row["ms"]["kernel"]) / 1e6
        rows.append(row)
    return rows


def fmt_err(rows):
    return ", ".join(f"{r['output']} {r['rel_l2']:.1e}/{r['max_abs']:.1e}{'' if r['ok'] else ' FAIL'}" for r in rows)


def fmt_us(v):
    return f"{v * 1000:.1f}" if isinstance(v, float) else str(v)


def report(m, env, cases, bench):
    lines = [f"# kiln verify-op {m['op']}", "",
             f"- device: {env['device']}", f"- torch {env['torch']}, triton {env['triton']}, CUDA {env['cuda']}",
             f"- kernel module: {m['kernel']} (launch: `{m['launch']}`, torch_reference: `{m.get('torch_reference')}`)",
             f"- tolerance (relative L2 per output): {', '.join(f'{k} {v:g}' for k, v in m['tolerance'].items())}", "",
             "## Correctness against Kiln's TypeScript reference", "",
             "errors per output: relative L2 / max abs", "",
             "| case | dtype | input shapes | attrs | torch_reference | Triton kernel |", "|---|---|---|---|---|---|"]
    for r in cases:
        lines.append(f"| {r['case']} | {r['dtype']} | {' '.join(str(s) for s in r['shapes'])} | {json.dumps(r['attrs'])} | "
                     f"{fmt_err(r['torch_reference']) if 'torch_reference' in r else '-'} | {fmt_err(r['kernel']) if 'kernel' in r else 'not run'} |")
    if bench:
        names = list(bench[0]["ms"])
        lines += ["", "## Speed (microseconds per call; CUDA-graph replay in brackets, which leaves out launch overhead)", "",
                  f"| case | dtype | input shapes | {' | '.join(names)} | speedup vs {' / '.join(names[1:])} (graph) | kernel GB/s | kernel vs torch_reference |",
                  f"|---|---|---|{'---|' * len(names)}---|---|---|"]
        for r in bench:
            cells = [f"{fmt_us(r['ms'][n])} [{fmt_us(r['graph_ms'][n])}]" for n in names]
            k = r["graph_ms"]["kernel"]
            speed = " / ".join(f"{r['graph_ms'][n] / k:.2f}x" if isinstance(k, float) and isinstance(r["graph_ms"][n], float) else "n/a" for n in names[1:])
            lines.append(f"| {r['case']} | {r['dtype']} | {' '.join(str(s) for s in r['shapes'])} | {' | '.join(cells)} | {speed} | "
                         f"{r['kernel_GBps']:.0f} | {fmt_err(r.get('kernel_vs_torch_reference', []))} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Check and time a Kiln custom op's Triton kernel.")
    ap.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--cpu", action="store_true", help="check torch_reference on the CPU only (no kernel, no timing)")
    ap.add_argument("--require-gpu", action="store_true", help="fail (exit 2) without a CUDA device")
    ap.add_argument("--json", help="write the results as JSON")
    ap.add_argument("--report", help="write the markdown report")
    ap.add_argument("--no-bench", action="store_true")
    a = ap.parse_args(argv)
    try:
        with open(os.path.join(a.dir, "manifest.json"), encoding="utf-8") as f:
            m = json.load(f)
        tensors = read_safetensors(os.path.join(a.dir, "cases.safetensors"))
    except (OSError, ValueError, KeyError) as e:
        print(f"verify-op: cannot read {a.dir}: {e}", file=sys.stderr)
        return 2
    cuda = torch.cuda.is_available() and not a.cpu
    if a.require_gpu and not cuda:
        print("verify-op: no CUDA device (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    try:
        import triton  # noqa: F401
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    if cuda and triton_version is None:
        print("verify-op: CUDA is there but triton is not installed", file=sys.stderr)
        return 2
    mod = load_kernel_module(os.path.join(a.dir, m["kernel"]), stub_triton=triton_version is None)
    device = "cuda" if cuda else "cpu"
    env = {"device": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
           "triton": triton_version or "not installed (stubbed)", "cuda": torch.version.cuda, "python": sys.version.split()[0],
           "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    cases = run_cases(m, tensors, mod, device, run_kernel=cuda)
    bench = run_bench(m, mod, device) if cuda and not a.no_bench else []
    checks = [r["ok"] for c in cases for key in ("torch_reference", "kernel") for r in c.get(key, [])]
    checks += [r["ok"] for b in bench for r in b.get("kernel_vs_torch_reference", [])]
    ok = all(checks) and bool(checks)
    text = report(m, env, cases, bench)
    print(text)
    print(f"verify-op {m['op']}: {'all checks pass' if ok else 'FAILED'} ({sum(checks)}/{len(checks)} output checks{'' if cuda else '; kernel not run: no CUDA'})")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"op": m["op"], "ok": ok, "env": env, "cases": cases, "bench": bench}, f, indent=1)
    if a.report:
        with open(a.report, "w", encoding="utf-8") as f:
            f.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
