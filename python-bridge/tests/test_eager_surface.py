"""The eager TensorRT-LLM covers every name Kiln's emitters can write. The names are read from the emitters'
sources and tables (imports.use / use("module", "Name") pairs, c.F / em.F functional calls, the glue helpers'
F.x calls and Tensor methods), not listed by hand, so a new emitted name without an eager counterpart fails here;
each must also be a name of the 1.2 API manifests (codegen/apicheck)."""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EMITTERS = [p for d in ("codegen/trtllm-engine", "codegen/trtllm-torch") for p in sorted((REPO / d).glob("*.ts"))
            if not p.name.endswith(".test.ts")]
SOURCES = {p.name: p.read_text() for p in EMITTERS}
MANIFESTS = [json.loads((REPO / "codegen/apicheck" / f).read_text()) for f in
             ("trtllm-1.2.json", "trtllm-torch-1.2.json", "trtllm-1.2-python-plugin.json")]


# codegen/apicheck/README.md lists _utils among the files the manifests do not cover ("unverified" names).
NOT_IN_MANIFESTS = {"tensorrt_llm._utils"}


def _imports():
    pairs = set()
    for text in SOURCES.values():
        pairs.update(re.findall(r'\buse\("(tensorrt_llm[\w.]*)", "(\w+)"', text))
    return sorted(pairs)


def _functional():
    names = set()
    for text in SOURCES.values():
        names.update(re.findall(r'\bF\("(\w+)"\)', text))
        names.update(re.findall(r'\bbinary\("[^"]*", "(\w+)"\)', text))
        for helper in re.findall(r'"(    [^"\n]*)"', text):  # emitted Python lines of the glue helpers
            names.update(re.findall(r"\bF\.(\w+)\(", helper))
    return sorted(names)


def _tensor_methods():
    text = SOURCES["model-py-ops.ts"]
    return sorted(set(re.findall(r'"[^"\n]*\bx\.(\w+)\(', text)))


def _in_manifest(module: str, name: str) -> bool:
    for m in MANIFESTS:
        mod = m.get("modules", {}).get(module, {})
        if any(name in (mod.get(k) or {}) for k in ("classes", "functions", "partial_functions", "enums", "constants",
                                                     "variables", "reexports", "names")):
            return True
        if f"{module}.{name}" in m.get("resolution", {}):
            return True
    return False


def test_the_emitters_are_read():
    assert len(_imports()) > 20 and "matmul" in _functional() and "ndim" in _tensor_methods()


@pytest.mark.parametrize("module,name", _imports())
def test_every_imported_name_exists_in_the_eager_package(module, name):
    eager = importlib.import_module("kiln_bridge.eager_trtllm" + module[len("tensorrt_llm"):])
    assert hasattr(eager, name), f"the emitters import {module}.{name}; eager_trtllm lacks it"
    if module not in NOT_IN_MANIFESTS:
        assert _in_manifest(module, name), f"{module}.{name} is not in the 1.2 API manifests"


@pytest.mark.parametrize("name", _functional())
def test_every_functional_op_exists(name):
    from kiln_bridge.eager_trtllm import functional

    assert callable(getattr(functional, name, None)), f"the emitters call F.{name}; eager functional lacks it"
    assert _in_manifest("tensorrt_llm.functional", name), f"F.{name} is not in the 1.2 API manifest"


@pytest.mark.parametrize("method", _tensor_methods())
def test_every_tensor_method_exists(method):
    from kiln_bridge.eager_trtllm.functional import Tensor

    assert callable(getattr(Tensor, method, None)), f"the glue helpers call Tensor.{method}; eager Tensor lacks it"
