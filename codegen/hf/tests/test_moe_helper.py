"""The PyTorch targets' `_kiln_moe` helper (codegen/pytorch/moe-helper.ts, the glue for the IR's `moe` op) against
transformers' own sparse MoE blocks: MixtralSparseMoeBlock (softmax, renormalized top-k) and Qwen2MoeSparseMoeBlock
(softmax, top-k with and without renormalization, shared expert behind a sigmoid gate), float32, random weights,
relative L2 <= 1e-6. A planted bug (renormalization flipped) must fail the same comparison.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
F = torch.nn.functional


@pytest.fixture(scope="module")
def kiln_moe():
    tsx = REPO / "node_modules" / ".bin" / "tsx"
    if shutil.which("node") is None or not tsx.exists():
        pytest.skip("node and tsx are needed to read the helper's source")
    src = subprocess.run(
        [str(tsx), "-e", 'import("./codegen/pytorch/moe-helper.ts").then((m) => console.log(m.MOE_HELPER_SOURCE.join("\\n")))'],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout
    scope = {"torch": torch, "F": F}
    exec(compile(src, "_kiln_moe", "exec"), scope)  # noqa: S102 - our own generated helper
    return scope["_kiln_moe"]


def rel_l2(a, b) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def split_experts(experts):
    """HF stacks gate and up as gate_up_proj [E, 2I, H] (gate first); the op takes them apart."""
    gate, up = experts.gate_up_proj.chunk(2, dim=1)
    return gate, up, experts.down_proj


def test_mixtral_block(kiln_moe):
    from transformers.models.mixtral.modeling_mixtral import MixtralConfig, MixtralSparseMoeBlock

    cfg = MixtralConfig(hidden_size=16, intermediate_size=12, num_local_experts=6, num_experts_per_tok=2)
    block = MixtralSparseMoeBlock(cfg).eval()
    randomize(block, 0)
    x = torch.randn(2, 7, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = block(x)
        got = kiln_moe(x, block.gate.weight, *split_experts(block.experts),
                       top_k=2, scoring="softmax", normalize_top_k=True, act=F.silu)
        wrong = kiln_moe(x, block.gate.weight, *split_experts(block.experts),
                         top_k=2, scoring="softmax", normalize_top_k=False, act=F.silu)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert rel_l2(got, want) <= 1e-6
    assert rel_l2(wrong, want) > 1e-2


@pytest.mark.parametrize("norm_topk_prob", [False, True])
def test_qwen2_moe_block(kiln_moe, norm_topk_prob):
    from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeConfig, Qwen2MoeSparseMoeBlock

    cfg = Qwen2MoeConfig(hidden_size=16, moe_intermediate_size=8, shared_expert_intermediate_size=20,
                         num_experts=5, num_experts_per_tok=3, norm_topk_prob=norm_topk_prob)
    block = Qwen2MoeSparseMoeBlock(cfg).eval()
    randomize(block, 2)
    x = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(3))
    s = block.shared_expert
    shared = (s.gate_proj.weight, s.up_proj.weight, s.down_proj.weight, block.shared_expert_gate.weight)
    with torch.no_grad():
        want = block(x)
        got = kiln_moe(x, block.gate.weight, *split_experts(block.experts), *shared,
                       top_k=3, scoring="softmax", normalize_top_k=norm_topk_prob, act=F.silu)
        ungated = kiln_moe(x, block.gate.weight, *split_experts(block.experts), *shared[:3],
                           top_k=3, scoring="softmax", normalize_top_k=norm_topk_prob, act=F.silu)
    assert rel_l2(got, want) <= 1e-6
    assert rel_l2(ungated, want) > 1e-2
