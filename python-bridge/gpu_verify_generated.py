"""Run the generated-code verifier over a folder of `kiln compile` outputs on a GPU, for python-bridge/VERIFIED.md.

Usage: python gpu_verify_generated.py OUTPUTS_DIR RESULTS.json [DEVICE (default cuda)]
OUTPUTS_DIR holds <fixture>-e-tp{1,2} (model.py, --custom-code), <fixture>-t (trtllm-torch), fused-e-tp{1,2}
(llama_fused_norm with its Triton kernel) and fixtures/<fixture>/golden.safetensors. Every output runs in float16
and bfloat16 on cuda (tp 2 simulated by threads on the one GPU); one JSON row per run, and a markdown table on stdout.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kiln_bridge.verify import verify_checkpoint  # noqa: E402

root, results_path = sys.argv[1], sys.argv[2]
device = sys.argv[3] if len(sys.argv) > 3 else "cuda"
KERNELS = {}
if device == "cpu":  # no Triton here: the op's TypeScript reference transcribed to PyTorch
    KERNELS = {"fused_add_rms_norm_kernel": os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests", "kernels",
                                                         "fused_add_rms_norm_reference.py")}
rows = []
fixtures = ["gpt2", "gptj", "llama", "llama3_gqa"]
cases = [(f"{f}-e-tp{tp}", f, 1) for f in fixtures for tp in (1, 2)]
cases += [(f"{f}-t", f, tp) for f in fixtures for tp in (1, 2)]  # the trtllm-torch package, tp simulated
cases += [(f"fused-e-tp{tp}", "llama", 1) for tp in (1, 2)]
name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
print(f"device: {name}; torch {torch.__version__}")
print("| output | target | dtype | tp | rel L2 (max over prompts) | argmax agreement | wall s (all prompts) | pass |")
print("|---|---|---|---|---|---|---|---|")
for name, fixture, torch_tp in cases:
    for dtype in ("float16", "bfloat16"):
        start = time.perf_counter()
        try:
            r = verify_checkpoint(os.path.join(root, name), os.path.join(root, "fixtures", fixture), device=device,
                                  dtype=dtype, tp=torch_tp, kernels=KERNELS)
        except Exception as e:  # noqa: BLE001 - recorded, the table shows it
            rows.append({"output": name, "dtype": dtype, "error": f"{type(e).__name__}: {e}"})
            print(f"| {name} | | {dtype} | | ERROR {type(e).__name__}: {e} | | | no |")
            continue
        wall = time.perf_counter() - start
        rel = max(p["rel_l2"] for p in r["prompts"])
        agree = sum(p["argmax_matches"] for p in r["prompts"]) / sum(p["tokens"] for p in r["prompts"])
        rows.append({"output": name, "executed": r.get("executed"), "dtype": dtype, "tp": r["tp"], "rel_l2": rel,
                     "argmax": agree, "wall_s": wall, "ok": r["ok"], "tolerance": r["tolerance"],
                     "device": name})
        print(f"| {name} | {r.get('executed')} | {dtype} | {r['tp']} | {rel:.2e} (tol {r['tolerance']:g}) | "
              f"{agree:.3f} | {wall:.2f} | {'yes' if r['ok'] else 'NO'} |")
with open(results_path, "w") as f:
    json.dump(rows, f, indent=1)
