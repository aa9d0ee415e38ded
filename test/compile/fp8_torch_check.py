# Cross-check of a Kiln FP8 checkpoint against PyTorch's own float8_e4m3fn conversion (ModelOpt's route: clamp to
# +-448, then cast), reading the rank files with safetensors' torch loader, as TensorRT-LLM's from_checkpoint does.
# Usage: fp8_torch_check.py FP8_CKPT FLOAT32_CKPT (the same model compiled without --quant, --dtype float32).
import json
import sys

import torch
from safetensors.torch import load_file

q, ref = sys.argv[1], sys.argv[2]
cfg = json.load(open(f"{q}/config.json"))
print("quantization:", cfg["quantization"], "dtype:", cfg["dtype"])
n = 0
for r in range(cfg["mapping"]["world_size"]):
    a = load_file(f"{q}/rank{r}.safetensors")
    b = load_file(f"{ref}/rank{r}.safetensors")
    for name, t in a.items():
        if t.dtype != torch.float8_e4m3fn:
            continue
        mod = name[: -len(".weight")]
        s = a[f"{mod}.weights_scaling_factor"]
        act = a[f"{mod}.activation_scaling_factor"]
        assert s.dtype == torch.float32 and s.shape == (1,) and act.dtype == torch.float32 and act.shape == (1,), name
        group = [mod.replace(".gate", ".fc"), mod.replace(".fc", ".gate")] if mod.endswith((".fc", ".gate")) else [mod]
        amax = max(b[f"{g}.weight"].abs().max() for g in group)
        assert torch.equal(s, (amax / 448).reshape(1).float()), (name, s, amax / 448)
        want = (b[name] / s).clamp(-448, 448).to(torch.float8_e4m3fn)
        assert torch.equal(t.view(torch.uint8), want.view(torch.uint8)), name
        n += 1
    kv = [k for k in a if k.endswith("kv_cache_scaling_factor")]
    assert all(a[k].dtype == torch.float32 and a[k].shape == (1,) for k in kv)
    print(f"rank{r}: {sum(1 for t in a.values() if t.dtype == torch.float8_e4m3fn)} float8_e4m3fn weights, {len(kv)} kv_cache_scaling_factor, other dtypes {sorted({str(t.dtype) for t in a.values()})}")
print(f"OK: {n} FP8 weights byte-identical to torch's (w / scale).clamp(-448, 448).to(float8_e4m3fn), scales = amax / 448")
