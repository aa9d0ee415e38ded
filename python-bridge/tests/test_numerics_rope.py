"""Unit checks of the TensorRT-LLM semantics the verifier relies on: activations, norms, RoPE tables and styles."""
import math

import pytest
import torch
from kiln_bridge import rope
from kiln_bridge.errors import UnsupportedConfig
from kiln_bridge.numerics import ACT2FN, Numerics


def test_every_gelu_name_is_the_tanh_approximation():
    x = torch.linspace(-4, 4, 101)
    tanh_gelu = torch.nn.functional.gelu(x, approximate="tanh")
    for name in ("gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "openai-gelu"):
        assert torch.allclose(ACT2FN[name](x), tanh_gelu, atol=1e-6), name
    assert (ACT2FN["gelu"](x) - torch.nn.functional.gelu(x)).abs().max() > 1e-4  # not the erf GELU


def test_gated_activations_split_halves_like_tensorrt_llm():
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5]])
    a, gate = x[:, :2], x[:, 2:]
    assert torch.allclose(ACT2FN["swiglu"](x), torch.nn.functional.silu(gate) * a)
    assert torch.allclose(ACT2FN["geglu"](x), a * ACT2FN["gelu"](gate))
    even, odd = x[:, ::2], x[:, 1::2]
    assert torch.allclose(ACT2FN["gegelu"](x), even * torch.sigmoid(1.702 * even) * (odd + 1))


def test_rms_norm_rounds_before_the_weight():
    x, w = torch.randn(4, 8) * 3, torch.randn(8)
    ref = x / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5) * w
    assert torch.allclose(Numerics("float32").rms_norm(x, w, 1e-5), ref, atol=1e-6)
    half = Numerics("float16").rms_norm(x, w, 1e-5)
    assert torch.equal(half, half.half().float())  # values are fp16-representable


def test_rope_styles_rotate_different_pairs():
    rd, T = 4, 3
    freqs = rope.inv_freq(rd, 10000.0, None)
    assert torch.allclose(freqs, torch.tensor([1.0, 0.01]))
    cos, sin = rope.cos_sin(torch.arange(T), freqs)
    x = torch.randn(T, 1, 6)
    neox = rope.apply(x, cos, sin, rd, "rope_gpt_neox")
    gptj = rope.apply(x, cos, sin, rd, "rope_gptj")
    for t in range(T):
        for i, f in enumerate(freqs.tolist()):
            z = complex(x[t, 0, i], x[t, 0, i + rd // 2]) * complex(math.cos(t * f), math.sin(t * f))
            assert neox[t, 0, i].item() == pytest.approx(z.real, abs=1e-5)
            assert neox[t, 0, i + rd // 2].item() == pytest.approx(z.imag, abs=1e-5)
            z = complex(x[t, 0, 2 * i], x[t, 0, 2 * i + 1]) * complex(math.cos(t * f), math.sin(t * f))
            assert gptj[t, 0, 2 * i].item() == pytest.approx(z.real, abs=1e-5)
            assert gptj[t, 0, 2 * i + 1].item() == pytest.approx(z.imag, abs=1e-5)
    assert torch.equal(neox[..., rd:], x[..., rd:]) and torch.equal(gptj[..., rd:], x[..., rd:])  # partial rotary


def test_llama3_and_linear_scaling_tables():
    base = rope.inv_freq(8, 500000.0, None)
    scaled = rope.inv_freq(8, 500000.0, {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
    wavelen = 2 * math.pi / base
    assert scaled[0] == base[0]  # wavelength 6.3 < 16: kept
    assert torch.allclose(scaled[wavelen > 64], base[wavelen > 64] / 8)  # long wavelengths divided by the factor
    assert torch.allclose(rope.inv_freq(8, 10000.0, {"rope_type": "linear", "factor": 4.0}),
                          rope.inv_freq(8, 10000.0, None) / 4)
    assert torch.equal(rope.inv_freq(8, 10000.0, {"rope_type": "default"}), rope.inv_freq(8, 10000.0, None))
    with pytest.raises(UnsupportedConfig, match="dynamic"):
        rope.inv_freq(8, 10000.0, {"type": "dynamic", "factor": 2.0})
