"""The verifier on checkpoints `kiln compile` writes from pre-quantized inputs (test/fixtures/prequant, made by
scripts/prequant-fixtures/make.py): ModelOpt and compressed-tensors FP8, AutoAWQ and AutoGPTQ INT4, tp in {1, 2}.
The rank files are dequantized with TensorRT-LLM 1.2.1's semantics (kiln_bridge/quantized.py) and must reproduce the
fixtures' goldens (transformers with those semantics) to float32 roundoff: relative L2 <= 1e-5."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from kiln_bridge.errors import UnsupportedConfig
from kiln_bridge.safetensors_io import load_file, save_file
from kiln_bridge.verify import verify_checkpoint

REPO = Path(__file__).resolve().parents[2]
PREQUANT = REPO / "test" / "fixtures" / "prequant"
FIXTURES = ["modelopt_fp8", "ct_fp8", "awq_int4", "gptq_int4"]


def kiln_compile(fixture: str, out: Path, tp: int) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; `kiln compile` cannot run")
    cmd = [
        node,
        "bin/kiln.js",
        "compile",
        "models/llama.ts",
        "--hf",
        str(PREQUANT / fixture),
        "--out",
        str(out),
        "--tp",
        str(tp),
        "--no-typecheck",
        "--json",
    ]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)


@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("fixture", FIXTURES)
def test_prequantized_checkpoint_verifies(fixture: str, tp: int, tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    kiln_compile(fixture, out, tp)
    report = verify_checkpoint(str(out), str(PREQUANT / fixture), device="cpu", dtype="float32")
    assert report["ok"], report
    for prompt in report["prompts"]:
        assert prompt["rel_l2"] <= 1e-5, prompt


@pytest.mark.parametrize(
    "fixture,tensor",
    [
        ("modelopt_fp8", "transformer.layers.1.mlp.proj.weights_scaling_factor"),
        ("awq_int4", "transformer.layers.0.attention.qkv.zero"),
    ],
)
def test_a_wrong_scale_fails_verification(fixture: str, tensor: str, tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    kiln_compile(fixture, out, 1)
    weights = load_file(str(out / "rank0.safetensors"))
    weights = {k: v.clone() for k, v in weights.items()}
    weights[tensor] = weights[tensor] * 1.05
    save_file(weights, str(out / "rank0.safetensors"))
    report = verify_checkpoint(str(out), str(PREQUANT / fixture), device="cpu", dtype="float32", tolerance=1e-5)
    assert not report["ok"]


def test_a_quantized_kv_cache_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    kiln_compile("ct_fp8", out, 1)
    config = (out / "config.json").read_text().replace('"kv_cache_quant_algo": null', '"kv_cache_quant_algo": "FP8"')
    (out / "config.json").write_text(config)
    with pytest.raises(UnsupportedConfig, match="kv_cache_quant_algo='FP8'"):
        verify_checkpoint(str(out), str(PREQUANT / "ct_fp8"), device="cpu", dtype="float32")
