"""Execute what `kiln compile` emits (model.py of the engine flow, the trtllm-torch package) on the eager
TensorRT-LLM and hold its logits to the transformers goldens with the verifier's usual tolerances (float32: 1e-5).

Every fixture x tp in {1, 2, 4} x pp in {1, 2} for model.py (--custom-code forced, built-in families included);
every fixture x simulated tp in {1, 2, 4} x pp in {1, 2} for the trtllm-torch package; LLaMA with exact GELU, whose
model.py computes its MLP activation with functional glue (goldens made here with transformers) (its checkpoint has no
mapping; the runtime's tp/pp is simulated); the examples llama_from_primitives and llama_fused_norm (its custom op run through the op's
TypeScript reference transcribed to PyTorch, tests/kernels/). Each output is compiled once per session (in two
Node processes) and shared. Negative tests plant one wrong emitted line and require the verification to fail.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import FAMILIES, fixture_dir
from kiln_bridge.errors import BridgeError
from kiln_bridge.safetensors_io import load_file, save_file
from kiln_bridge.verify import verify_checkpoint

REPO = Path(__file__).resolve().parents[2]
MODEL_FILE = {"gpt2": "models/gpt2.ts", "gptj": "models/gptj.ts", "llama": "models/llama.ts",
              "llama3_gqa": "models/llama.ts", "prim": "examples/llama_from_primitives.ts",
              "fused": "examples/llama_fused_norm/model.ts", "llama_gelu": "models/llama.ts"}
HF = {**{f: f for f in FAMILIES}, "prim": "llama", "fused": "llama"}
REFERENCE_KERNEL = {"fused_add_rms_norm_kernel": str(Path(__file__).parent / "kernels" / "fused_add_rms_norm_reference.py")}

ENGINE_CASES = [(f, tp, pp) for f in FAMILIES for tp in (1, 2, 4) for pp in (1, 2)]
TORCH_CASES = [(f, tp, pp) for f in FAMILIES for tp in (1, 2, 4) for pp in (1, 2)]
EXAMPLE_CASES = [("prim", 2, 1), ("prim", 2, 2), ("fused", 1, 1), ("fused", 2, 2), ("fused", 4, 1)]
# LLaMA with exact (erf) GELU: model.py builds its MLP and erf from functional ops (glue), trtllm-torch its gated MLP
# from Linear in COLUMN/ROW modes. The goldens come from transformers (see gelu_fixture).
GELU_CASES = [(1, 1), (2, 2), (4, 1)]


def _name(model, target, tp, pp):
    return f"{model}-{target}-tp{tp}-pp{pp}"


def _hf(model: str, root: Path) -> str:
    return str(root / "llama_gelu_hf") if model == "llama_gelu" else fixture_dir(HF[model])


def _make_gelu_fixture(out: Path) -> None:
    """The llama fixture's weights with hidden_act='gelu' (exact GELU in transformers' ACT2FN), and goldens computed
    by transformers for the llama fixture's prompts."""
    import torch
    transformers = pytest.importorskip("transformers", reason="the exact-GELU goldens are computed with transformers")
    src = Path(fixture_dir("llama"))
    out.mkdir()
    config = json.loads((src / "config.json").read_text())
    config["hidden_act"] = "gelu"
    (out / "config.json").write_text(json.dumps(config))
    shutil.copyfile(src / "model.safetensors", out / "model.safetensors")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    golden, prompts = {}, load_file(str(src / "golden.safetensors"))
    i = 0
    while f"input_ids.{i}" in prompts:
        ids = prompts[f"input_ids.{i}"]
        with torch.no_grad():
            golden[f"logits.{i}"] = model(ids.long()[None]).logits[0].float().contiguous()
        golden[f"input_ids.{i}"] = ids
        i += 1
    save_file(golden, str(out / "golden.safetensors"))


def _args(root: Path, model: str, target: str, tp: int, pp: int) -> list:
    args = ["compile", MODEL_FILE[model], "--hf", _hf(model, root), "--out", str(root / _name(model, target, tp, pp)),
            "--target", target, "--tp", str(tp), "--pp", str(pp), "--no-typecheck", "--json"]
    return args + (["--custom-code"] if target == "trtllm-engine" else [])


def _compile_all(root: Path, jobs: list) -> None:
    """`kiln compile` for every job, in two Node processes (tests/kiln_compile_many.mjs: one start-up each)."""
    procs = []
    for k in range(2):
        spec = root / f"jobs{k}.json"
        spec.write_text(json.dumps([_args(root, *j) for j in jobs[k::2]]))
        procs.append(subprocess.Popen([shutil.which("node"), str(Path(__file__).parent / "kiln_compile_many.mjs"), str(spec)],
                                      cwd=REPO, stderr=subprocess.PIPE, text=True))
    errors = [p.communicate()[1].strip() for p in procs if p.wait() != 0]
    if errors:
        raise RuntimeError(errors[0])


class Outputs:
    """outputs(model, target, tp, pp) -> the compiled directory; outputs.hf(model) -> its HF fixture directory."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, model: str, target: str, tp: int = 1, pp: int = 1) -> str:
        return str(self.root / _name(model, target, tp, pp))

    def hf(self, model: str) -> str:
        return _hf(model, self.root)


@pytest.fixture(scope="session")
def outputs(tmp_path_factory):
    """Every output this module verifies, compiled once."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed; `kiln compile` cannot run")
    root = tmp_path_factory.mktemp("kiln_outputs")
    _make_gelu_fixture(root / "llama_gelu_hf")
    jobs = [(f, "trtllm-engine", tp, pp) for f, tp, pp in ENGINE_CASES]
    jobs += [("llama_gelu", "trtllm-engine", tp, pp) for tp, pp in GELU_CASES] + [("llama_gelu", "trtllm-torch", 1, 1)]
    jobs += [(f, "trtllm-torch", 1, 1) for f in FAMILIES]
    jobs += [(m, "trtllm-engine", tp, pp) for m, tp, pp in EXAMPLE_CASES]
    _compile_all(root, jobs)
    return Outputs(root)


def _passes(report):
    assert report["ok"], report
    assert report["tolerance"] == 1e-5
    assert all(p["rel_l2"] <= 1e-5 and p["argmax_agree"] == 1.0 for p in report["prompts"]), report
    return report


@pytest.mark.parametrize("family,tp,pp", ENGINE_CASES)
def test_model_py_matches_transformers(outputs, family, tp, pp):
    report = _passes(verify_checkpoint(outputs(family, "trtllm-engine", tp, pp), fixture_dir(family)))
    assert report["executed"] == "model.py" and (report["tp"], report["pp"]) == (tp, pp)


@pytest.mark.parametrize("family,tp,pp", TORCH_CASES)
def test_trtllm_torch_package_matches_transformers(outputs, family, tp, pp):
    report = _passes(verify_checkpoint(outputs(family, "trtllm-torch"), fixture_dir(family), tp=tp, pp=pp))
    assert report["executed"] == "trtllm-torch" and (report["tp"], report["pp"]) == (tp, pp)


@pytest.mark.parametrize("model,tp,pp", EXAMPLE_CASES)
def test_examples_match_transformers(outputs, model, tp, pp):
    report = _passes(verify_checkpoint(outputs(model, "trtllm-engine", tp, pp), fixture_dir("llama"),
                                       kernels=REFERENCE_KERNEL))
    # llama_from_primitives maps onto TensorRT-LLM's built-in LLaMA unless --custom-code; with it, model.py runs
    assert report["executed"] == "model.py"


@pytest.mark.parametrize("tp,pp", GELU_CASES)
def test_functional_glue_matches_transformers(outputs, tp, pp):
    source = Path(outputs("llama_gelu", "trtllm-engine", tp, pp), "model.py").read_text()
    assert "def _kiln_erf(x):" in source and "F.where(" in source  # the glue under test is really emitted
    report = _passes(verify_checkpoint(outputs("llama_gelu", "trtllm-engine", tp, pp), outputs.hf("llama_gelu")))
    assert report["executed"] == "model.py"
    package = Path(outputs("llama_gelu", "trtllm-torch"), "kiln_llama", "modeling_kiln_llama.py").read_text()
    assert "class KilnGatedMLP(nn.Module):" in package
    _passes(verify_checkpoint(outputs("llama_gelu", "trtllm-torch"), outputs.hf("llama_gelu"), tp=tp, pp=pp))


def test_half_precision_runs_within_its_tolerance(outputs):
    for dtype, tol in (("float16", 2e-2), ("bfloat16", 5e-2)):
        report = verify_checkpoint(outputs("llama3_gqa", "trtllm-engine", 2, 2), fixture_dir("llama3_gqa"), dtype=dtype)
        assert report["ok"] and report["tolerance"] == tol, report
        report = verify_checkpoint(outputs("gptj", "trtllm-torch"), fixture_dir("gptj"), dtype=dtype, tp=2)
        assert report["ok"] and report["tolerance"] == tol, report


# ---- negative tests: one planted bug in what Kiln emitted must fail the verification ---------------------------

def _planted(src: str, dst: Path, file: str, old: str, new: str) -> str:
    shutil.copytree(src, dst)
    path = dst / file
    text = path.read_text()
    assert text.count(old) >= 1, f"{file} no longer contains {old!r}; update the planted bug"
    path.write_text(text.replace(old, new))
    return str(dst)


def _fails(ckpt: str, hf: str, **kw) -> None:
    report = verify_checkpoint(ckpt, fixture_dir(hf), **kw)
    assert not report["ok"], "a planted bug passed verification"
    assert max(p["rel_l2"] for p in report["prompts"]) > 1e-3


def test_wrong_softmax_scale_fails(outputs, tmp_path):
    _fails(_planted(outputs("llama", "trtllm-engine", 2, 1), tmp_path / "e", "model.py", "q_scaling=1.0", "q_scaling=2.0"), "llama")
    src = outputs("llama", "trtllm-torch")
    _fails(_planted(src, tmp_path / "t", "kiln_llama/modeling_kiln_llama.py", "q_scaling=1.0", "q_scaling=2.0"), "llama", tp=2)


def test_swapped_rotary_style_fails(outputs, tmp_path):
    src = outputs("llama", "trtllm-engine", 2, 1)
    _fails(_planted(src, tmp_path / "e", "config.json", '"rope_gpt_neox"', '"rope_gptj"'), "llama")
    src = outputs("llama", "trtllm-torch")
    _fails(_planted(src, tmp_path / "t", "kiln_llama/modeling_kiln_llama.py", "is_neox=True", "is_neox=False"), "llama")


def test_missing_residual_fails(outputs, tmp_path):
    src = outputs("gpt2", "trtllm-engine", 2, 1)
    text = (Path(src) / "model.py").read_text()
    line = re.search(r"hidden_states_2 = hidden_states_1 \+ mlp_output", text).group(0)
    _fails(_planted(src, tmp_path / "e", "model.py", line, "hidden_states_2 = mlp_output"), "gpt2")


def test_bias_on_every_rank_without_reduce_fails(outputs, tmp_path):
    # The MLP's RowLinear loses its tp group: each rank adds the whole proj bias to its partial sum, none all-reduced.
    src = outputs("gpt2", "trtllm-engine", 2, 1)
    text = (Path(src) / "model.py").read_text()
    mlp = text[text.index("self.mlp = MLP("):]
    old = mlp[: mlp.index(")") + 1]
    _fails(_planted(src, tmp_path / "e", "model.py", old, old.replace("tp_group=config.mapping.tp_group", "tp_group=None")), "gpt2")


def test_fc_and_gate_swapped_fails(outputs, tmp_path):
    dst = tmp_path / "e"
    shutil.copytree(outputs("llama", "trtllm-engine", 2, 1), dst)
    for rank in (0, 1):
        path = dst / f"rank{rank}.safetensors"
        w = load_file(str(path))
        for i in range(2):
            fc, gate = f"transformer.layers.{i}.mlp.fc.weight", f"transformer.layers.{i}.mlp.gate.weight"
            w[fc], w[gate] = w[gate], w[fc]
        save_file(w, str(path))
    _fails(str(dst), "llama")


def test_missing_tensor_is_a_one_line_error(outputs, tmp_path):
    dst = tmp_path / "e"
    shutil.copytree(outputs("llama", "trtllm-engine", 2, 1), dst)
    w = load_file(str(dst / "rank1.safetensors"))
    del w["transformer.layers.1.mlp.gate.weight"]
    save_file(w, str(dst / "rank1.safetensors"))
    with pytest.raises(BridgeError, match=r"rank1\.safetensors: Required but not provided tensors: .*mlp\.gate\.weight"):
        verify_checkpoint(str(dst), fixture_dir("llama"))


def test_triton_kernel_without_triton_names_the_module(outputs):
    try:
        import triton  # noqa: F401
        pytest.skip("triton is installed here; the reference kernel is optional")
    except ImportError:
        pass
    with pytest.raises(BridgeError, match=r"model\.py: import failed: ModuleNotFoundError: No module named 'triton'"):
        verify_checkpoint(outputs("fused", "trtllm-engine", 1, 1), fixture_dir("llama"))
