"""The hf target for real: `kiln compile --target hf` output loads through transformers' trust_remote_code, its
logits equal the original Hugging Face model's and the golden file's (relative L2 <= 1e-5, float32), generate()
reproduces the golden greedy tokens through the KV cache, a left-padded batch gives the same tokens as single
prompts, and the safetensors names are exactly the generated modules' state_dict keys.

Needs torch, safetensors and transformers (5.17 in the local wheel index; .ci/setup-python.sh installs them) and
node (to run `kiln compile`); without them the module is skipped with the reason shown.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "test" / "fixtures" / "hf"
ZOO = REPO / "test" / "fixtures" / "zoo"
MODEL_FILE = {"gpt2": "models/gpt2.ts", "gptj": "models/gptj.ts", "llama": "models/llama.ts", "llama3_gqa": "models/llama.ts",
              "mistral": "models/mistral.ts", "qwen2": "models/qwen2.ts", "qwen3": "models/qwen3.ts",
              "gemma": "models/gemma.ts", "gemma2": "models/gemma2.ts", "gpt_neox": "models/gpt_neox.ts", "gpt_neox_seq": "models/gpt_neox.ts",
              "starcoder2": "models/starcoder2.ts", "phi3": "models/phi3.ts",
              "phi3_longrope": "models/phi3.ts", "llama_yarn": "models/llama.ts", "llama_dynamic": "models/llama.ts",
              "falcon": "models/falcon.ts",
              "mixtral": "models/mixtral.ts", "qwen2_moe": "models/qwen2_moe.ts", "qwen2_moe_norm": "models/qwen2_moe.ts",
              "qwen3_moe": "models/qwen3_moe.ts"}
# Zoo fixtures (scripts/zoo-fixtures/make.py) live beside the original ones; their sliding windows are shorter than
# the prompts, so generate() through the KV cache checks the window mask too.
FIXTURE_DIR = {f: (FIXTURES if f in ("gpt2", "gptj", "llama", "llama3_gqa") else ZOO) / f for f in MODEL_FILE}
# Goldens made with transformers' eager attention (scripts/zoo-fixtures/make.py EAGER): its SDPA path drops Gemma 2's
# attention-logit soft-capping, so the original model is loaded the same way.
EAGER_ATTENTION = {"gemma2"}
# Dynamic NTK follows the call's length: transformers' cached generate() rotates each new token with the frequencies
# of the current length but keeps the cached keys, so it differs from the goldens' full recompute; the generated
# model is held to the original model's own generate() there. (LongRoPE drops the cache at its switch point, as
# Phi3ForCausalLM does, so phi3_longrope meets the goldens.)
LENGTH_DEPENDENT_ROPE = {"llama_dynamic"}
GLUE_MODEL = "codegen/hf/tests/glue_model.ts"
TOLERANCE = 1e-5

# Offline, and remote code copied into a private cache instead of the user's ~/.cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="kiln-hf-modules-"))
MISSING = "hf target tests SKIPPED: {} is not installed (.ci/setup-python.sh installs it from the local wheel index)"
torch = pytest.importorskip("torch", reason=MISSING.format("torch"))
pytest.importorskip("safetensors", reason=MISSING.format("safetensors"))
transformers = pytest.importorskip("transformers", reason=MISSING.format("transformers"))
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def rel_l2(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    node = shutil.which("node")
    if node is None:
        pytest.skip("hf target tests SKIPPED: node is not installed; `kiln compile` cannot run")
    base = tmp_path_factory.mktemp("hf-target")
    out = {fixture: base / f"kiln-{fixture}" for fixture in MODEL_FILE}
    # Distinct directory names keep transformers' remote-code module caches apart; the compiles run in parallel.
    runs = {
        fixture: subprocess.Popen(
            [node, "bin/kiln.js", "compile", model, "--hf", str(FIXTURE_DIR[fixture]), "--out", str(out[fixture]),
             "--target", "hf", "--no-typecheck", "--json"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for fixture, model in MODEL_FILE.items()
    }
    for fixture, run in runs.items():
        stdout, stderr = run.communicate()
        assert run.returncode == 0, stderr
        assert json.loads(stdout)["target"] == "hf", fixture
    return out


def kiln(*args: str) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("hf target tests SKIPPED: node is not installed; `kiln` cannot run")
    done = subprocess.run([node, "bin/kiln.js", *args, "--no-typecheck"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def golden(fixture: str):
    g = load_file(str(FIXTURE_DIR[fixture] / "golden.safetensors"))
    return [(g[f"input_ids.{i}"].long(), g[f"logits.{i}"], g[f"greedy.{i}"].tolist()) for i in range(2)]


def load(path, **kw):
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path), trust_remote_code=True, **kw)
    return (model[0].eval(), model[1]) if isinstance(model, tuple) else model.eval()


@pytest.mark.parametrize("fixture", list(MODEL_FILE))
def test_logits_and_greedy_match_the_original_model(emitted, fixture):
    model, info = load(emitted[fixture], output_loading_info=True)
    assert type(model).__name__.startswith("Kiln") and type(model).__name__.endswith("ForCausalLM")
    assert {k: v for k, v in info.items() if v} == {}
    eager = {"attn_implementation": "eager"} if fixture in EAGER_ATTENTION else {}
    original = transformers.AutoModelForCausalLM.from_pretrained(str(FIXTURE_DIR[fixture]), **eager).eval()
    for ids, logits, greedy in golden(fixture):
        with torch.no_grad():
            mine = model(ids[None]).logits[0]
            theirs = original(ids[None]).logits[0]
        assert rel_l2(mine, logits) <= TOLERANCE
        assert rel_l2(mine, theirs) <= TOLERANCE
        out = model.generate(ids[None], max_new_tokens=len(greedy), do_sample=False)
        if fixture in LENGTH_DEPENDENT_ROPE:
            greedy = original.generate(ids[None], max_new_tokens=len(greedy), do_sample=False)[0, ids.shape[0]:].tolist()
        assert out[0, ids.shape[0]:].tolist() == greedy


@pytest.mark.parametrize("fixture", ["gpt2", "llama3_gqa", "mistral"])
def test_left_padded_batch_generates_like_single_prompts(emitted, fixture):
    model = load(emitted[fixture])
    (a, _, greedy_a), (b, _, greedy_b) = golden(fixture)
    pad = a.shape[0] - b.shape[0]
    ids = torch.stack([a, torch.cat([torch.zeros(pad, dtype=torch.long), b])])
    mask = torch.stack([torch.ones_like(a), torch.cat([torch.zeros(pad, dtype=torch.long), torch.ones_like(b)])])
    out = model.generate(ids, attention_mask=mask, max_new_tokens=len(greedy_a), do_sample=False, pad_token_id=0)
    assert out[0, -len(greedy_a):].tolist() == greedy_a
    assert out[1, -len(greedy_b):].tolist() == greedy_b


@pytest.mark.parametrize("fixture", ["gptj", "llama"])
def test_safetensors_names_are_the_state_dict(emitted, fixture):
    with safe_open(str(emitted[fixture] / "model.safetensors"), "pt") as f:
        stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        assert f.metadata()["format"] == "pt"
    model = load(emitted[fixture])
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == stored


def test_config_names_the_generated_classes(emitted):
    config = json.loads((emitted["llama3_gqa"] / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_kiln_llama.KilnLlamaConfig",
        "AutoModelForCausalLM": "modeling_kiln_llama.KilnLlamaForCausalLM",
    }
    loaded = transformers.AutoConfig.from_pretrained(str(emitted["llama3_gqa"]), trust_remote_code=True)
    assert type(loaded).__name__ == "KilnLlamaConfig"
    assert (loaded.num_hidden_layers, loaded.num_key_value_heads, loaded.head_dim) == (3, 2, 8)
    assert loaded.tie_word_embeddings is False


def test_gpu_check_script_runs_on_cpu(emitted, tmp_path):
    """gpu-check.py (run by hand on the GPU machine) stays runnable: its float32 verdict and JSON shape. It is
    loaded in-process (the file name has a dash) so torch and transformers are not imported twice."""
    spec = importlib.util.spec_from_file_location("kiln_gpu_check", REPO / "codegen" / "hf" / "gpu-check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "report.json"
    status = gpu_check.main(["--device", "cpu", "--dtypes", "float32", "--out", str(out),
                             "--pair", str(emitted["gptj"]), str(FIXTURES / "gptj")])
    assert status == 0
    report = json.loads(out.read_text())
    assert report["pass"] is True and report["device"] == "cpu"
    [run] = report["runs"]
    assert run["dtype"] == "float32" and run["architecture"] == "KilnGptjForCausalLM"
    assert run["max_rel_l2_vs_golden"] <= TOLERANCE and run["greedy_vs_golden"] is True


def test_custom_glue_model_matches_kiln_interpreter(tmp_path):
    """A custom architecture (parallel residual, learned and per-layer scales, position term, a channel mixer made
    of reshape/transpose/softmax/split/concat/...): the generated glue code against `kiln run`'s CPU interpreter."""
    out = tmp_path / "kiln-glue"
    kiln("compile", GLUE_MODEL, "--hf", str(FIXTURES / "llama"), "--out", str(out), "--target", "hf")
    prompt = [7, 300, 12, 45, 99, 3, 511, 250, 1, 64, 128]
    logits_file = tmp_path / "logits.safetensors"
    run = json.loads(kiln("run", GLUE_MODEL, "--hf", str(FIXTURES / "llama"), "--ids", ",".join(map(str, prompt)),
                          "--max-new-tokens", "8", "--json", "--logits-out", str(logits_file)))
    config = json.loads((out / "config.json").read_text())
    assert len(config["layer_constant_0"]) == 2  # the per-layer 1/(i+1) became a config list
    model = load(out)
    ids = torch.tensor([prompt])
    with torch.no_grad():
        mine = model(ids).logits[0]
    assert rel_l2(mine, load_file(str(logits_file))["logits"]) <= TOLERANCE
    assert model.generate(ids, max_new_tokens=8, do_sample=False)[0, len(prompt):].tolist() == run["tokens"]


def test_custom_op_runs_its_pytorch_implementation(tmp_path):
    """LLaMA with the fused residual-add + RMSNorm custom op (examples/llama_fused_norm): the hf target copies the
    op's declared PyTorch module next to the modeling file and calls it; logits and greedy tokens match the original
    transformers model's goldens."""
    out = tmp_path / "kiln-fused-norm"
    kiln("compile", "examples/llama_fused_norm/model.ts", "--hf", str(FIXTURES / "llama"), "--out", str(out), "--target", "hf")
    assert (out / "kiln_op_fused_add_rms_norm.py").read_text() == (REPO / "examples/fused_add_rms_norm/fused_add_rms_norm_torch.py").read_text()
    modeling = next(out.glob("modeling_*.py")).read_text()
    assert "from .kiln_op_fused_add_rms_norm import fused_add_rms_norm as _kiln_op_fused_add_rms_norm" in modeling
    # Called with its list of inputs; a call too long for one line is wrapped one argument per line.
    assert re.search(r"_kiln_op_fused_add_rms_norm\(\s*\[", modeling)
    model = load(out)
    for ids, logits, greedy in golden("llama"):
        with torch.no_grad():
            mine = model(ids[None]).logits[0]
        assert rel_l2(mine, logits) <= TOLERANCE
        assert model.generate(ids[None], max_new_tokens=len(greedy), do_sample=False)[0, ids.shape[0]:].tolist() == greedy


def test_a_broken_custom_op_implementation_fails_parity(tmp_path):
    """Negative control for the test above: the same output with the residual dropped from the op's PyTorch module
    must miss the goldens (so the test above would catch a wrong implementation)."""
    out = tmp_path / "kiln-fused-norm-broken"
    kiln("compile", "examples/llama_fused_norm/model.ts", "--hf", str(FIXTURES / "llama"), "--out", str(out), "--target", "hf")
    op = out / "kiln_op_fused_add_rms_norm.py"
    op.write_text(op.read_text().replace("total = x.float() + residual.float()", "total = x.float()"))
    model = load(out)
    ids, logits, _ = golden("llama")[0]
    with torch.no_grad():
        assert rel_l2(model(ids[None]).logits[0], logits) > 1e-2
