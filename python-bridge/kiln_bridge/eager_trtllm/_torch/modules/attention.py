"""Eager `tensorrt_llm._torch.modules.attention.Attention` (@ c6d3bb2aae305e0b5ac1b97b7954dcf87d653322, with the
facts in ../shared/docs/trtllm-pytorch-facts.md "Attention"), backend: plain causal attention over one sequence.

- head_dim = pretrained_config.head_dim, else hidden // heads; per rank heads / tp query heads and ceil(kv / tp) kv
  heads; qkv_proj = Linear(COLUMN, FUSED_QKV_LINEAR) of [q_r; k_r; v_r]; o_proj = Linear(ROW, bias=dense_bias,
  which defaults to bias).
- RoPE from pos_embd_params (RopeParams frequencies; is_neox: rotate-half pairs (i, i + dim/2), else interleaved
  pairs (2i, 2i+1)) on the first rope.dim channels of q and k, at `position_ids`; None = no rotation.
- Softmax scale 1 / (sqrt(head_dim) * q_scaling), causal mask within each sequence of the packed batch
  (attn_metadata.seq_lens), softmax in float32.
- LoRA: o_proj carries o_lora = LoraLayer([ATTENTION_DENSE], [hidden]); splitted_qkv_lora = LoraLayer([ATTENTION_Q,
  ATTENTION_K, ATTENTION_V], [q_size, kv_size, kv_size]) and fused_qkv_lora = LoraLayer([ATTENTION_QKV], [q_size + 2
  kv_size]) (local sizes) add to qkv_proj's output before RoPE when lora_params is non-empty; o_proj gets
  lora_params and layer_idx.
- `forward(..., attention_window_size=w)`: the layer's sliding window (../shared/docs/trtllm-pytorch-facts.md
  "Attention": the per-layer window the backend applies with a cyclic KV cache of w tokens), so a query at i sees
  keys i - w + 1 .. i; None is the whole sequence.
"""
from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from .... import rope as rope_tables
from ..attention_backend.interface import PositionalEmbeddingParams
from ..peft.lora.layer import LoraLayer, LoraModuleType
from .linear import Linear, TensorParallelMode, WeightMode, WeightsLoadingConfig


class Attention(nn.Module):
    def __init__(self, *, hidden_size, num_attention_heads, num_key_value_heads, max_position_embeddings, bias,
                 pos_embd_params: PositionalEmbeddingParams | None = None, rope_fusion=None, layer_idx=None,
                 dtype=None, dense_bias=None, config=None, q_scaling=1.0, attention_chunk_size=None, **_unused):
        super().__init__()
        if attention_chunk_size is not None:
            raise NotImplementedError("eager tensorrt_llm: chunked attention is not modelled")
        mapping = config.mapping
        tp = mapping.tp_size
        pretrained = config.pretrained_config
        self.head_dim = getattr(pretrained, "head_dim", None) or hidden_size // num_attention_heads
        if num_attention_heads % tp:
            raise ValueError(f"num_attention_heads={num_attention_heads} is not divisible by tp_size={tp}")
        self.num_heads = num_attention_heads // tp
        self.num_key_value_heads = (num_key_value_heads + tp - 1) // tp
        self.q_scaling, self.layer_idx = q_scaling, layer_idx
        self.pos_embd_params = pos_embd_params
        d = self.head_dim
        self.qkv_proj = Linear(hidden_size, tp * (self.num_heads + 2 * self.num_key_value_heads) * d, bias=bias,
                               dtype=dtype, mapping=mapping, tensor_parallel_mode=TensorParallelMode.COLUMN,
                               weights_loading_config=WeightsLoadingConfig(weight_mode=WeightMode.FUSED_QKV_LINEAR))
        self.o_lora = LoraLayer([LoraModuleType.ATTENTION_DENSE], [hidden_size])
        self.o_proj = Linear(tp * self.num_heads * d, hidden_size, bias=bias if dense_bias is None else dense_bias,
                             dtype=dtype, mapping=mapping, tensor_parallel_mode=TensorParallelMode.ROW,
                             lora=self.o_lora)
        q_size, kv_size = self.num_heads * d, self.num_key_value_heads * d
        self.splitted_qkv_lora = LoraLayer(
            [LoraModuleType.ATTENTION_Q, LoraModuleType.ATTENTION_K, LoraModuleType.ATTENTION_V],
            [q_size, kv_size, kv_size])
        self.fused_qkv_lora = LoraLayer([LoraModuleType.ATTENTION_QKV], [q_size + 2 * kv_size])

    def apply_qk_norm_heads(self, q, k, dtype):
        """Per-head q/k before the rotation ([tokens, heads, head_dim], float32); Attention leaves them as they are
        (QKNormRoPEAttention normalizes them)."""
        return q, k

    def forward(self, position_ids, hidden_states, attn_metadata, attention_mask=None, mrope_config=None,
                all_reduce_params=None, lora_params=None, attention_window_size=None, **kwargs):
        x = hidden_states
        dtype, n = x.dtype, x.shape[0]
        h, kv, d = self.num_heads, self.num_key_value_heads, self.head_dim
        qkv = self.qkv_proj(x)
        if lora_params:
            for lora in (self.splitted_qkv_lora, self.fused_qkv_lora):
                qkv_lora = lora(x, lora_params, self.layer_idx)
                if qkv_lora is not None:
                    qkv = qkv + qkv_lora
        q, k, v = torch.split(qkv.float(), [h * d, kv * d, kv * d], dim=-1)
        q, k, v = q.reshape(n, h, d), k.reshape(n, kv, d), v.reshape(n, kv, d)
        q, k = self.apply_qk_norm_heads(q, k, dtype)
        p = self.pos_embd_params
        if p is not None:
            if p.rope is None:
                raise NotImplementedError("eager tensorrt_llm: pos_embd_params without RopeParams")
            if position_ids is None:
                raise ValueError("Attention with RoPE needs position_ids")
            cos, sin = rope_tables.cos_sin(position_ids.reshape(-1).to(x.device), p.rope.inv_freq())
            style = "rope_gpt_neox" if p.is_neox else "rope_gptj"
            q = rope_tables.apply(q, cos, sin, int(p.rope.dim), style)
            k = rope_tables.apply(k, cos, sin, int(p.rope.dim), style)
        q, k, v = q.to(dtype).float(), k.to(dtype).float(), v.to(dtype).float()
        k, v = k.repeat_interleave(h // kv, dim=1), v.repeat_interleave(h // kv, dim=1)
        lens = list(getattr(attn_metadata, "seq_lens", None) or [n])
        if sum(lens) != n:
            raise ValueError(f"attn_metadata.seq_lens {lens} do not add up to {n} tokens")
        ctx = torch.cat([self._causal(q[a:a + m], k[a:a + m], v[a:a + m], dtype, attention_window_size)
                         for a, m in zip(itertools.accumulate([0, *lens[:-1]]), lens)])
        return self.o_proj(ctx.reshape(n, h * d).to(dtype), lora_params=lora_params, layer_idx=self.layer_idx)

    def _causal(self, q, k, v, dtype, window=None):
        """One sequence: softmax(q k^T / (sqrt(d) q_scaling), causal, within the sliding window if any) v,
        probabilities rounded to the dtype."""
        n, d = q.shape[0], self.head_dim
        scores = torch.einsum("qhd,khd->hqk", q, k) / (math.sqrt(d) * self.q_scaling)
        mask = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
        if window is not None:  # keys older than the window have left the cyclic KV cache
            mask |= torch.ones(n, n, dtype=torch.bool, device=q.device).tril(-int(window))
        probs = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1).to(dtype).float()
        return torch.einsum("hqk,khd->qhd", probs, v)
