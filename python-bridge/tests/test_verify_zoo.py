"""Every zoo family through `kiln compile`, executed by the verifier and held to the transformers goldens (float32,
rel L2 <= 1e-5): the engine checkpoint as compiled (TensorRT-LLM 1.2.1's own class where Kiln finds one, run by the
independent decoder; custom model.py otherwise, run on the eager TensorRT-LLM) at tp 1 and 2 and tp 2 x pp 2;
model.py forced with --custom-code; the trtllm-torch package at simulated tp 1, 2 and 2 x 2. The fixtures are
test/fixtures/zoo (scripts/zoo-fixtures/make.py), plus one made here with that script: a GPT-NeoX with the tanh GELU
and a 4 x hidden MLP, the only form 1.2.1's GPTNeoXForCausalLM can express.
Negative tests plant one bug per feature (a dropped window, QK-norm scales, Gemma's 1 + w norms or its vocab-parallel
embedding, Phi-3's swiglu halves, GPT-NeoX's norm name, Gemma 2's caps, a dropped rotary_scaling, Falcon's exact GELU)
and require the verification to fail; a dynamic rotary_scaling without the "alpha" 1.2.1 builds its table from is
refused in one line.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from kiln_bridge.errors import BridgeError
from kiln_bridge.safetensors_io import load_file, save_file
from kiln_bridge.verify import verify_checkpoint

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "test" / "fixtures" / "zoo"
# fixture -> zoo model, and the class compiling it must give (test/zoo/compile.test.ts pins the same on the TS side)
FIXTURES = {"mistral": "mistral", "qwen2": "qwen2", "qwen3": "qwen3", "gemma": "gemma", "gemma2": "gemma2",
            "gpt_neox": "gpt_neox",
            "gpt_neox_seq": "gpt_neox", "starcoder2": "starcoder2", "phi3": "phi3", "neox_builtin": "gpt_neox",
            "falcon": "falcon", "llama_yarn": "llama", "llama_dynamic": "llama"}
BUILTIN = {"mistral": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "gemma": "GemmaForCausalLM",
           "gemma2": "Gemma2ForCausalLM", "llama_yarn": "LlamaForCausalLM", "llama_dynamic": "LlamaForCausalLM",
           "starcoder2": "GPTForCausalLM", "phi3": "Phi3ForCausalLM", "neox_builtin": "GPTNeoXForCausalLM"}
# Classes without pipeline stages in 1.2.1 (Phi3Model, GPTNeoXModel): at pp 2 Kiln emits model.py instead.
NO_PP = {"phi3", "neox_builtin"}
# The fixtures added last (Falcon, LLaMA with yarn / dynamic rope scaling) run at tp 1 and 2 only, to keep the time.
NEW = {"falcon", "llama_yarn", "llama_dynamic"}
ENGINE = [(f, tp, pp) for f in FIXTURES for tp, pp in ((1, 1), (2, 1), (2, 2)) if not (f in NEW and pp > 1)]
# gemma2 is refused by the trtllm-torch target (soft-capping), and so is rope scaling other than linear and llama3. Gemma's package keeps its final (1 + w) norm as a plain
# nn.Module, which DecoderModel.__pp_init__ cannot skip on an earlier stage: no pp there (noted in docs/models.md).
NO_TORCH = {"gemma2", "llama_yarn", "llama_dynamic"}
TORCH = [(f, tp, pp) for f in FIXTURES if f not in NO_TORCH for tp, pp in ((1, 1), (2, 1), (2, 2))
         if not ((f == "gemma" or f in NEW) and pp > 1)]


def _make_neox_builtin(out: Path) -> None:
    """scripts/zoo-fixtures/make.py's recipe for a GPT-NeoX that 1.2.1's class can run: tanh GELU, MLP 4 x hidden."""
    pytest.importorskip("transformers", reason="the GPT-NeoX fixture is made with transformers")
    spec = importlib.util.spec_from_file_location("zoo_fixtures_make", REPO / "scripts" / "zoo-fixtures" / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)  # type: ignore[union-attr]
    config_cls, model_cls, fields = make.FIXTURES["gpt_neox"]
    make.FIXTURES["neox_builtin"] = (config_cls, model_cls, dict(fields, hidden_act="gelu_new", intermediate_size=256))
    make.make("neox_builtin", str(out))


def _hf(root: Path, fixture: str) -> str:
    return str(root / fixture) if fixture == "neox_builtin" else str(ZOO / fixture)


def _name(fixture: str, kind: str, tp: int, pp: int) -> str:
    return f"{fixture}-{kind}-tp{tp}-pp{pp}"


def _args(root: Path, fixture: str, kind: str, tp: int, pp: int) -> list:
    target = "trtllm-torch" if kind == "torch" else "trtllm-engine"
    args = ["compile", FIXTURES[fixture], "--hf", _hf(root, fixture), "--out", str(root / _name(fixture, kind, tp, pp)),
            "--target", target, "--tp", str(tp), "--pp", str(pp), "--no-typecheck", "--json"]
    return args + (["--custom-code"] if kind == "custom" else [])


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Every output this module verifies, compiled once (two Node processes, tests/kiln_compile_many.mjs)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed; `kiln compile` cannot run")
    root = tmp_path_factory.mktemp("kiln_zoo")
    _make_neox_builtin(root)
    jobs = [(f, "engine", tp, pp) for f, tp, pp in ENGINE] + [(f, "custom", 2, 1) for f in FIXTURES]
    jobs += [(f, "torch", 1, 1) for f in FIXTURES if f not in NO_TORCH]
    procs = []
    for k in range(2):
        spec = root / f"jobs{k}.json"
        spec.write_text(json.dumps([_args(root, *j) for j in jobs[k::2]]))
        procs.append(subprocess.Popen([shutil.which("node"), str(Path(__file__).parent / "kiln_compile_many.mjs"),
                                       str(spec)], cwd=REPO, stderr=subprocess.PIPE, text=True))
    errors = [p.communicate()[1].strip() for p in procs if p.wait() != 0]
    if errors:
        raise RuntimeError(errors[0])
    return root


def _passes(report):
    assert report["ok"], report
    assert report["tolerance"] == 1e-5
    assert all(p["rel_l2"] <= 1e-5 and p["argmax_agree"] == 1.0 for p in report["prompts"]), report
    return report


def _architecture(ckpt: str) -> str:
    return json.loads(Path(ckpt, "config.json").read_text())["architecture"]


@pytest.mark.parametrize("fixture,tp,pp", ENGINE, ids=lambda v: str(v))
def test_engine_checkpoint_matches_transformers(zoo, fixture, tp, pp):
    ckpt = str(zoo / _name(fixture, "engine", tp, pp))
    report = _passes(verify_checkpoint(ckpt, _hf(zoo, fixture)))
    assert (report["tp"], report["pp"]) == (tp, pp)
    builtin = fixture in BUILTIN and not (pp > 1 and fixture in NO_PP)
    assert _architecture(ckpt) == BUILTIN[fixture] if builtin else _architecture(ckpt).startswith("Kiln")
    # built-in checkpoints run on the independent decoder, custom ones execute model.py
    assert report.get("executed", "built-in") == ("built-in" if builtin else "model.py")


@pytest.mark.parametrize("fixture", list(FIXTURES))
def test_custom_model_py_matches_transformers(zoo, fixture):
    report = _passes(verify_checkpoint(str(zoo / _name(fixture, "custom", 2, 1)), _hf(zoo, fixture)))
    assert report["executed"] == "model.py"


@pytest.mark.parametrize("fixture,tp,pp", TORCH, ids=lambda v: str(v))
def test_trtllm_torch_package_matches_transformers(zoo, fixture, tp, pp):
    report = _passes(verify_checkpoint(str(zoo / _name(fixture, "torch", 1, 1)), _hf(zoo, fixture), tp=tp, pp=pp))
    assert report["executed"] == "trtllm-torch" and (report["tp"], report["pp"]) == (tp, pp)


# ---- negative tests: one planted bug per feature must fail the verification ------------------------------------

def _copy(zoo: Path, name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(zoo / name, dst)
    return dst


def _edit_config(ckpt: Path, **changes) -> None:
    config = json.loads((ckpt / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    (ckpt / "config.json").write_text(json.dumps(config))


def _edit_rank(ckpt: Path, rank: int, edit) -> None:
    path = str(ckpt / f"rank{rank}.safetensors")
    weights = load_file(path)
    edit(weights)
    save_file(weights, path)


def _fails(ckpt, hf: str) -> None:
    report = verify_checkpoint(str(ckpt), hf)
    assert not report["ok"], "a planted bug passed verification"
    assert max(p["rel_l2"] for p in report["prompts"]) > 1e-3


@pytest.mark.parametrize("fixture,kind", [("mistral", "engine"), ("starcoder2", "engine"), ("phi3", "engine"),
                                          ("starcoder2", "custom")])
def test_dropped_window_fails(zoo, tmp_path, fixture, kind):
    # The runtime default window is the only place the window lives: without it every layer attends globally.
    ckpt = _copy(zoo, _name(fixture, kind, 2, 1), tmp_path)
    _edit_config(ckpt, runtime_defaults=None)
    _fails(ckpt, _hf(zoo, fixture))


def test_window_on_the_wrong_layers_fails(zoo, tmp_path):
    # Qwen2's layer 0 is global (below max_window_layers): the window list applied to every layer is wrong.
    ckpt = _copy(zoo, _name("qwen2", "engine", 2, 2), tmp_path)
    _edit_config(ckpt, runtime_defaults={"max_attention_window": [5]})
    _fails(ckpt, _hf(zoo, "qwen2"))


def test_dropped_window_in_the_torch_package_fails(zoo, tmp_path):
    ckpt = _copy(zoo, _name("mistral", "torch", 1, 1), tmp_path)
    _edit_config(ckpt, kiln_attention_windows=[0, 0, 0])
    report = verify_checkpoint(str(ckpt), _hf(zoo, "mistral"), tp=2)
    assert not report["ok"] and max(p["rel_l2"] for p in report["prompts"]) > 1e-3


def test_qk_norm_scales_are_applied(zoo, tmp_path):
    # Qwen3's model.py: QK-norm scales set to ones (the norm without its learned scale) must fail.
    import torch

    ckpt = _copy(zoo, _name("qwen3", "custom", 2, 1), tmp_path)
    for rank in (0, 1):
        _edit_rank(ckpt, rank, lambda w: w.update({n: torch.ones_like(t) for n, t in w.items() if "q_layernorm" in n}))
    _fails(ckpt, _hf(zoo, "qwen3"))


def test_qk_norm_scales_in_the_torch_package_are_applied(zoo, tmp_path):
    # Qwen3's trtllm-torch package (QKNormRoPEAttention): q_norm scales set to ones must fail.
    import torch

    ckpt = _copy(zoo, _name("qwen3", "torch", 1, 1), tmp_path)
    path = str(ckpt / "model.safetensors")
    weights = load_file(path)
    weights.update({n: torch.ones_like(t) for n, t in weights.items() if n.endswith("q_norm.weight")})
    save_file(weights, path)
    report = verify_checkpoint(str(ckpt), _hf(zoo, "qwen3"), tp=2)
    assert not report["ok"] and max(p["rel_l2"] for p in report["prompts"]) > 1e-3


def test_qk_norm_dropped_from_model_py_is_a_one_line_error(zoo, tmp_path):
    ckpt = _copy(zoo, _name("qwen3", "custom", 2, 1), tmp_path)
    path = ckpt / "model.py"
    path.write_text(path.read_text().replace("qk_layernorm=True", "qk_layernorm=False"))
    with pytest.raises(BridgeError, match=r"rank[01]\.safetensors: tensors in the rank file that no parameter of the model uses: .*q_layernorm\.weight"):
        verify_checkpoint(str(ckpt), _hf(zoo, "qwen3"))


def test_gemma_norm_without_its_offset_fails(zoo, tmp_path):
    # 1.2.1's Gemma stores 1 + w: a checkpoint holding the raw w (Kiln without its offset) must fail.
    ckpt = _copy(zoo, _name("gemma", "engine", 2, 1), tmp_path)
    for rank in (0, 1):
        _edit_rank(ckpt, rank, lambda w: w.update({n: t - 1 for n, t in w.items() if "layernorm" in n or "ln_f" in n}))
    _fails(ckpt, _hf(zoo, "gemma"))


def test_gemma_replicated_embedding_is_a_one_line_error(zoo, tmp_path):
    # GemmaConfig forces use_parallel_embedding at tp > 1: a whole table on each rank does not fit the class.
    whole = load_file(str(zoo / _name("gemma", "engine", 1, 1) / "rank0.safetensors"))["transformer.vocab_embedding.weight"]
    ckpt = _copy(zoo, _name("gemma", "engine", 2, 1), tmp_path)
    _edit_rank(ckpt, 0, lambda w: w.update({"transformer.vocab_embedding.weight": whole}))
    with pytest.raises(BridgeError, match=r"rank0\.safetensors: tensor 'transformer\.vocab_embedding\.weight' has shape"):
        verify_checkpoint(str(ckpt), _hf(zoo, "gemma"))


def test_phi3_swiglu_halves_swapped_fails(zoo, tmp_path):
    # 1.2.1's swiglu takes [x; gate] per rank: HF's gate_up_proj order ([gate; up]) must fail.
    import torch

    def swap(w):
        for n, t in list(w.items()):
            if n.endswith("mlp.fc.weight"):
                a, b = t.chunk(2, dim=0)
                w[n] = torch.cat([b, a]).contiguous()

    ckpt = _copy(zoo, _name("phi3", "engine", 2, 1), tmp_path)
    for rank in (0, 1):
        _edit_rank(ckpt, rank, swap)
    _fails(ckpt, _hf(zoo, "phi3"))


def test_neox_norm_name_is_checked(zoo, tmp_path):
    # GPTNeoXForCausalLM names the MLP's norm post_attention_layernorm; post_layernorm would be a missing tensor.
    def rename(w):
        for n in [n for n in w if ".post_attention_layernorm." in n]:
            w[n.replace(".post_attention_layernorm.", ".post_layernorm.")] = w.pop(n)

    ckpt = _copy(zoo, _name("neox_builtin", "engine", 2, 1), tmp_path)
    _edit_rank(ckpt, 0, rename)
    with pytest.raises(BridgeError, match=r"rank0\.safetensors: tensor 'transformer\.layers\.0\.post_attention_layernorm"):
        verify_checkpoint(str(ckpt), _hf(zoo, "neox_builtin"))


def test_attention_softcap_dropped_from_model_py_fails(zoo, tmp_path):
    ckpt = _copy(zoo, _name("gemma2", "custom", 2, 1), tmp_path)
    path = ckpt / "model.py"
    text = path.read_text()
    assert "max_attn_value=2.0" in text
    path.write_text(text.replace("max_attn_value=2.0", "max_attn_value=0.0"))
    _fails(ckpt, _hf(zoo, "gemma2"))


@pytest.mark.parametrize("kind", ["engine", "custom"])
def test_final_softcap_dropped_fails(zoo, tmp_path, kind):
    # The built-in Gemma 2 checkpoint and model.py both carry the final cap in config.json.
    ckpt = _copy(zoo, _name("gemma2", kind, 2, 1), tmp_path)
    _edit_config(ckpt, final_logit_softcapping=0.0)
    _fails(ckpt, _hf(zoo, "gemma2"))


def test_attention_softcap_dropped_from_the_builtin_config_fails(zoo, tmp_path):
    ckpt = _copy(zoo, _name("gemma2", "engine", 2, 1), tmp_path)
    _edit_config(ckpt, attn_logit_softcapping=None)
    _fails(ckpt, _hf(zoo, "gemma2"))


def test_final_softcap_dropped_from_config_fails(zoo, tmp_path):
    # Without the whole Gemma2ConfigGroup, DecoderModelForCausalLM leaves the logits uncapped.
    ckpt = _copy(zoo, _name("gemma2", "custom", 2, 1), tmp_path)
    _edit_config(ckpt, final_logit_softcapping=None)
    with pytest.raises(BridgeError):  # the config class requires the key: a one-line error
        verify_checkpoint(str(ckpt), _hf(zoo, "gemma2"))
    ckpt2 = _copy(zoo, _name("gemma2", "custom", 2, 1), tmp_path / "b")
    _edit_config(ckpt2, final_logit_softcapping=0.0)
    _fails(ckpt2, _hf(zoo, "gemma2"))


# ---- rope scaling (yarn, dynamic) and Falcon ----------------------------------------------------------------------

@pytest.mark.parametrize("fixture,kind", [("llama_yarn", "engine"), ("llama_yarn", "custom"),
                                          ("llama_dynamic", "engine"), ("llama_dynamic", "custom")])
def test_dropped_rotary_scaling_fails(zoo, tmp_path, fixture, kind):
    # Without rotary_scaling the plain RoPE tables are used: yarn's blend and cos/sin factor, or dynamic's base growth
    # past max_position_embeddings (8 < the 11-token prompt), are gone.
    ckpt = _copy(zoo, _name(fixture, kind, 2, 1), tmp_path)
    _edit_config(ckpt, rotary_scaling=None)
    _fails(ckpt, _hf(zoo, fixture))


def test_yarn_attention_factor_is_applied(zoo, tmp_path):
    # 1.2.1 derives YaRN's cos/sin factor from mscale / mscale_all_dim: equal values make it 1, which must fail.
    ckpt = _copy(zoo, _name("llama_yarn", "engine", 2, 1), tmp_path)
    scaling = json.loads((ckpt / "config.json").read_text())["rotary_scaling"]
    _edit_config(ckpt, rotary_scaling=dict(scaling, mscale_all_dim=scaling["mscale"]))
    _fails(ckpt, _hf(zoo, "llama_yarn"))


@pytest.mark.parametrize("kind", ["engine", "custom"])
def test_dynamic_without_alpha_is_a_one_line_error(zoo, tmp_path, kind):
    # 1.2.1's create_sinusoidal_positions_for_attention_plugin reads rotary_scaling["alpha"] for dynamic scaling (a
    # KeyError at build time without it), although the plugin then recomputes the frequencies per sequence.
    ckpt = _copy(zoo, _name("llama_dynamic", kind, 2, 1), tmp_path)
    scaling = json.loads((ckpt / "config.json").read_text())["rotary_scaling"]
    assert scaling == {"type": "dynamic", "factor": 2, "alpha": 1}
    _edit_config(ckpt, rotary_scaling={"type": "dynamic", "factor": 2})
    with pytest.raises(BridgeError, match=r"^config\.json rotary_scaling type 'dynamic' has no 'alpha'"):
        verify_checkpoint(str(ckpt), _hf(zoo, "llama_dynamic"))


def test_falcon_tanh_gelu_fails(zoo, tmp_path):
    # HF Falcon's MLP uses the exact GELU; 1.2.1's 'gelu' (F.gelu) is the tanh approximation, which must fail.
    ckpt = _copy(zoo, _name("falcon", "engine", 2, 1), tmp_path)
    path = ckpt / "model.py"
    text = path.read_text()
    assert text.count("_kiln_gelu_erf(self.fc(hidden_states))") == 1
    path.write_text(text.replace("_kiln_gelu_erf(self.fc(hidden_states))", "F.gelu(self.fc(hidden_states))"))
    report = verify_checkpoint(str(ckpt), _hf(zoo, "falcon"))
    assert not report["ok"] and max(p["rel_l2"] for p in report["prompts"]) > 1e-4
