#!/usr/bin/env python3
"""GPU verification of `kiln compile --target hf` output, per dtype.

For each (emitted dir, fixture dir) pair and each dtype (float32, float16, bfloat16 by default) this loads the
emitted model with transformers' trust_remote_code and the original Hugging Face model from the fixture, both on
the device in that dtype, and runs the fixture's golden prompts:

  rel_l2_vs_original  logits of the emitted model vs the original model in the same dtype
  rel_l2_vs_golden    logits of the emitted model vs the golden float32 logits (made on CPU by transformers)
  greedy_vs_golden    generate() tokens (KV cache, greedy) equal the golden greedy tokens
  greedy_vs_original  generate() tokens equal the original model's in the same dtype

A run passes when, in float32, both relative L2 errors are <= 1e-5 and greedy_vs_golden holds; in float16 and
bfloat16, rel_l2_vs_original <= 1e-2 and 2e-2 (rounding of two implementations that order some sums
differently). Greedy tokens in half precision are recorded, not required: on tiny random models the top two logits
are often closer than half-precision rounding.

Needs python3 with torch (CUDA), safetensors and transformers 5.x; no network. Prints one JSON document and writes
it to --out when given. Exit status 0 when every run passes, 1 otherwise, 2 on a usage error.

Example:
  python3 codegen/hf/gpu-check.py --pair out/hf-llama test/fixtures/hf/llama \\
      --pair out/hf-gpt2 test/fixtures/hf/gpt2 --out hf-gpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="kiln-hf-modules-"))

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TOLERANCE = {"float32": 1e-5, "float16": 1e-2, "bfloat16": 2e-2}


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).norm() / b.norm())


def golden_prompts(fixture: str):
    g = load_file(os.path.join(fixture, "golden.safetensors"))
    count = sum(1 for k in g if k.startswith("input_ids."))
    return [(g[f"input_ids.{i}"].long(), g[f"logits.{i}"], g[f"greedy.{i}"].tolist()) for i in range(count)]


def load(path: str, dtype: torch.dtype, device: str, remote: bool):
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=remote)
    return model.to(device).eval()


def greedy(model, ids: torch.Tensor, n: int) -> list:
    out = model.generate(ids[None], max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return out[0, ids.shape[0]:].tolist()


def check_pair(emitted: str, fixture: str, dtype_name: str, device: str) -> dict:
    dtype = DTYPES[dtype_name]
    mine = load(emitted, dtype, device, True)
    original = load(fixture, dtype, device, False)
    prompts = []
    for ids, golden_logits, golden_tokens in golden_prompts(fixture):
        x = ids.to(device)
        with torch.no_grad():
            a = mine(x[None]).logits[0].float()
            b = original(x[None]).logits[0].float()
        tokens = greedy(mine, x, len(golden_tokens))
        prompts.append({
            "prompt_tokens": ids.shape[0],
            "rel_l2_vs_original": rel_l2(a, b),
            "rel_l2_vs_golden": rel_l2(a, golden_logits),
            "original_rel_l2_vs_golden": rel_l2(b, golden_logits),
            "greedy_vs_golden": tokens == golden_tokens,
            "greedy_vs_original": tokens == greedy(original, x, len(golden_tokens)),
        })
    tol = TOLERANCE[dtype_name]
    worst = max(p["rel_l2_vs_original"] for p in prompts)
    if dtype_name == "float32":
        ok = all(p["rel_l2_vs_original"] <= tol and p["rel_l2_vs_golden"] <= tol and p["greedy_vs_golden"] for p in prompts)
    else:
        ok = worst <= tol
    return {
        "emitted": emitted,
        "fixture": fixture,
        "architecture": type(mine).__name__,
        "dtype": dtype_name,
        "tolerance": tol,
        "max_rel_l2_vs_original": worst,
        "max_rel_l2_vs_golden": max(p["rel_l2_vs_golden"] for p in prompts),
        "greedy_vs_golden": all(p["greedy_vs_golden"] for p in prompts),
        "greedy_vs_original": all(p["greedy_vs_original"] for p in prompts),
        "pass": ok,
        "prompts": prompts,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", nargs=2, action="append", metavar=("EMITTED_DIR", "FIXTURE_DIR"), required=True,
                    help="a `kiln compile --target hf` output and the HF fixture it was compiled from")
    ap.add_argument("--dtypes", default="float32,float16,bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    dtypes = args.dtypes.split(",")
    bad = [d for d in dtypes if d not in DTYPES]
    if bad:
        ap.error(f"unknown dtype(s) {bad}; choose from {sorted(DTYPES)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu-check: CUDA is not available (use --device cpu to run on the CPU)", file=sys.stderr)
        return 2
    # Plain IEEE float32 on the GPU: no TF32 matmuls, which would blur the 1e-5 comparison.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    started = time.time()
    runs = [check_pair(e, f, d, args.device) for e, f in args.pair for d in dtypes]
    report = {
        "device": args.device,
        "card": torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "seconds": round(time.time() - started, 2),
        "pass": all(r["pass"] for r in runs),
        "runs": runs,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
