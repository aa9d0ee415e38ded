"""Eager Attention with the GPT attention plugin's semantics, context phase only (full causal recompute, no KV cache)
(tensorrt_llm/layers/attention.py @ 89fd9b74ab7ae753b4c6b3db25a400dca7ea54a0).

- Per rank: num_attention_heads / tp query heads, ceil(num_kv_heads / tp) kv heads (a replicated head when
  kv < tp); qkv = ColumnLinear(hidden, tp * (h_r + 2 kv_r) * head_size, gather_output=False), so a rank's fused rows
  are [q_r; k_r; v_r]; dense = RowLinear(tp * h_r * head_size, hidden, bias=dense_bias (defaults to bias)).
- Softmax scale 1 / (sqrt(head_size) * q_scaling); the mask is causal (or none for bidirectional).
- RoPE (rope_gpt_neox: rotate-half pairs (i, i + rd/2); rope_gptj: interleaved pairs (2i, 2i+1)) on the first
  rotary_embedding_dim = int(head_size * rotary_embedding_percentage) channels of q and k. The frequencies come from
  the model's tables (`create_attention_const_params` from config.rotary_base / rotary_scaling / rotary_pct /
  rotary_dim, handed over by `fill_attention_params`), as the engine feeds the plugin; a table whose width differs
  from the layer's rotary dim is an error. Angles and rotation in float32 (kiln_bridge.rope follows
  RopeEmbeddingUtils of tensorrt_llm/functional.py), softmax in float32, outputs cast to the layer dtype.
- rotary_scaling yarn: the model's table is YaRN's (frequencies and a cos/sin multiplier, `AttentionParams.
  rotary_mscale`); dynamic: the plugin recomputes the frequencies per sequence from the layer's own
  rotary_embedding_base, factor and max_position_embeddings and the sequence length (kiln_bridge.rope's header cites
  the kernel), and the model's table needs rotary_scaling["alpha"] as 1.2.1's does (a one-line error without it).
- learned_absolute: no rotation. ALiBi, relative attention, long-rope, mrope, cross attention and Gemma 3's
  local rotary base (is_local) are refused rather than guessed.
- max_attn_value > 0 (Gemma 2's attention-logit soft-capping): the plugin's attn_logit_softcapping_scale c turns
  each scaled logit s into c * tanh(s / c) (cpp/tensorrt_llm/kernels/unfusedAttentionKernels.cu softmax_kernel,
  the stored 2025 version), here before the causal / window mask as in the fused context kernels (the unfused kernel
  adds its -10000 mask first, which leaves masked logits at -c).
- qk_layernorm (Qwen3, Gemma 3, OLMo 2): with layernorm_share (the default), one q_layernorm and one k_layernorm of
  LayerNormType(attention_head_size, eps) normalize every head of q and k after the qkv split and before the plugin
  rotates them; parameter names attention.q_layernorm.weight / k_layernorm.weight.
- Sliding windows are a runtime setting, as in the engine: the runtime hands every layer the per-layer list
  `kv_cache_params.host_max_attention_window_sizes` (gpt_attention's host_max_attention_window_sizes, one entry per
  layer of this pipeline stage, taken at `local_layer_idx`); a query at position i then sees keys i - w + 1 .. i (a
  cyclic KV cache of w tokens). The eager runtime fills the list from config.json's runtime_defaults, as
  RuntimeDefaults.max_attention_window does when a run sets no window (run_prompt in models/modeling_utils.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import rope as rope_tables
from ..functional import AttentionMaskType, LayerNormType, PositionEmbeddingType, Tensor
from ..module import Module
from ..parameter import Parameter
from .linear import ColumnLinear, RowLinear
from .normalization import LayerNorm, RmsNorm

_QK_NORMS = {LayerNormType.LayerNorm: LayerNorm, LayerNormType.RmsNorm: RmsNorm}


@dataclass
class AttentionParams:
    """What `fill_attention_params` hands every Attention: the model's RoPE frequencies (per pair, float32)."""

    rotary_inv_freq: torch.Tensor | None = None
    rotary_mscale: float = 1.0
    positions: torch.Tensor | None = None


@dataclass
class KeyValueCacheParams:
    past_key_value: list | None = None
    host_max_attention_window_sizes: list[int] | None = None


def _as_position_type(value) -> PositionEmbeddingType:
    if isinstance(value, PositionEmbeddingType):
        return value
    return PositionEmbeddingType.from_string(str(value))


class Attention(Module):
    def __init__(self, *, local_layer_idx, hidden_size, num_attention_heads, num_kv_heads=None,
                 max_position_embeddings=1024, num_layers=1, apply_query_key_layer_scaling=False,
                 attention_head_size=None, qk_layernorm=False, layernorm_type=None, layernorm_share=True,
                 inner_layernorm=False, eps=1e-05, attention_mask_type=AttentionMaskType.padding, bias=True,
                 dtype=None, position_embedding_type=PositionEmbeddingType.learned_absolute,
                 rotary_embedding_base=10000.0, rotary_embedding_base_local=1.0, rotary_embedding_scaling=None,
                 rotary_embedding_percentage=1.0, rope_scaling_short_factors=None, rope_scaling_long_factors=None,
                 rope_scaling_short_mscale=None, rope_scaling_long_mscale=None, original_max_position_embeddings=1024,
                 tp_group=None, tp_size=1, tp_rank=0, quant_mode=None, q_scaling=1.0, cross_attention=False,
                 relative_attention=False, max_distance=0, num_buckets=0, dense_bias=None, clip_qkv=None,
                 alibi_bias_max=8, skip_cross_kv=False, max_attn_value=0.0, block_sparse_params=None,
                 use_implicit_relative_attention=False, reorder=False, enable_qkv=True, cp_group=(0,), cp_size=1,
                 cp_rank=0, max_seqlen_for_logn_scaling=8192, use_logn_scaling=False, is_local=False):
        super().__init__()
        refused = {"qk_layernorm without layernorm_share": qk_layernorm and not layernorm_share,
                   "inner_layernorm": inner_layernorm, "cross_attention": cross_attention,
                   "relative_attention": relative_attention, "clip_qkv": clip_qkv is not None,
                   "use_logn_scaling": use_logn_scaling, "cp_size>1": cp_size > 1, "is_local": is_local,
                   "apply_query_key_layer_scaling": apply_query_key_layer_scaling}
        bad = [k for k, v in refused.items() if v]
        if bad:
            raise NotImplementedError(f"eager tensorrt_llm: Attention({', '.join(bad)}) is not modelled")
        if attention_mask_type not in (AttentionMaskType.causal, AttentionMaskType.bidirectional):
            raise NotImplementedError(f"eager tensorrt_llm: attention_mask_type {attention_mask_type!r} is not modelled")
        self.position_embedding_type = _as_position_type(position_embedding_type)
        if self.position_embedding_type not in (PositionEmbeddingType.learned_absolute,
                                                PositionEmbeddingType.rope_gpt_neox, PositionEmbeddingType.rope_gptj):
            raise NotImplementedError(f"eager tensorrt_llm: position_embedding_type "
                                      f"{self.position_embedding_type.name} is not modelled")
        if num_attention_heads % tp_size:
            raise ValueError("num_attention_heads must be divisible by tp_size")
        self.local_layer_idx = local_layer_idx
        self.attention_mask_type = attention_mask_type
        self.attention_head_size = hidden_size // num_attention_heads if attention_head_size is None else attention_head_size
        self.num_attention_heads = num_attention_heads // tp_size
        kv = num_attention_heads if num_kv_heads is None else num_kv_heads
        self.num_attention_kv_heads = (kv + tp_size - 1) // tp_size
        self.tp_group, self.tp_size, self.tp_rank = tp_group, tp_size, tp_rank
        self.q_scaling = q_scaling
        self.max_attn_value = float(max_attn_value or 0.0)
        self.norm_factor = math.sqrt(self.attention_head_size)
        self.rotary_embedding_base = float(rotary_embedding_base)
        self.rotary_embedding_scaling = rotary_embedding_scaling
        self.max_position_embeddings = int(max_position_embeddings)
        self.rotary_embedding_dim = 0
        if self.position_embedding_type.is_rope():
            self.rotary_embedding_dim = int(self.attention_head_size * rotary_embedding_percentage)
        d = self.attention_head_size
        self.qkv = ColumnLinear(hidden_size, tp_size * (self.num_attention_heads + 2 * self.num_attention_kv_heads) * d,
                                bias=bias, dtype=dtype, tp_group=tp_group, tp_size=tp_size, gather_output=False)
        self.dense = RowLinear(tp_size * self.num_attention_heads * d, hidden_size,
                               bias=bias if dense_bias is None else dense_bias, dtype=dtype, tp_group=tp_group,
                               tp_size=tp_size)
        self.qk_layernorm = qk_layernorm
        if qk_layernorm:
            norm = _QK_NORMS.get(LayerNormType.RmsNorm if layernorm_type is None else LayerNormType(layernorm_type))
            if norm is None:
                raise NotImplementedError(f"eager tensorrt_llm: qk_layernorm with {layernorm_type!r} is not modelled")
            self.q_layernorm = norm(d, eps=eps, dtype=dtype)
            self.k_layernorm = norm(d, eps=eps, dtype=dtype)

    # ---- model-level constants (DecoderModelForCausalLM) ---------------------------------------------------------

    @staticmethod
    def create_attention_const_params(model_cls, config) -> None:
        """RoPE frequencies from the config, registered on the top model as a buffer, as upstream does."""
        pet = _as_position_type(config.position_embedding_type)
        if not pet.is_rope():
            return
        head = config.head_size or config.hidden_size // config.num_attention_heads
        dim = getattr(config, "rotary_dim", None) or int(head * getattr(config, "rotary_pct", 1.0))
        base, scaling = getattr(config, "rotary_base", 10000.0), getattr(config, "rotary_scaling", None)
        rope_tables.check_buildable(scaling)
        kind = rope_tables.scaling_type(scaling)
        if kind == "yarn":
            freqs, model_cls.rotary_mscale = rope_tables.yarn(int(dim), base, scaling)
        elif kind == "dynamic":  # the table (NTK-alpha base) goes unused: the kernel recomputes per sequence
            freqs = rope_tables.inv_freq(int(dim), base, None)
        else:
            freqs = rope_tables.inv_freq(int(dim), base, scaling)
        model_cls.register_parameter("rotary_inv_freq", Parameter(freqs, dtype="float32", is_buffer=True))

    @staticmethod
    def fill_attention_params(model_cls, attention_params: AttentionParams | None) -> AttentionParams:
        params = attention_params or AttentionParams()
        inv = getattr(model_cls, "rotary_inv_freq", None)
        if isinstance(inv, Parameter):
            params.rotary_inv_freq = inv.value.t
            params.rotary_mscale = float(getattr(model_cls, "rotary_mscale", 1.0))
        return params

    # ---- forward -------------------------------------------------------------------------------------------------

    def forward(self, hidden_states: Tensor, attention_mask=None, use_cache=False, spec_decoding_params=None,
                mrope_params=None, kv_cache_params=None, attention_params=None, encoder_output=None,
                position_embedding=None, norm_before_bmm1=False, lora_layer_params=None, cross_kv_cache_gen=None,
                cross_kv_reuse=None, all_reduce_params=None, skip_attn=None):
        if use_cache:
            raise NotImplementedError("eager tensorrt_llm: the KV cache (use_cache=True) is not modelled")
        x = hidden_states.t
        dtype = x.dtype
        n_tok = x.shape[0]
        h, kv, d = self.num_attention_heads, self.num_attention_kv_heads, self.attention_head_size
        qkv = self.qkv(hidden_states).t.float()
        q, k, v = torch.split(qkv, [h * d, kv * d, kv * d], dim=-1)
        q, k, v = q.reshape(n_tok, h, d), k.reshape(n_tok, kv, d), v.reshape(n_tok, kv, d)
        if self.qk_layernorm:  # per head, in the layer dtype, before the plugin's rotation
            q = self.q_layernorm(Tensor(q.to(dtype))).t.float()
            k = self.k_layernorm(Tensor(k.to(dtype))).t.float()
        if self.rotary_embedding_dim:
            q, k = self._rotate(q, k, attention_params, x.device)
        q, k = q.to(dtype).float(), k.to(dtype).float()  # the plugin stores rotated q/k in the KV dtype
        v = v.to(dtype).float()
        group = h // kv if kv <= h else 1
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / (self.norm_factor * self.q_scaling)
        if self.max_attn_value > 0:
            scores = self.max_attn_value * torch.tanh(scores / self.max_attn_value)
        if self.attention_mask_type == AttentionMaskType.causal:
            mask = torch.ones(n_tok, n_tok, dtype=torch.bool, device=x.device).triu(1)
            window = self._window(kv_cache_params)
            if window is not None:
                mask |= torch.ones(n_tok, n_tok, dtype=torch.bool, device=x.device).tril(-window)
            scores = scores.masked_fill(mask, float("-inf"))
        probs = torch.softmax(scores, dim=-1).to(dtype).float()
        ctx = torch.einsum("hqk,khd->qhd", probs, v).reshape(n_tok, h * d).to(dtype)
        return self.dense(Tensor(ctx))

    def _window(self, kv_cache_params) -> int | None:
        """This layer's entry of the runtime's per-layer window list (None: no list, the whole sequence)."""
        sizes = None if kv_cache_params is None else kv_cache_params.host_max_attention_window_sizes
        if sizes is None:
            return None
        if self.local_layer_idx >= len(sizes):
            raise RuntimeError(f"eager tensorrt_llm: {len(sizes)} attention windows for local layer {self.local_layer_idx}")
        return int(sizes[self.local_layer_idx])

    def _rotate(self, q, k, attention_params, device):
        inv = None if attention_params is None else attention_params.rotary_inv_freq
        if inv is None:
            raise RuntimeError("eager tensorrt_llm: Attention with RoPE got no rotary_inv_freq (the model must be a "
                               "DecoderModelForCausalLM, whose tables feed the attention plugin)")
        rd = self.rotary_embedding_dim
        if inv.numel() * 2 != rd:
            raise RuntimeError(f"eager tensorrt_llm: the model's RoPE table covers {inv.numel() * 2} channels but "
                               f"attention layer {self.local_layer_idx} rotates {rd} "
                               "(config rotary_dim/rotary_pct disagree with rotary_embedding_percentage)")
        positions = torch.arange(q.shape[0], device=device)
        scaling = self.rotary_embedding_scaling
        if rope_tables.scaling_type(scaling) == "dynamic":
            inv = rope_tables.dynamic_inv_freq(rd, self.rotary_embedding_base, float(scaling.get("factor", 1.0)),
                                               self.max_position_embeddings, q.shape[0])
        cos, sin = rope_tables.cos_sin(positions, inv.float())
        if attention_params.rotary_mscale != 1.0:
            cos, sin = cos * attention_params.rotary_mscale, sin * attention_params.rotary_mscale
        style = self.position_embedding_type.name
        return rope_tables.apply(q, cos, sin, rd, style), rope_tables.apply(k, cos, sin, rd, style)
