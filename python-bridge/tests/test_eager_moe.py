"""Eager `tensorrt_llm.layers.MOE` / `SharedMoE` and Mapping's moe_tp / moe_ep reproduce transformers' sparse MoE
blocks (MixtralSparseMoeBlock, Qwen2MoeSparseMoeBlock) on every rank split of tp in {1, 2, 4} x moe_ep in {1, 2}.

Rank weights come from the test-only reference converter's expert splitting (written from upstream convert.py), so
this checks the eager layer (what a custom model.py runs on) against HF, not against Kiln.
"""
from __future__ import annotations

import pytest
import torch
from kiln_bridge.comm import ThreadWorld
from kiln_bridge.eager_trtllm import _rank
from kiln_bridge.eager_trtllm.functional import Tensor
from kiln_bridge.eager_trtllm.layers import MOE, MoeConfig, SharedMoE
from kiln_bridge.eager_trtllm.mapping import Mapping
from reference_convert import _experts

transformers = pytest.importorskip("transformers")

SPLITS = [(1, 1), (2, 1), (4, 1), (2, 2), (4, 2)]
HIDDEN, EXPERTS, TOP_K = 32, 4, 2


def _hf_block(kind: str):
    torch.manual_seed(1)
    if kind == "mixtral":
        config = transformers.MixtralConfig(hidden_size=HIDDEN, intermediate_size=48, num_local_experts=EXPERTS,
                                            num_experts_per_tok=TOP_K)
        block = transformers.models.mixtral.modeling_mixtral.MixtralSparseMoeBlock(config)
    else:
        config = transformers.Qwen2MoeConfig(hidden_size=HIDDEN, moe_intermediate_size=24,
                                             shared_expert_intermediate_size=40, num_experts=EXPERTS,
                                             num_experts_per_tok=TOP_K, norm_topk_prob=False)
        block = transformers.models.qwen2_moe.modeling_qwen2_moe.Qwen2MoeSparseMoeBlock(config)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return config, block.eval()


def _hf_state(kind: str, block) -> dict[str, torch.Tensor]:
    """The block's weights under the names save_pretrained writes (per-expert tensors)."""
    sd = {k: v.detach() for k, v in block.state_dict().items()}
    gate_up, down = sd.pop("experts.gate_up_proj"), sd.pop("experts.down_proj")
    names = ("w1", "w2", "w3") if kind == "mixtral" else ("gate_proj", "down_proj", "up_proj")
    for e in range(EXPERTS):
        gate, up = gate_up[e].chunk(2, dim=0)
        sd[f"experts.{e}.{names[0]}.weight"], sd[f"experts.{e}.{names[2]}.weight"] = gate, up
        sd[f"experts.{e}.{names[1]}.weight"] = down[e]
    return sd


@pytest.mark.parametrize("tp,ep", SPLITS, ids=lambda v: str(v))
@pytest.mark.parametrize("kind", ["mixtral", "qwen2_moe"])
def test_eager_moe_matches_transformers_block(kind, tp, ep):
    config, block = _hf_block(kind)
    x = torch.randn(7, HIDDEN)
    with torch.no_grad():
        want = block(x[None])
        want = (want[0] if isinstance(want, tuple) else want)[0]
    sd = _hf_state(kind, block)
    names = ("w1", "w2", "w3") if kind == "mixtral" else ("gate_proj", "down_proj", "up_proj")

    def rank_main(comm):
        with _rank.rank_context(comm):
            mapping = Mapping(world_size=tp, rank=comm.rank, tp_size=tp, moe_ep_size=ep)
            mode = MoeConfig.ExpertScaleNormalizationMode
            moe = MoeConfig(num_experts=EXPERTS, top_k=TOP_K,
                            normalization_mode=mode.RENORMALIZE if kind == "mixtral" else mode.NONE)
            common = dict(hidden_size=HIDDEN, hidden_act="swiglu", mapping=mapping, bias=False, dtype="float32",
                          tp_group=list(range(tp)), tp_size=tp)
            if kind == "mixtral":
                layer = MOE(moe_config=moe, ffn_hidden_size=config.intermediate_size, **common)
            else:
                moe.shared_expert_intermediate_size = config.shared_expert_intermediate_size
                layer = SharedMoE(moe_config=moe, ffn_hidden_size=config.moe_intermediate_size, use_shared_gate=True,
                                  **common)
            w = _experts({f"x.{k}": v for k, v in sd.items()}, "x.", names, EXPERTS, tp, comm.rank, tp // ep, ep)
            layer.fc.weight.value, layer.proj.weight.value = w["mlp.fc.weight"], w["mlp.proj.weight"]
            layer.router.weight.value = sd["gate.weight"].float()
            if kind == "qwen2_moe":
                up = sd["shared_expert.up_proj.weight"].chunk(tp)[comm.rank]
                gate = sd["shared_expert.gate_proj.weight"].chunk(tp)[comm.rank]
                layer.shared_expert.fc.weight.value = torch.cat([up, gate])
                layer.shared_expert.proj.weight.value = sd["shared_expert.down_proj.weight"].chunk(tp, dim=1)[comm.rank]
                layer.shared_expert_gate.weight.value = sd["shared_expert_gate.weight"]
            assert layer.experts_per_node == EXPERTS // ep
            assert mapping.ep_experts(EXPERTS) == list(range(mapping.moe_ep_rank * (EXPERTS // ep),
                                                             (mapping.moe_ep_rank + 1) * (EXPERTS // ep)))
            return layer(Tensor(x)).t

    outs = ThreadWorld(tp, 1).run(rank_main)
    for out in outs:
        torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


def test_eager_moe_mapping_ranks_follow_upstream():
    # MappingBase: moe_tp_rank = tp_rank // moe_ep, moe_ep_rank = tp_rank % moe_ep
    ranks = [(m.moe_tp_rank, m.moe_ep_rank) for m in (Mapping(world_size=4, rank=r, tp_size=4, moe_ep_size=2)
                                                       for r in range(4))]
    assert ranks == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert Mapping(world_size=4, tp_size=4, moe_tp_size=2).moe_ep_size == 2
    with pytest.raises(ValueError, match="moe_tp_size \\* moe_ep_size"):
        Mapping(world_size=4, tp_size=4, moe_tp_size=2, moe_ep_size=4)


def test_eager_moe_refuses_what_it_does_not_model():
    with pytest.raises(NotImplementedError, match="normalization_mode"):
        MOE(MoeConfig(num_experts=4, top_k=2, normalization_mode=MoeConfig.ExpertScaleNormalizationMode.SPARSE_MIXER),
            HIDDEN, 8, "swiglu", bias=False)
    with pytest.raises(ValueError, match="not a multiple of EP size"):
        MOE(MoeConfig(num_experts=3, top_k=2), HIDDEN, 8, "swiglu", mapping=Mapping(world_size=2, tp_size=2,
                                                                                     moe_ep_size=2), bias=False)


def test_eager_routing_functionals():
    from kiln_bridge.eager_trtllm import functional as F

    x = Tensor(torch.tensor([[1.0, 3.0, 3.0, 0.5], [2.0, -1.0, 2.0, 7.0]]))
    values, idx = F.topk(x, 2, 1)
    assert values.t.tolist() == [[3.0, 3.0], [7.0, 2.0]]
    assert idx.t.tolist() == [[1, 2], [3, 0]] and idx.t.dtype == torch.int32  # ties: lower index first
    assert F.argmax(x, 1).t.tolist() == [1, 3]
    assert F.gather(x, 1, idx).t.tolist() == [[3.0, 3.0], [7.0, 2.0]]
    assert F.index_select(x, 0, Tensor(torch.tensor([1], dtype=torch.int32))).t.tolist() == [[2.0, -1.0, 2.0, 7.0]]
    assert F.eq(x, 3.0).t.tolist() == [[False, True, True, False], [False, False, False, False]]
    assert F.gt(x, 2.0).t.sum().item() == 3 and F.lt(x, 0.0).t.sum().item() == 1
