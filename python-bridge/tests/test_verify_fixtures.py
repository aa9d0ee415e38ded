"""The verifier reproduces the HF golden logits from reference-converted checkpoints, for every fixture and mapping.

fp32: relative L2 <= 1e-5 (measured ~3e-7..5e-7). Mappings cover tp in {1, 2, 4} (tp=4 on llama3_gqa replicates
its 2 kv heads), pp=2 (llama3_gqa splits its 3 layers 2+1) and tp=2 x pp=2.
"""
import pytest
from conftest import FAMILIES, fixture_dir
from kiln_bridge import verify_checkpoint
from kiln_bridge.verify import DEFAULT_TOLERANCE, effective_precision

MAPPINGS = [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2)]


@pytest.mark.parametrize("tp,pp", MAPPINGS, ids=lambda v: str(v))
@pytest.mark.parametrize("family", FAMILIES)
def test_fp32_matches_golden(make_ckpt, family, tp, pp):
    report = verify_checkpoint(make_ckpt(family, tp=tp, pp=pp), fixture_dir(family))
    assert report["ok"] and report["tolerance"] == 1e-5
    assert (report["tp"], report["pp"], report["world_size"]) == (tp, pp, tp * pp)
    assert [p["tokens"] for p in report["prompts"]] == [11, 6]
    for p in report["prompts"]:
        assert p["rel_l2"] < 1e-5 and p["argmax_agree"] == 1.0 and p["max_abs"] < 1e-4
    assert report["warnings"] == []


@pytest.mark.parametrize("family", ["gpt2", "llama3_gqa"])
@pytest.mark.parametrize("ckpt_dtype,compute", [("float32", "float16"), ("float32", "bfloat16"),
                                                ("float16", "float32"), ("bfloat16", "bfloat16")])
def test_reduced_precision_within_default_tolerance(make_ckpt, family, ckpt_dtype, compute):
    report = verify_checkpoint(make_ckpt(family, tp=2, dtype=ckpt_dtype), fixture_dir(family), dtype=compute)
    precision = effective_precision(compute, ckpt_dtype)
    assert report["ok"] and report["tolerance"] == DEFAULT_TOLERANCE[precision]
    # rounding really happens: the error sits well above fp32 level, yet far below the tolerance
    assert all(1e-4 < p["rel_l2"] < DEFAULT_TOLERANCE[precision] / 2 for p in report["prompts"])


def test_effective_precision_is_the_coarser_dtype():
    assert effective_precision("float32", "float32") == "float32"
    assert effective_precision("float32", "float16") == "float16"
    assert effective_precision("float16", "bfloat16") == "bfloat16"
    assert effective_precision("bfloat16", "float32") == "bfloat16"
    assert effective_precision("float32", None) == "float32"


@pytest.mark.parametrize("sharding_dim", [0, 1])
def test_parallel_embedding_shards(make_ckpt, sharding_dim):
    ckpt = make_ckpt("llama", tp=2, parallel_embedding=sharding_dim)
    assert verify_checkpoint(ckpt, fixture_dir("llama"))["ok"]


@pytest.mark.parametrize("tp,parallel", [(1, None), (2, 0)])
def test_tied_lm_head_may_be_omitted(make_ckpt, tp, parallel):
    # GPT-2 ties lm_head to wte: with the embedding shard shaped like the lm_head shard, the rank file may omit it.
    ckpt = make_ckpt("gpt2", tp=tp, parallel_embedding=parallel, omit_tied_lm_head=True)
    assert verify_checkpoint(ckpt, fixture_dir("gpt2"))["ok"]


def test_tolerance_override_flips_the_verdict(make_ckpt):
    ckpt = make_ckpt("llama", tp=2)
    assert not verify_checkpoint(ckpt, fixture_dir("llama"), tolerance=1e-9)["ok"]
