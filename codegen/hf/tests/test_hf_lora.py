"""The hf target with LoRA: `kiln compile --target hf --lora A,B` writes each adapter as a PEFT adapter for the
generated remote-code model (fused qkv, TensorRT-LLM module names), and PEFT itself loads them onto that model:
each adapter's logits equal the ones PEFT computed on the original Hugging Face model (the golden.safetensors
beside each adapter fixture), relative L2 <= 1e-5, switching adapters with set_adapter. Skipped with the reason
when torch, transformers, safetensors or peft are missing."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "test" / "fixtures" / "hf"
LORA = REPO / "test" / "fixtures" / "lora"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="kiln-hf-modules-"))
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft", reason="hf target LoRA tests SKIPPED: peft is not installed (.ci/setup-python.sh installs it)")
from peft import PeftModel  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


@pytest.mark.parametrize("family,model,adapters", [("llama", "models/llama.ts", ["attn_qv", "all_rslora"]),
                                                   ("gpt2", "models/gpt2.ts", ["all_rslora", "attn_qkv"])])
def test_peft_loads_kiln_adapters_on_the_remote_code_model(family, model, adapters, tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; `kiln compile` cannot run")
    out = tmp_path / f"kiln-lora-{family}"
    subprocess.run([node, "bin/kiln.js", "compile", model, "--hf", str(FIXTURES / family), "--out", str(out),
                    "--target", "hf", "--lora", ",".join(str(LORA / family / a) for a in adapters), "--no-typecheck",
                    "--json"], cwd=REPO, check=True, capture_output=True, text=True)
    base = transformers.AutoModelForCausalLM.from_pretrained(str(out), trust_remote_code=True, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(base, str(out / "lora" / "1"), adapter_name="a1").eval()
    for i in range(2, len(adapters) + 1):
        peft_model.load_adapter(str(out / "lora" / str(i)), adapter_name=f"a{i}")
    for i, adapter in enumerate(adapters, start=1):
        peft_model.set_adapter(f"a{i}")
        golden = load_file(str(LORA / family / adapter / "golden.safetensors"))
        for p in range(2):
            with torch.no_grad():
                logits = peft_model(torch.tensor([golden[f"input_ids.{p}"].tolist()])).logits[0]
            ref = golden[f"logits.{p}"]
            assert float((logits.double() - ref.double()).norm() / ref.double().norm()) <= 1e-5, (adapter, p)
    with peft_model.disable_adapter(), torch.no_grad():
        plain = peft_model(torch.tensor([golden["input_ids.0"].tolist()])).logits[0]
    ref = load_file(str(FIXTURES / family / "golden.safetensors"))["logits.0"]
    assert float((plain.double() - ref.double()).norm() / ref.double().norm()) <= 1e-5
