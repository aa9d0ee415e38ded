"""The bridge verifier on runtime LoRA: the .npy tensors `kiln compile --lora` writes, split per tp rank the way
TensorRT-LLM's LoRA cache splits them and added to each rank's Linear (kiln_bridge/lora_runtime.py, written from
TensorRT-LLM's sources), reproduce PEFT's logits at tp 1 and 2 (relative L2 <= 1e-5); with the wrong task's tensors
they do not."""
from __future__ import annotations

from pathlib import Path

import pytest
from kiln_bridge.lora_runtime import fold_runtime_lora
from kiln_bridge.verify import verify_checkpoint
from test_kiln_output import kiln_compile

LORA = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "lora"


@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("family,adapters", [("llama", ["attn_qv", "all_rslora"]), ("gpt2", ["all_rslora"]),
                                             ("llama3_gqa", ["all_rslora"])])
def test_runtime_tensors_reproduce_peft(family: str, adapters: list, tp: int, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    kiln_compile(family, ckpt, tp, 1, "--lora", ",".join(str(LORA / family / a) for a in adapters))
    for task, adapter in enumerate(adapters, start=1):
        folded = tmp_path / f"task{task}"
        fold_runtime_lora(str(ckpt), str(ckpt / "lora" / str(task)), str(folded))
        report = verify_checkpoint(str(folded), str(LORA / family / adapter), device="cpu", dtype="float32")
        assert report["ok"], report
        assert all(p["rel_l2"] <= 1e-5 for p in report["prompts"])


def test_the_other_tasks_tensors_miss(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    kiln_compile("llama", ckpt, 2, 1, "--lora", f"{LORA / 'llama' / 'attn_qv'},{LORA / 'llama' / 'all_rslora'}")
    folded = tmp_path / "wrong"
    fold_runtime_lora(str(ckpt), str(ckpt / "lora" / "2"), str(folded))
    report = verify_checkpoint(str(folded), str(LORA / "llama" / "attn_qv"), device="cpu", dtype="float32")
    assert not report["ok"]
