"""Eager `tensorrt_llm._torch.modules.qk_norm_attention.QKNormRoPEAttention` (@ a98a9061d72f6fd39f5d055ebdd2c6878a100e2c,
the 2025 version: Qwen3, Gemma3, Exaone4): an Attention whose apply_rope first normalizes every head of q and k with
q_norm / k_norm = RMSNorm(hidden_size=head_dim, eps=pretrained_config.rms_norm_eps, has_weights=True), then rotates
(skip_rope: no rotation). fuse_qk_norm_rope selects TensorRT-LLM's fused CUDA kernel for the same computation (norm,
then RoPE at rope.theta with only yarn scaling); both paths are the one computation here. use_gemma_rms_norm and
attn_output_gate are refused.
"""
from __future__ import annotations

from .attention import Attention
from .rms_norm import RMSNorm


class QKNormRoPEAttention(Attention):
    def __init__(self, *, hidden_size, num_attention_heads, num_key_value_heads, max_position_embeddings, bias,
                 pos_embd_params=None, skip_rope=False, fuse_qk_norm_rope=True, layer_idx=None, dtype=None,
                 dense_bias=None, config, q_scaling=1.0, disable_deep_gemm=False, use_gemma_rms_norm=False,
                 attn_output_gate=None):
        if use_gemma_rms_norm or attn_output_gate:
            raise NotImplementedError("eager tensorrt_llm: QKNormRoPEAttention(use_gemma_rms_norm / attn_output_gate) "
                                      "is not modelled")
        if fuse_qk_norm_rope and skip_rope:
            raise AssertionError("Fusing qk norm and skipping rope is not supported")
        super().__init__(hidden_size=hidden_size, num_attention_heads=num_attention_heads,
                         num_key_value_heads=num_key_value_heads, max_position_embeddings=max_position_embeddings,
                         bias=bias, pos_embd_params=None if skip_rope else pos_embd_params, layer_idx=layer_idx,
                         dtype=dtype, dense_bias=dense_bias, config=config, q_scaling=q_scaling)
        pretrained = config.pretrained_config
        eps = pretrained.rms_norm_eps
        self.q_norm = RMSNorm(hidden_size=self.head_dim, eps=eps, dtype=dtype, has_weights=True)
        self.k_norm = RMSNorm(hidden_size=self.head_dim, eps=eps, dtype=dtype, has_weights=True)

    def apply_qk_norm_heads(self, q, k, dtype):
        return self.q_norm(q.to(dtype)).float(), self.k_norm(k.to(dtype)).float()
