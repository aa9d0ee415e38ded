"""The verifier must fail on wrong checkpoints (a test that cannot fail is a defect) and refuse what it cannot model.

Each corruption below is a plausible compiler bug; each must be caught either numerically (report ok=False, CLI exit
1) or structurally (CheckpointError, CLI exit 2). One case must PASS: GPT-J with mlp.proj.bias on every rank, because
TensorRT-LLM's preprocess_weights zeroes that bias on tp ranks > 0, so the engine is right either way.
"""
import json
import os

import pytest
import torch
from conftest import edit_config, fixture_dir
from kiln_bridge import verify_checkpoint
from kiln_bridge.__main__ import main as cli
from kiln_bridge.architectures import KilnProgramNotImplemented
from kiln_bridge.errors import CheckpointError, UnsupportedConfig
from kiln_bridge.safetensors_io import load_file, save_file


def rewrite(ckpt: str, rank: int, fn) -> None:
    path = os.path.join(ckpt, f"rank{rank}.safetensors")
    tensors = {k: v.clone() for k, v in load_file(path).items()}
    fn(tensors)
    save_file(tensors, path)


def max_rel_l2(report) -> float:
    return max(p["rel_l2"] for p in report["prompts"])


def test_swapped_q_and_k_in_one_rank_fails(make_ckpt, capsys):
    ckpt = make_ckpt("llama", tp=2)
    good = verify_checkpoint(ckpt, fixture_dir("llama"))

    def swap(t):  # llama: 4 heads, 4 kv heads, head 16 -> per rank q rows [0, 32), k rows [32, 64)
        w = t["transformer.layers.0.attention.qkv.weight"]
        t["transformer.layers.0.attention.qkv.weight"] = torch.cat([w[32:64], w[0:32], w[64:]])

    rewrite(ckpt, 1, swap)
    bad = verify_checkpoint(ckpt, fixture_dir("llama"))
    assert good["ok"] and not bad["ok"] and max_rel_l2(bad) > 1e-3
    assert cli(["verify", "--ckpt", ckpt, "--hf", fixture_dir("llama")]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_qkv_sliced_from_the_fused_matrix_fails(make_ckpt):
    # A classic bug: rank r takes rows r of the full [Q; K; V] instead of [q_r; k_r; v_r]. Same shapes, wrong heads.
    ckpt = make_ckpt("llama3_gqa", tp=2)
    full = make_ckpt("llama3_gqa", tp=1)
    w = load_file(os.path.join(full, "rank0.safetensors"))
    for r in range(2):
        def naive(t, r=r):
            for l in range(3):
                name = f"transformer.layers.{l}.attention.qkv.weight"
                t[name] = w[name].chunk(2)[r].clone()
        rewrite(ckpt, r, naive)
    assert not verify_checkpoint(ckpt, fixture_dir("llama3_gqa"))["ok"]


def test_gated_mlp_fc_and_gate_swapped_fails(make_ckpt):
    ckpt = make_ckpt("llama", tp=1)

    def swap(t):
        p = "transformer.layers.1.mlp."
        t[p + "fc.weight"], t[p + "gate.weight"] = t[p + "gate.weight"], t[p + "fc.weight"]

    rewrite(ckpt, 0, swap)
    assert max_rel_l2(verify_checkpoint(ckpt, fixture_dir("llama"))) > 1e-3


def test_row_linear_bias_on_rank0_only_fails_outside_gptj(make_ckpt):
    ckpt = make_ckpt("gpt2", tp=2)
    rewrite(ckpt, 1, lambda t: t.update({"transformer.layers.0.attention.dense.bias":
                                         torch.zeros_like(t["transformer.layers.0.attention.dense.bias"])}))
    assert not verify_checkpoint(ckpt, fixture_dir("gpt2"))["ok"]


def test_gptj_proj_bias_on_every_rank_is_zeroed_like_tensorrt_llm(make_ckpt):
    ckpt = make_ckpt("gptj", tp=2)
    bias = load_file(os.path.join(ckpt, "rank0.safetensors"))["transformer.layers.0.mlp.proj.bias"]
    assert bias.abs().sum() > 0
    rewrite(ckpt, 1, lambda t: t.update({"transformer.layers.0.mlp.proj.bias": bias.clone()}))
    assert verify_checkpoint(ckpt, fixture_dir("gptj"))["ok"]
    # ... but the bias must be on rank 0
    rewrite(ckpt, 0, lambda t: t.update({"transformer.layers.0.mlp.proj.bias": torch.zeros_like(bias)}))
    assert not verify_checkpoint(ckpt, fixture_dir("gptj"))["ok"]


@pytest.mark.parametrize("scaling", [None, {"type": "linear", "factor": 8.0}])
def test_llama3_rope_scaling_matters(make_ckpt, scaling):
    ckpt = make_ckpt("llama3_gqa", tp=2)
    edit_config(ckpt, rotary_scaling=scaling)
    assert max_rel_l2(verify_checkpoint(ckpt, fixture_dir("llama3_gqa"))) > 1e-3


def test_wrong_activation_fails(make_ckpt):
    ckpt = make_ckpt("gpt2")
    edit_config(ckpt, hidden_act="relu")
    assert not verify_checkpoint(ckpt, fixture_dir("gpt2"))["ok"]


def test_missing_tensor_names_the_file_and_tensor(make_ckpt, capsys):
    ckpt = make_ckpt("gpt2", tp=2)
    rewrite(ckpt, 1, lambda t: t.pop("transformer.layers.1.mlp.fc.bias"))
    with pytest.raises(CheckpointError, match=r"rank1\.safetensors: tensor 'transformer\.layers\.1\.mlp\.fc\.bias' missing"):
        verify_checkpoint(ckpt, fixture_dir("gpt2"))
    assert cli(["verify", "--ckpt", ckpt, "--hf", fixture_dir("gpt2")]) == 2
    assert "mlp.fc.bias' missing" in capsys.readouterr().err


def test_unpadded_lm_head_is_a_shape_error(make_ckpt):
    ckpt = make_ckpt("llama", tp=2)
    rewrite(ckpt, 0, lambda t: t.update({"lm_head.weight": t["lm_head.weight"][:-1].clone()}))
    with pytest.raises(CheckpointError, match=r"'lm_head.weight' has shape \[255, 64\], expected \[256, 64\]"):
        verify_checkpoint(ckpt, fixture_dir("llama"))


def test_global_layer_indices_on_a_later_stage_are_rejected(make_ckpt):
    ckpt = make_ckpt("gpt2", pp=2)
    rewrite(ckpt, 1, lambda t: t.update({k.replace("layers.0.", "layers.1."): t.pop(k) for k in list(t)
                                         if k.startswith("transformer.layers.0.")}))
    with pytest.raises(CheckpointError, match=r"rank1\.safetensors: tensor 'transformer\.layers\.0\."):
        verify_checkpoint(ckpt, fixture_dir("gpt2"))


def test_mapping_and_rank_files_must_agree(make_ckpt):
    ckpt = make_ckpt("llama", tp=2)
    edit_config(ckpt, mapping={"world_size": 4, "tp_size": 2, "pp_size": 1})
    with pytest.raises(CheckpointError, match="world_size=4 != tp_size=2"):
        verify_checkpoint(ckpt, fixture_dir("llama"))
    edit_config(ckpt, mapping={"world_size": 4, "tp_size": 4, "pp_size": 1})
    with pytest.raises(CheckpointError):  # rank files hold tp=2 shards (and rank2/3 are absent)
        verify_checkpoint(ckpt, fixture_dir("llama"))


def test_extra_tensors_and_dtype_mismatch_are_warnings(make_ckpt):
    ckpt = make_ckpt("llama")
    rewrite(ckpt, 0, lambda t: t.update({"transformer.unused.weight": torch.zeros(2)}))
    report = verify_checkpoint(ckpt, fixture_dir("llama"))
    assert report["ok"] and any("transformer.unused.weight" in w for w in report["warnings"])
    edit_config(ckpt, dtype="float16")
    report = verify_checkpoint(ckpt, fixture_dir("llama"))
    assert report["tolerance"] == 2e-2 and any("not stored as config dtype float16" in w for w in report["warnings"])


@pytest.mark.parametrize("changes,error,message", [
    ({"kiln": {"format": "kiln-program-v0", "layers": []}}, KilnProgramNotImplemented, "no interpreter for Kiln"),
    ({"architecture": "MysteryForCausalLM"}, UnsupportedConfig, "MysteryForCausalLM"),
    ({"quantization": {"quant_algo": "W8A16"}}, UnsupportedConfig, "quant_algo='W8A16'"),
    ({"hidden_act": "softplus"}, UnsupportedConfig, "hidden_act='softplus'"),
    ({"rotary_scaling": {"type": "longrope", "factor": 4.0}}, UnsupportedConfig, "'longrope'"),
    ({"rotary_scaling": {"type": "dynamic", "factor": 2.0}}, UnsupportedConfig, "has no 'alpha'"),
    ({"residual_multiplier": 0.5}, UnsupportedConfig, "residual_multiplier"),
    ({"mapping": {"world_size": 2, "tp_size": 1, "pp_size": 1, "cp_size": 2}}, UnsupportedConfig, "cp_size"),
])
def test_unsupported_configs_are_refused(make_ckpt, changes, error, message):
    ckpt = make_ckpt("llama")
    edit_config(ckpt, **changes)
    with pytest.raises(error, match=message):
        verify_checkpoint(ckpt, fixture_dir("llama"))


def test_kiln_block_is_a_not_implemented_hook(make_ckpt):
    ckpt = make_ckpt("llama")
    edit_config(ckpt, kiln={"format": "v0"})
    with pytest.raises(NotImplementedError):
        verify_checkpoint(ckpt, fixture_dir("llama"))


def test_cli_json_report(make_ckpt, capsys):
    ckpt = make_ckpt("gptj", tp=2, pp=2)
    assert cli(["verify", "--ckpt", ckpt, "--hf", fixture_dir("gptj"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["architecture"] == "GPTJForCausalLM" and len(report["prompts"]) == 2
    assert set(report["prompts"][0]) >= {"rel_l2", "max_abs", "argmax_agree", "wall_s"}
