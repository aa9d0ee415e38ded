"""The trtllm-torch package with runtime LoRA (`kiln compile --target trtllm-torch --lora A,B`), executed on the eager
`tensorrt_llm._torch` with its LoraLayers (written from TensorRT-LLM's sources): every adapter's requests, batched
together with base-model requests in one packed batch as the executor batches LoRARequests, reproduce PEFT's own
logits (the golden.safetensors beside each adapter fixture), relative L2 <= 1e-5 in float32, at simulated tp 1 and 2
(and tp 2 x pp 2 once).
Planted bugs fail: A and B swapped, the scale alpha/r missing from B, an adapter_config alpha that is not the one the
B was scaled for, and a request routed to the other adapter."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fixture_dir
from kiln_bridge.safetensors_io import load_file, save_file
from kiln_bridge.verify import verify_lora
from test_kiln_output import kiln_compile

REPO = Path(__file__).resolve().parents[2]
LORA = REPO / "test" / "fixtures" / "lora"
ADAPTERS = {"llama": ["attn_qv", "all_rslora"], "gpt2": ["attn_qkv", "all_rslora"], "llama3_gqa": ["all_rslora"],
            "gptj": ["all"]}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    """One trtllm-torch output per family with all its fixture adapters (the output serves every tp)."""
    root = tmp_path_factory.mktemp("torch-lora")
    out = {}
    for family, adapters in ADAPTERS.items():
        out[family] = root / family
        kiln_compile(family, out[family], 2, 1, "--target", "trtllm-torch",
                     "--lora", ",".join(str(LORA / family / a) for a in adapters))
    return out


def _cases(family: str, pairs=None) -> list[tuple[str, str]]:
    return [(a, str(LORA / family / g)) for a, g in (pairs or [(a, a) for a in ADAPTERS[family]])]


@pytest.mark.parametrize("tp", [1, 2])
@pytest.mark.parametrize("family", list(ADAPTERS))
def test_adapters_in_one_batch_match_peft(outputs, family: str, tp: int) -> None:
    report = verify_lora(str(outputs[family]), fixture_dir(family), _cases(family), tp=tp)
    assert report["ok"], report
    assert report["tolerance"] == 1e-5
    assert [p["request"] for p in report["prompts"]] == ["base", "base"] + [a for a in ADAPTERS[family] for _ in (0, 1)]
    assert all(p["rel_l2"] <= 1e-5 for p in report["prompts"])
    assert report["tp"] == tp


def test_bfloat16_run_within_its_tolerance(outputs) -> None:
    """The model and LoRA weights cast to bfloat16 (as the loader casts them to the model dtype)."""
    report = verify_lora(str(outputs["llama3_gqa"]), fixture_dir("llama3_gqa"), _cases("llama3_gqa"), dtype="bfloat16",
                         tp=2)
    assert report["ok"], report
    assert report["tolerance"] == 5e-2


def test_pipeline_stages_pass_lora_params_on(outputs) -> None:
    report = verify_lora(str(outputs["llama3_gqa"]), fixture_dir("llama3_gqa"), _cases("llama3_gqa"), tp=2, pp=2)
    assert report["ok"], report
    assert (report["tp"], report["pp"]) == (2, 2)


def test_a_request_routed_to_the_other_adapter_fails(outputs) -> None:
    report = verify_lora(str(outputs["llama"]), fixture_dir("llama"),
                         _cases("llama", [("all_rslora", "attn_qv"), ("attn_qv", "all_rslora")]), tp=2)
    assert not report["ok"]
    rows = [p for p in report["prompts"] if p["request"] != "base"]
    assert min(p["rel_l2"] for p in rows) > 1e-2
    assert all(p["rel_l2"] <= 1e-5 for p in report["prompts"] if p["request"] == "base")


def _planted(src: Path, dst: Path, edit) -> Path:
    shutil.copytree(src, dst)
    path = dst / "lora" / "1" / "adapter_model.safetensors"
    weights = load_file(str(path))
    edit(weights, dst / "lora" / "1")
    save_file(weights, str(path))
    return dst


def _swap_q(weights, _dir) -> None:
    for key in [k for k in weights if k.endswith("q_proj.lora_A.weight")]:
        b_key = key.replace("lora_A", "lora_B")
        a, b = weights[key], weights[b_key]
        assert a.T.shape == b.shape  # hidden -> hidden: the swap keeps the shapes, so only the numbers can tell
        weights[key], weights[b_key] = b.T.contiguous(), a.T.contiguous()


def _unscaled(weights, _dir) -> None:
    config = json.loads((LORA / "llama" / "attn_qv" / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    assert scale != 1
    for key in [k for k in weights if k.endswith("lora_B.weight")]:
        weights[key] = weights[key] / scale


def _alpha_doubled(_weights, adapter_dir) -> None:
    path = adapter_dir / "adapter_config.json"
    config = json.loads(path.read_text())
    config["lora_alpha"] = 2 * config["r"]
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("edit", [_swap_q, _unscaled, _alpha_doubled], ids=["swapped-A-B", "missing-scale", "alpha"])
def test_planted_adapter_bugs_fail(outputs, tmp_path: Path, edit) -> None:
    planted = _planted(outputs["llama"], tmp_path / "planted", edit)
    report = verify_lora(str(planted), fixture_dir("llama"), _cases("llama", [("attn_qv", "attn_qv")]), tp=2)
    assert not report["ok"]
    assert min(p["rel_l2"] for p in report["prompts"] if p["request"] == "attn_qv") > 1e-3


def test_cli_exit_codes(outputs) -> None:
    base = [sys.executable, "-m", "kiln_bridge", "verify", "--ckpt", str(outputs["gpt2"]), "--hf", fixture_dir("gpt2"),
            "--tp", "2"]
    cwd = REPO / "python-bridge"
    ok = subprocess.run([*base, "--lora", f"1={LORA / 'gpt2' / 'attn_qkv'}", "--lora", f"all_rslora={LORA / 'gpt2' / 'all_rslora'}"],
                        cwd=cwd, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "prompt 2 [attn_qkv]" in ok.stdout and ok.stdout.rstrip().endswith("PASS")
    wrong = subprocess.run([*base, "--lora", f"2={LORA / 'gpt2' / 'attn_qkv'}"], cwd=cwd, capture_output=True, text=True)
    assert wrong.returncode == 1
    missing = subprocess.run([*base, "--lora", f"nope={LORA / 'gpt2' / 'attn_qkv'}"], cwd=cwd, capture_output=True,
                             text=True)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "no adapter 'nope'" in missing.stderr


def test_linear_built_gated_mlp_applies_lora_like_peft(tmp_path: Path) -> None:
    """LLaMA with exact GELU: the package's KilnGatedMLP (Linears with LoraLayers, not GatedMLP) carries the
    all-Linear adapter; goldens: PEFT on transformers' model with the same weights and hidden_act."""
    import torch
    transformers = pytest.importorskip("transformers", reason="the GELU goldens are computed with transformers")
    peft = pytest.importorskip("peft", reason="the GELU goldens are computed with PEFT")
    src, adapter = Path(fixture_dir("llama")), LORA / "llama" / "all_rslora"
    hf = tmp_path / "llama_gelu"
    hf.mkdir()
    config = json.loads((src / "config.json").read_text())
    (hf / "config.json").write_text(json.dumps({**config, "hidden_act": "gelu"}))
    shutil.copyfile(src / "model.safetensors", hf / "model.safetensors")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(hf), dtype=torch.float32).eval()
    model = peft.PeftModel.from_pretrained(model, str(adapter)).eval()
    prompts, golden = load_file(str(src / "golden.safetensors")), {}
    for i in range(2):
        ids = prompts[f"input_ids.{i}"]
        with torch.no_grad():
            golden[f"logits.{i}"] = model(ids.long()[None]).logits[0].float().contiguous()
        golden[f"input_ids.{i}"] = ids
    goldens = tmp_path / "golden_gelu_lora"
    goldens.mkdir()
    save_file(golden, str(goldens / "golden.safetensors"))
    # The base model's goldens for the same prompts (the batch also holds base requests).
    base = {k: v for k, v in golden.items() if k.startswith("input_ids")}
    bare = transformers.AutoModelForCausalLM.from_pretrained(str(hf), dtype=torch.float32).eval()
    for i in range(2):
        with torch.no_grad():
            base[f"logits.{i}"] = bare(base[f"input_ids.{i}"].long()[None]).logits[0].float().contiguous()
    save_file(base, str(hf / "golden.safetensors"))
    out = tmp_path / "out"
    node = shutil.which("node") or pytest.skip("node is not installed; `kiln compile` cannot run")
    subprocess.run([node, "bin/kiln.js", "compile", "models/llama.ts", "--hf", str(hf), "--out", str(out), "--target",
                    "trtllm-torch", "--tp", "2", "--no-typecheck", "--lora", str(adapter)], cwd=REPO, check=True,
                   capture_output=True, text=True)
    assert "class KilnGatedMLP(nn.Module):" in next(out.glob("kiln_*/modeling_*.py")).read_text()
    for tp in (1, 2):
        report = verify_lora(str(out), str(hf), [("all_rslora", str(goldens))], tp=tp)
        assert report["ok"], report
        assert all(p["rel_l2"] <= 1e-5 for p in report["prompts"])


def test_eager_lora_grouped_gemm_expands_requests_to_tokens() -> None:
    """loraOp.cpp: a context request covers its prompt length, a generation request one token; rank 0 gives zeros;
    each module's output is (x A^T) B^T with A [r, in], B [out, r] read at the request's pointers."""
    import torch
    from kiln_bridge.eager_trtllm._torch.peft.lora.grouped_gemm import lora_grouped_gemm, register, release

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    a, b = torch.randn(2, 5, generator=gen, dtype=torch.float64), torch.randn(3, 2, generator=gen, dtype=torch.float64)
    pa, pb = register(a), register(b)
    # requests: context of 4 tokens with the adapter, a generation token without it, a generation token with it
    types, lens = torch.tensor([0, 1, 1], dtype=torch.int32), torch.tensor([4, 0, 0], dtype=torch.int32)
    ranks, ptrs = torch.tensor([2, 0, 2], dtype=torch.int32), torch.tensor([pa, pb, 0, 0, 0, 0, pa, pb, 0])
    (out,) = lora_grouped_gemm(x, types, [ranks], [ptrs], lens, [3], False, True, 2, 0, True)
    want = (x @ a.T) @ b.T
    assert torch.allclose(out[:4], want[:4]) and torch.allclose(out[5], want[5])
    assert torch.equal(out[4], torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="lora tokens 5 input tokens 6"):
        lora_grouped_gemm(x, types, [ranks], [ptrs], torch.tensor([3, 0, 0], dtype=torch.int32), [3], False, True, 2,
                          0, True)
    release([pa, pb])
    with pytest.raises(ValueError, match="no LoRA weights at address"):
        lora_grouped_gemm(x, types, [ranks], [ptrs], lens, [3], False, True, 2, 0, True)
