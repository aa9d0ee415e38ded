"""The manifest-generated fake tensorrt_llm rejects what the real 1.2 API lacks (so build tests mean something)."""
import dataclasses

import pytest
from fake_trtllm import FakeTrtLlm


@pytest.fixture
def fake():
    f = FakeTrtLlm().install()
    yield f
    f.uninstall()


def test_real_signatures_bind_and_are_recorded(fake):
    import tensorrt_llm
    from tensorrt_llm.layers import Attention, GatedMLP

    Attention(local_layer_idx=0, hidden_size=64, num_attention_heads=4, num_kv_heads=2,
              rotary_embedding_base=500000.0, position_embedding_type=None)
    GatedMLP(64, 172, "silu", bias=False)
    assert [c.name for c in fake.calls] == ["tensorrt_llm.layers.attention.Attention.__init__",
                                            "tensorrt_llm.layers.mlp.GatedMLP.__init__"]
    assert fake.calls[0].args["num_kv_heads"] == 2 and fake.calls[0].receiver == "Attention"
    assert tensorrt_llm.__version__ == "1.2.1" and dataclasses.is_dataclass(tensorrt_llm.BuildConfig)


def test_unknown_keywords_arity_and_names_are_rejected(fake):
    import tensorrt_llm
    from tensorrt_llm.layers import Attention
    from tensorrt_llm.models import PretrainedConfig

    with pytest.raises(TypeError, match="unexpected keyword argument 'rotary_base'"):
        Attention(local_layer_idx=0, hidden_size=64, num_attention_heads=4, rotary_base=1.0)
    with pytest.raises(TypeError, match="missing a required argument: 'hidden_size'"):
        Attention(local_layer_idx=0, num_attention_heads=4)
    with pytest.raises(TypeError, match="too many positional arguments"):
        Attention(0, 64, 4)  # keyword-only in 1.2
    with pytest.raises(TypeError, match="unexpected keyword argument 'rank'"):
        PretrainedConfig.from_json_file("config.json", rank=0)
    with pytest.raises(TypeError):
        tensorrt_llm.BuildConfig(max_output_len=8)  # a pre-1.0 field
    with pytest.raises(AttributeError):
        tensorrt_llm.build_engine  # noqa: B018 - not in the API
    with pytest.raises(ImportError):
        from tensorrt_llm.models import LlamaForCausalLM  # noqa: F401 - the class is LLaMAForCausalLM


def test_config_lookup_goes_through_model_map(fake, make_ckpt):
    from tensorrt_llm.models import MODEL_MAP, PretrainedConfig

    ckpt = make_ckpt("llama", tp=2)
    config = PretrainedConfig.from_json_file(ckpt + "/config.json")
    assert type(config).__name__ == "LLaMAConfig" and config.mapping.tp_size == 2
    config.set_rank(1)
    assert (config.mapping.tp_rank, config.mapping.pp_rank) == (1, 0)
    model = MODEL_MAP["LlamaForCausalLM"].from_checkpoint(ckpt, config=config)
    assert model.weights_file.endswith("rank1.safetensors")
    with pytest.raises(KeyError):
        PretrainedConfig.from_dict({"architecture": "KilnUnregistered"})
