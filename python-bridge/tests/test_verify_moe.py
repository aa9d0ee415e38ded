"""The verifier runs mixture-of-experts checkpoints (Mixtral through LLaMA's MOE, Qwen2-MoE through QWen's SharedMoE)
and reproduces Hugging Face transformers' logits, for tp in {1, 2, 4} x moe_ep in {1, 2}; planted layout bugs fail.

The HF models are small random Mixtral / Qwen2-MoE models made here with transformers (seeded), their router weights
scaled up so that the top-k choice of every token is far from a tie (the gap is asserted); checkpoints come from the
test-only reference converter, written from upstream's convert.py MoE branches (tests/reference_convert.py).
"""
from __future__ import annotations

import pytest
import torch
from conftest import edit_config
from kiln_bridge import verify_checkpoint
from kiln_bridge.errors import CheckpointError, UnsupportedConfig
from kiln_bridge.safetensors_io import save_file
from reference_convert import convert

transformers = pytest.importorskip("transformers")

PROMPTS = [[3, 17, 92, 5, 41, 77, 8, 120, 33, 64, 2], [101, 7, 55, 19, 88, 4]]
# (tp, moe_ep): moe_tp = tp / moe_ep, as Mapping derives it
MAPPINGS = [(1, 1), (2, 1), (4, 1), (2, 2), (4, 2)]


def _router_gap(model, ids: torch.Tensor, top_k: int) -> float:
    """Smallest gap between a token's k-th and (k+1)-th router logit over every MoE layer."""
    gaps = []

    def hook(module, args, _out):
        logits = args[0].reshape(-1, args[0].shape[-1]) @ module.weight.t()
        top = logits.float().topk(top_k + 1, dim=-1).values
        gaps.append(float((top[:, top_k - 1] - top[:, top_k]).min()))

    handles = [layer.mlp.gate.register_forward_hook(hook) for layer in model.model.layers]
    with torch.no_grad():
        model(ids[None])
    for h in handles:
        h.remove()
    return min(gaps)


def _make_hf(root, model) -> str:
    """Scale the routers, save the model and its golden logits; return the directory."""
    with torch.no_grad():
        for layer in model.model.layers:
            layer.mlp.gate.weight.mul_(40.0)
    model.save_pretrained(root)
    golden = {}
    for i, prompt in enumerate(PROMPTS):
        ids = torch.tensor(prompt)
        assert _router_gap(model, ids, model.config.num_experts_per_tok) > 1e-2
        with torch.no_grad():
            golden[f"input_ids.{i}"] = ids.to(torch.int32)
            golden[f"logits.{i}"] = model(ids[None]).logits[0].float()
    save_file(golden, str(root / "golden.safetensors"))
    return str(root)


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory):
    torch.manual_seed(0)
    mixtral = transformers.MixtralForCausalLM(transformers.MixtralConfig(
        vocab_size=128, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=64,
        rope_theta=10000.0, tie_word_embeddings=False)).eval()
    qwen = transformers.Qwen2MoeForCausalLM(transformers.Qwen2MoeConfig(
        vocab_size=128, hidden_size=32, intermediate_size=48, moe_intermediate_size=24,
        shared_expert_intermediate_size=40, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        num_experts=4, num_experts_per_tok=2, max_position_embeddings=64, norm_topk_prob=False,
        tie_word_embeddings=False)).eval()
    return {"mixtral": _make_hf(tmp_path_factory.mktemp("mixtral"), mixtral),
            "qwen2_moe": _make_hf(tmp_path_factory.mktemp("qwen2_moe"), qwen)}


@pytest.fixture
def moe_ckpt(tmp_path, hf_models):
    counter = iter(range(1000))

    def make(family: str, tp: int = 1, moe_ep: int = 1, **kwargs) -> str:
        out = tmp_path / f"{family}_tp{tp}_ep{moe_ep}_{next(counter)}"
        return convert(hf_models[family], str(out), tp=tp, moe_ep=moe_ep, **kwargs)

    return make


@pytest.mark.parametrize("tp,moe_ep", MAPPINGS, ids=lambda v: str(v))
@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe"])
def test_moe_matches_transformers(moe_ckpt, hf_models, family, tp, moe_ep):
    report = verify_checkpoint(moe_ckpt(family, tp=tp, moe_ep=moe_ep), hf_models[family])
    assert report["ok"] and report["tolerance"] == 1e-5, report
    assert report["tp"] == tp and report["warnings"] == []
    for p in report["prompts"]:
        assert p["rel_l2"] < 1e-5 and p["argmax_agree"] == 1.0


def test_moe_pipeline_stages(moe_ckpt, hf_models):
    report = verify_checkpoint(moe_ckpt("mixtral", tp=2, moe_ep=2, pp=2), hf_models["mixtral"])
    assert report["ok"] and report["world_size"] == 4


def test_moe_reduced_precision(moe_ckpt, hf_models):
    report = verify_checkpoint(moe_ckpt("qwen2_moe", tp=2, dtype="bfloat16"), hf_models["qwen2_moe"],
                               dtype="bfloat16")
    assert report["ok"] and all(1e-4 < p["rel_l2"] < 5e-2 for p in report["prompts"])


# ---- planted bugs -------------------------------------------------------------------------------------------------

def _swap_fc_halves(_rank, t):
    fc = t["mlp.fc.weight"]  # [E, 2I, D] = [w3 ; w1]: put w1 (gate) first, as a wrong reading of the order would
    up, gate = fc.chunk(2, dim=1)
    return {**t, "mlp.fc.weight": torch.cat([gate, up], dim=1)}


@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe"])
def test_swapped_gate_up_in_stacked_fc_fails(moe_ckpt, hf_models, family):
    report = verify_checkpoint(moe_ckpt(family, tp=2, layer_hook=_swap_fc_halves), hf_models[family])
    assert not report["ok"] and min(p["rel_l2"] for p in report["prompts"]) > 1e-3  # 100x the tolerance


def test_swapped_shared_expert_halves_fail(moe_ckpt, hf_models):
    def swap(_rank, t):
        up, gate = t["mlp.shared_expert.fc.weight"].chunk(2, dim=0)
        return {**t, "mlp.shared_expert.fc.weight": torch.cat([gate, up])}

    assert not verify_checkpoint(moe_ckpt("qwen2_moe", tp=1, layer_hook=swap), hf_models["qwen2_moe"])["ok"]


def test_wrong_expert_to_rank_assignment_fails(moe_ckpt, hf_models):
    # ep=2 over tp=2: the files of rank 0 and rank 1 exchanged, so rank 0 holds experts 2,3 and rank 1 experts 0,1
    # (an interleaved or reversed Mapping.ep_experts would look the same to the model: right shapes, wrong experts).
    ckpt = moe_ckpt("mixtral", tp=2, moe_ep=2)
    a, b = f"{ckpt}/rank0.safetensors", f"{ckpt}/rank1.safetensors"
    from kiln_bridge.safetensors_io import load_file

    ra, rb = ({k: v.clone() for k, v in load_file(p).items()} for p in (a, b))  # clone: the files get rewritten
    for name in [n for n in ra if n.endswith(("mlp.fc.weight", "mlp.proj.weight"))]:
        ra[name], rb[name] = rb[name], ra[name]
    save_file(ra, a)
    save_file(rb, b)
    assert not verify_checkpoint(ckpt, hf_models["mixtral"])["ok"]


def test_experts_split_by_moe_tp_instead_of_ep_fails(moe_ckpt, hf_models):
    # config says moe_ep=2 (whole experts per rank), the files hold moe_tp=2 halves of every expert: same shapes only
    # when E/ep == E and I/tp == I, so here the mismatch is caught as a shape error naming the tensor.
    ckpt = moe_ckpt("mixtral", tp=2, moe_ep=1)
    edit_config(ckpt, mapping={"world_size": 2, "tp_size": 2, "pp_size": 1, "moe_tp_size": 1, "moe_ep_size": 2})
    with pytest.raises(CheckpointError, match=r"rank\d\.safetensors: tensor 'transformer\.layers\.0\.mlp\.fc\.weight' has shape"):
        verify_checkpoint(ckpt, hf_models["mixtral"])


def test_router_must_be_float32(moe_ckpt, hf_models):
    def half_router(_rank, t):
        return {**t, "mlp.router.weight": t["mlp.router.weight"].half()}

    with pytest.raises(CheckpointError, match="router must be stored in float32"):
        verify_checkpoint(moe_ckpt("mixtral", layer_hook=half_router), hf_models["mixtral"])


def test_missing_shared_expert_gate_is_named(moe_ckpt, hf_models):
    def drop(_rank, t):
        return {k: v for k, v in t.items() if k != "mlp.shared_expert_gate.weight"}

    with pytest.raises(CheckpointError, match=r"mlp\.shared_expert_gate\.weight' missing"):
        verify_checkpoint(moe_ckpt("qwen2_moe", layer_hook=drop), hf_models["qwen2_moe"])


def test_moe_sizes_must_multiply_to_tp(moe_ckpt, hf_models):
    ckpt = moe_ckpt("mixtral", tp=2)
    edit_config(ckpt, mapping={"world_size": 2, "tp_size": 2, "pp_size": 1, "moe_tp_size": 2, "moe_ep_size": 2})
    with pytest.raises(CheckpointError, match=r"moe_tp_size=2 \* moe_ep_size=2 must equal tp_size=2"):
        verify_checkpoint(ckpt, hf_models["mixtral"])


def test_wrong_normalization_mode_fails(moe_ckpt, hf_models):
    # Qwen2-MoE (norm_topk_prob=False) routes with NONE; RENORMALIZE rescales the chosen experts' weights
    ckpt = moe_ckpt("qwen2_moe")
    import json

    with open(f"{ckpt}/config.json") as f:
        moe = json.load(f)["moe"]
    edit_config(ckpt, moe={**moe, "normalization_mode": 1})
    assert not verify_checkpoint(ckpt, hf_models["qwen2_moe"])["ok"]


@pytest.mark.parametrize("change,message", [
    ({"normalization_mode": "RENORMALIZE"}, "normalization_mode='RENORMALIZE' is not modelled"),
    ({"normalization_mode": 2}, "normalization_mode=2 is not modelled"),
    ({"top_k": 0}, "must both be 0 or both be set"),
])
def test_unmodelled_moe_config_is_refused(moe_ckpt, hf_models, change, message):
    ckpt = moe_ckpt("mixtral")
    import json

    with open(f"{ckpt}/config.json") as f:
        moe = json.load(f)["moe"]
    edit_config(ckpt, moe={**moe, **change})
    with pytest.raises((CheckpointError, UnsupportedConfig), match=message):
        verify_checkpoint(ckpt, hf_models["mixtral"])


def test_qwen_ignores_sparse_step_so_it_is_refused(moe_ckpt, hf_models):
    ckpt = moe_ckpt("qwen2_moe")
    edit_config(ckpt, decoder_sparse_step=2)
    with pytest.raises(UnsupportedConfig, match="decoder_sparse_step"):
        verify_checkpoint(ckpt, hf_models["qwen2_moe"])
