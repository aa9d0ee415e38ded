"""The verifier on checkpoints written by `kiln compile` itself (not the test-only reference converter): every
fixture, tp in {1, 2}, float32, relative L2 <= 1e-5 against the transformers goldens."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FAMILIES, fixture_dir
from kiln_bridge.verify import verify_checkpoint

REPO = Path(__file__).resolve().parents[2]
MODEL_FILE = {"gpt2": "models/gpt2.ts", "gptj": "models/gptj.ts", "llama": "models/llama.ts", "llama3_gqa": "models/llama.ts"}


def kiln_compile(family: str, out: Path, tp: int, pp: int = 1, *extra: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; `kiln compile` cannot run")
    cmd = [node, "bin/kiln.js", "compile", MODEL_FILE[family], "--hf", fixture_dir(family), "--out", str(out),
           "--tp", str(tp), "--pp", str(pp), "--no-typecheck", "--json", *extra]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)


@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("family", FAMILIES)
def test_verify_passes_on_kiln_compile_output(family: str, tp: int, tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    kiln_compile(family, out, tp)
    report = verify_checkpoint(str(out), fixture_dir(family), device="cpu", dtype="float32")
    assert report["ok"], report
    assert report["tolerance"] == 1e-5
    for prompt in report["prompts"]:
        assert prompt["rel_l2"] <= 1e-5


def test_verify_passes_on_kiln_pipeline_parallel_output(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    kiln_compile("llama3_gqa", out, 2, 2)
    report = verify_checkpoint(str(out), fixture_dir("llama3_gqa"), device="cpu", dtype="float32")
    assert report["ok"], report
