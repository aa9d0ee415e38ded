"""Shared test setup: import paths, fixture locations, and checkpoint helpers.

The HF fixtures (tiny fp32 random models + golden logits made with transformers 5.17) live in the repository at
test/fixtures/hf/{gpt2,gptj,llama,llama3_gqa}; checkpoints are produced per test by the independent
reference converter (tests/reference_convert.py) into pytest's tmp_path.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
BRIDGE = TESTS.parent
FIXTURES = BRIDGE.parent / "test" / "fixtures" / "hf"
for p in (str(BRIDGE), str(TESTS)):
    if p not in sys.path:
        sys.path.insert(0, p)

from reference_convert import convert  # noqa: E402

FAMILIES = ["gpt2", "gptj", "llama", "llama3_gqa"]


def fixture_dir(name: str) -> str:
    return str(FIXTURES / name)


def edit_config(ckpt: str, **changes) -> None:
    path = os.path.join(ckpt, "config.json")
    with open(path) as f:
        config = json.load(f)
    config.update(changes)
    with open(path, "w") as f:
        json.dump(config, f)


@pytest.fixture
def make_ckpt(tmp_path):
    """make_ckpt(family, tp=1, pp=1, **convert_kwargs) -> checkpoint dir (a fresh one per call)."""
    counter = iter(range(1000))

    def make(family: str, tp: int = 1, pp: int = 1, **kwargs) -> str:
        out = tmp_path / f"{family}_tp{tp}_pp{pp}_{next(counter)}"
        return convert(fixture_dir(family), str(out), tp=tp, pp=pp, **kwargs)

    return make
