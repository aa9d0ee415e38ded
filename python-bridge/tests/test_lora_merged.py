"""The bridge verifier (an independent PyTorch transcription of TensorRT-LLM's model classes) on rank files written by
`kiln compile --lora DIR --lora-merge`: at tp in {1, 2} they reproduce the logits PEFT computed for the base model
with the adapter (the golden.safetensors beside each adapter fixture), relative L2 <= 1e-5; the base checkpoint
does not, so the check can fail."""
from __future__ import annotations

from pathlib import Path

import pytest
from kiln_bridge.verify import verify_checkpoint
from test_kiln_output import kiln_compile

LORA = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "lora"


@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("family,adapter", [("llama", "all_rslora"), ("gpt2", "all_rslora"), ("llama3_gqa", "all_rslora")])
def test_merged_adapter_matches_peft(family: str, adapter: str, tp: int, tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    kiln_compile(family, out, tp, 1, "--lora", str(LORA / family / adapter), "--lora-merge")
    report = verify_checkpoint(str(out), str(LORA / family / adapter), device="cpu", dtype="float32")
    assert report["ok"], report
    assert report["tolerance"] == 1e-5
    assert all(p["rel_l2"] <= 1e-5 for p in report["prompts"])


def test_base_checkpoint_misses_the_adapter_goldens(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    kiln_compile("llama", out, 2)
    report = verify_checkpoint(str(out), str(LORA / "llama" / "all_rslora"), device="cpu", dtype="float32")
    assert not report["ok"]
    assert min(p["rel_l2"] for p in report["prompts"]) > 0.05
