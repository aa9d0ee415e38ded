"""The verifier (TensorRT-LLM's MoE semantics from its sources) on mixture-of-experts checkpoints written by
`kiln compile`: Mixtral (LLaMA with a moe config) and Qwen2-MoE (QWen's SharedMoE) from the zoo fixtures, at
tp in {1, 2, 4} x moe_ep in {1, 2}, float32, relative L2 <= 1e-5 against the transformers goldens; `--custom-code`
outputs (model.py building tensorrt_llm.layers.MOE / SharedMoE) run on the eager TensorRT-LLM; a Kiln checkpoint
whose experts are moved to the wrong rank fails."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from kiln_bridge.safetensors_io import load_file, save_file
from kiln_bridge.verify import verify_checkpoint

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "test" / "fixtures" / "zoo"
MODEL_FILE = {"mixtral": "models/mixtral.ts", "qwen2_moe": "models/qwen2_moe.ts"}
SPLITS = [(1, 1), (2, 1), (4, 1), (2, 2), (4, 2)]
ARCHITECTURE = {"mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict[tuple, Path]:
    """Every (family, tp, ep) output, compiled in one Node process (tests/kiln_compile_many.mjs)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; `kiln compile` cannot run")
    root = tmp_path_factory.mktemp("kiln_moe")
    outs, jobs = {}, []
    for family in MODEL_FILE:
        for tp, ep in SPLITS:
            out = root / f"{family}_tp{tp}_ep{ep}"
            outs[(family, tp, ep)] = out
            jobs.append(["compile", MODEL_FILE[family], "--hf", str(ZOO / family), "--out", str(out), "--tp", str(tp),
                         "--moe-ep", str(ep), "--no-typecheck", "--json"])
        out = root / f"{family}_custom"
        outs[(family, "custom")] = out
        jobs.append(["compile", MODEL_FILE[family], "--hf", str(ZOO / family), "--out", str(out), "--tp", "4", "--moe-ep",
                     "2", "--custom-code", "--no-typecheck", "--json"])
    spec = root / "jobs.json"
    spec.write_text(json.dumps(jobs))
    subprocess.run([node, str(Path(__file__).parent / "kiln_compile_many.mjs"), str(spec)], cwd=REPO, check=True,
                   capture_output=True, text=True)
    return outs


@pytest.mark.parametrize("tp,ep", SPLITS, ids=lambda v: str(v))
@pytest.mark.parametrize("family", list(MODEL_FILE))
def test_verify_passes_on_kiln_moe_output(compiled, family: str, tp: int, ep: int) -> None:
    out = compiled[(family, tp, ep)]
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == ARCHITECTURE[family]
    assert (config["mapping"]["moe_tp_size"], config["mapping"]["moe_ep_size"]) == (tp // ep, ep)
    report = verify_checkpoint(str(out), str(ZOO / family), device="cpu", dtype="float32")
    assert report["ok"] and report["tolerance"] == 1e-5, report
    assert report["warnings"] == []
    for prompt in report["prompts"]:
        assert prompt["rel_l2"] <= 1e-5 and prompt["argmax_agree"] == 1.0


@pytest.mark.parametrize("family", list(MODEL_FILE))
def test_verify_runs_kiln_moe_model_py(compiled, family: str) -> None:
    out = compiled[(family, "custom")]
    assert ("SharedMoE(" if family == "qwen2_moe" else "MOE(") in (out / "model.py").read_text()
    report = verify_checkpoint(str(out), str(ZOO / family), device="cpu", dtype="float32")
    assert report["ok"], report
    assert all(p["rel_l2"] <= 1e-5 for p in report["prompts"])


def test_experts_on_the_wrong_rank_fail(compiled, tmp_path: Path) -> None:
    src = compiled[("mixtral", 2, 2)]
    bad = tmp_path / "ckpt"
    shutil.copytree(src, bad)
    # clone: the loaded tensors map the files that are about to be rewritten
    r0, r1 = ({k: v.clone() for k, v in load_file(str(bad / f"rank{r}.safetensors")).items()} for r in (0, 1))
    for name in [n for n in r0 if n.endswith(("mlp.fc.weight", "mlp.proj.weight"))]:
        r0[name], r1[name] = r1[name], r0[name]
    save_file(r0, str(bad / "rank0.safetensors"))
    save_file(r1, str(bad / "rank1.safetensors"))
    assert not verify_checkpoint(str(bad), str(ZOO / "mixtral"))["ok"]
