"""The committed LoRA adapter fixtures (test/fixtures/lora) are what test/fixtures/lora/make_adapters.py makes:
regenerating two of them (one Conv1D model, one LLaMA with rank/alpha patterns) reproduces the committed files
bit for bit, and the adapters really change the logits (PEFT's zero-initialized B would make them no-ops)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="the LoRA fixtures are made with transformers + peft")
pytest.importorskip("peft", reason="the LoRA fixtures are made with peft (.ci/setup-python.sh installs it)")

REPO = Path(__file__).resolve().parents[2]
LORA = REPO / "test" / "fixtures" / "lora"


def load_maker():
    spec = importlib.util.spec_from_file_location("make_adapters", LORA / "make_adapters.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("which", [("gpt2", "all_rslora"), ("llama", "all_rslora")])
def test_fixture_is_reproducible(which, tmp_path, monkeypatch):
    mk = load_maker()
    monkeypatch.chdir(REPO)
    fixture, name, args, seed = next(p for p in mk.plan() if p[:2] == which)
    mk.make(fixture, name, args, str(tmp_path), seed)
    for f in ("adapter_config.json", "adapter_model.safetensors", "golden.safetensors"):
        assert (tmp_path / fixture / name / f).read_bytes() == (LORA / fixture / name / f).read_bytes(), f


def test_every_planned_adapter_is_committed_and_moves_the_logits():
    from safetensors.torch import load_file

    for fixture, name, _, _ in load_maker().plan():
        d = LORA / fixture / name
        assert sorted(os.listdir(d)) == ["adapter_config.json", "adapter_model.safetensors", "golden.safetensors"]
        base = load_file(str(REPO / "test" / "fixtures" / "hf" / fixture / "golden.safetensors"))["logits.0"]
        tuned = load_file(str(d / "golden.safetensors"))["logits.0"]
        assert float((tuned - base).norm() / base.norm()) > 0.05, f"{fixture}/{name} barely changes the logits"
