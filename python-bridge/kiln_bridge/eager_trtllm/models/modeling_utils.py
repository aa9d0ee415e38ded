"""Eager PretrainedConfig, PretrainedModel, DecoderLayerList, DecoderModelForCausalLM
(tensorrt_llm/models/modeling_utils.py @ b35ac1b64368513d215c57d2ed01d62d910df8da).

- PretrainedConfig: keyword constructor with upstream's defaults and derivations (num_key_value_heads ->
  num_attention_heads, intermediate_size -> 4 * hidden, head_size -> hidden // heads, rotary_embedding_dim ->
  rotary_dim or int(head_size * rotary_pct)); unknown keys become attributes; `mapping` dict -> Mapping;
  position_embedding_type string -> enum; `from_dict` picks MODEL_MAP[architecture].config_class.
- PretrainedModel.from_checkpoint(dir, rank): config.json (rank set), rank{r}.safetensors, `cls(config)`, `load`.
  `load`: every parameter that is not already initialised must be in the file with the same shape; lm_head.weight
  may be absent when the embedding is in the file (tied). Upstream raises on missing and mis-shaped tensors and
  warns on unused ones; the verifier treats an unused tensor as an error too (it means model.py dropped a weight).
- DecoderLayerList: the layers of this pipeline stage (Mapping.pp_layers), named 0..n-1 within the stage.
- DecoderModelForCausalLM.forward: RoPE tables from the config (Attention.create_attention_const_params), the
  transformer, then on the last stage lm_head over every token (gather_context_logits), soft-capped as
  c * tanh(logits / c) when the config holds every Gemma2ConfigGroup key (query_pre_attn_scalar,
  final_logit_softcapping, attn_logit_softcapping) with a final cap c, cast to logits_dtype; other stages return the
  hidden states they sent.
"""
from __future__ import annotations

import json
import os

import torch

from ... import safetensors_io
from .. import _rank
from ..functional import PositionEmbeddingType, Tensor, str_dtype_to_torch
from ..layers.attention import Attention, AttentionParams, KeyValueCacheParams
from ..mapping import Mapping
from ..module import Module, ModuleList
from ..quantization import QuantMode


class CheckpointLoadError(RuntimeError):
    """A rank file does not match the model's parameters (missing, unused or mis-shaped tensors)."""


class PretrainedConfig:
    def __init__(self, *, architecture, dtype, hidden_size, num_hidden_layers, num_attention_heads, vocab_size=None,
                 hidden_act="gelu", logits_dtype="float32", norm_epsilon=1e-5,
                 position_embedding_type=PositionEmbeddingType.learned_absolute, max_position_embeddings=None,
                 rotary_embedding_dim=None, num_key_value_heads=None, intermediate_size=None, mapping=None,
                 quantization=None, use_parallel_embedding=False, embedding_sharding_dim=0, head_size=None,
                 qk_layernorm=False, runtime_defaults=None, **kwargs):
        self.architecture, self.dtype, self.logits_dtype = architecture, dtype, logits_dtype
        self.hidden_size, self.num_hidden_layers, self.num_attention_heads = hidden_size, num_hidden_layers, num_attention_heads
        self.vocab_size, self.hidden_act, self.norm_epsilon = vocab_size, hidden_act, norm_epsilon
        self.position_embedding_type = (position_embedding_type if isinstance(position_embedding_type, PositionEmbeddingType)
                                        else PositionEmbeddingType.from_string(position_embedding_type))
        self.max_position_embeddings = max_position_embeddings
        self.num_key_value_heads = num_key_value_heads or num_attention_heads
        self.intermediate_size = intermediate_size or 4 * hidden_size
        self.head_size = head_size or hidden_size // num_attention_heads
        self.rotary_embedding_dim = rotary_embedding_dim or kwargs.get(
            "rotary_dim", int(self.head_size * kwargs.get("rotary_pct", 1.0)))
        self.mapping = mapping if isinstance(mapping, Mapping) else Mapping(**(mapping or {}))
        q = quantization or {}
        if any(v for k, v in q.items() if k in ("quant_algo", "kv_cache_quant_algo")):
            raise NotImplementedError(f"eager tensorrt_llm: quantization {q} is not modelled")
        self.quantization = q
        self.use_parallel_embedding, self.embedding_sharding_dim = use_parallel_embedding, embedding_sharding_dim
        self.qk_layernorm, self.runtime_defaults = qk_layernorm, runtime_defaults
        for k, v in kwargs.items():
            setattr(self, k, v)

    @property
    def quant_mode(self) -> QuantMode:
        return QuantMode(0)

    @property
    def kv_dtype(self) -> str:
        return self.dtype

    def set_rank(self, rank: int) -> None:
        self.mapping.rank = rank

    @classmethod
    def from_dict(cls, config: dict) -> PretrainedConfig:
        from . import MODEL_MAP

        model_cls = MODEL_MAP.get(config.get("architecture"))
        config_cls = getattr(model_cls, "config_class", None) or cls
        return config_cls(**dict(config))

    @classmethod
    def from_json_file(cls, path: str) -> PretrainedConfig:
        with open(path) as f:
            return cls.from_dict(json.load(f))

    @classmethod
    def from_checkpoint(cls, ckpt_dir: str) -> PretrainedConfig:
        return cls.from_json_file(os.path.join(ckpt_dir, "config.json"))


class PretrainedModel(Module):
    config_class = PretrainedConfig

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.config = config

    @classmethod
    def from_config(cls, config: PretrainedConfig) -> PretrainedModel:
        return cls(config)

    @classmethod
    def from_checkpoint(cls, ckpt_dir: str, rank: int | None = None, config: PretrainedConfig | None = None,
                        *, preprocess_weights_hook=None) -> PretrainedModel:
        if config is None:
            config = (cls.config_class or PretrainedConfig).from_json_file(os.path.join(ckpt_dir, "config.json"))
        if rank is not None:
            config.set_rank(rank)
        rank = config.mapping.rank
        weights = safetensors_io.load_file(os.path.join(ckpt_dir, f"rank{rank}.safetensors"))
        if preprocess_weights_hook is not None:
            weights = preprocess_weights_hook(weights)
        model = cls(config)
        model.load(weights)
        return model

    def load(self, weights: dict[str, torch.Tensor], from_pruned: bool = False) -> None:
        params = dict(self.named_parameters())
        required = {n for n, p in params.items() if not p.is_initialized}
        provided = set(weights)
        missing = required - provided
        if "lm_head.weight" in missing and any(n.endswith("vocab_embedding.weight") for n in provided):
            missing.discard("lm_head.weight")
            weights = dict(weights)
            weights["lm_head.weight"] = next(v for n, v in weights.items() if n.endswith("vocab_embedding.weight"))
        if missing:
            raise CheckpointLoadError(f"Required but not provided tensors: {sorted(missing)}")
        unused = sorted(provided - set(params))
        if unused:
            raise CheckpointLoadError(f"tensors in the rank file that no parameter of the model uses: {unused}")
        for name in sorted(required):
            try:
                params[name].value = weights[name]
            except ValueError as e:
                raise CheckpointLoadError(f"{name}: {e}") from None


class DecoderLayerList(ModuleList):
    def __init__(self, cls, config):
        self.num_hidden_layers = config.num_hidden_layers
        self.layer_list = config.mapping.pp_layers(config.num_hidden_layers)
        super().__init__([cls(config, idx) for idx in self.layer_list])

    def forward(self, hidden_states, use_cache=False, attention_mask=None, kv_cache_params=None,
                attention_params=None, mrope_params=None, position_ids=None, lora_params=None,
                spec_decoding_params=None, vision_token_mask=None):
        kwargs = {}
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        if spec_decoding_params is not None:
            kwargs["spec_decoding_params"] = spec_decoding_params
        if lora_params is not None:
            raise NotImplementedError("eager tensorrt_llm: LoRA parameters are not modelled")
        presents = []
        for layer in self:
            hidden_states = layer(hidden_states, use_cache=use_cache, attention_mask=attention_mask,
                                  kv_cache_params=kv_cache_params, attention_params=attention_params, **kwargs)
            if use_cache:
                hidden_states, present = hidden_states
                presents.append(present)
        return (hidden_states, presents) if use_cache else hidden_states


class DecoderModelForCausalLM(PretrainedModel):
    def __init__(self, config: PretrainedConfig, transformer, lm_head):
        super().__init__(config)
        self.transformer = transformer
        self.lm_head = lm_head
        self.mup_width_multiplier = getattr(config, "mup_width_multiplier", None)
        Attention.create_attention_const_params(self, config)
        self.position_embedding_type = config.position_embedding_type

    def forward(self, input_ids, position_ids=None, use_cache=False, last_token_ids=None, attention_mask=None,
                kv_cache_params=None, attention_params=None, mrope_params=None, hidden_states=None,
                prompt_embedding_table=None, prompt_tasks=None, prompt_vocab_size=None, lora_params=None,
                spec_decoding_params=None):
        attention_params = Attention.fill_attention_params(self, attention_params)
        kwargs = {"input_ids": input_ids, "position_ids": position_ids, "use_cache": use_cache,
                  "attention_mask": attention_mask, "kv_cache_params": kv_cache_params,
                  "attention_params": attention_params}
        for name, value in (("lora_params", lora_params), ("hidden_states", hidden_states),
                            ("prompt_embedding_table", prompt_embedding_table), ("prompt_tasks", prompt_tasks),
                            ("prompt_vocab_size", prompt_vocab_size), ("spec_decoding_params", spec_decoding_params)):
            if value is not None:
                kwargs[name] = value
        hidden = self.transformer.forward(**kwargs)
        if use_cache:
            hidden, _presents = hidden
        if not self.config.mapping.is_last_pp_rank():
            return hidden
        logits = self.lm_head(hidden)
        for attr in ("output_multiplier_scale", "logits_soft_cap"):
            if getattr(self.config, attr, None):
                raise NotImplementedError(f"eager tensorrt_llm: config.{attr} is not modelled")
        out = logits.t
        cap = _final_softcap(self.config)
        if cap:
            out = (cap * torch.tanh(out.float() / cap)).to(out.dtype)
        return Tensor(out.to(str_dtype_to_torch(self.config.logits_dtype)))


GEMMA2_CONFIG_GROUP = ("query_pre_attn_scalar", "final_logit_softcapping", "attn_logit_softcapping")


def _final_softcap(config) -> float | None:
    """The final-logit cap DecoderModelForCausalLM applies: only with the whole Gemma2ConfigGroup in the config."""
    if all(hasattr(config, k) for k in GEMMA2_CONFIG_GROUP):
        return getattr(config, "final_logit_softcapping", None) or None
    return None


def stage_attention_windows(config: PretrainedConfig) -> list[int] | None:
    """The per-layer windows this pipeline stage's attention layers get from the runtime when a run sets none:
    config.json's runtime_defaults.max_attention_window (RuntimeDefaults, models/modeling_utils.py @ b35ac1b6), a
    list the executor repeats to cover every layer (KvCacheConfig.max_attention_window), restricted to this stage's
    layers (Mapping.pp_layers). None when the config has no windows."""
    defaults = config.runtime_defaults or {}
    windows = defaults.get("max_attention_window") if isinstance(defaults, dict) else getattr(defaults, "max_attention_window", None)
    if not windows:
        return None
    full = [int(windows[i % len(windows)]) for i in range(config.num_hidden_layers)]
    return [full[i] for i in config.mapping.pp_layers(config.num_hidden_layers)]


def run_prompt(model: DecoderModelForCausalLM, input_ids: torch.Tensor) -> torch.Tensor | None:
    """Logits [T, vocab_padded] of one prompt on the last stage (None elsewhere): tokens packed, positions 0..T-1,
    the hidden-state placeholder of a later stage shaped [T, hidden] in the model dtype (what F.recv fills), the
    runtime's per-layer attention windows in the KV-cache parameters."""
    config = model.config
    dev = _rank.device()
    ids = Tensor(input_ids.to(dev, torch.int32))
    positions = Tensor(torch.arange(input_ids.shape[0], device=dev, dtype=torch.int32))
    hidden = None
    if not config.mapping.is_first_pp_rank():
        hidden = Tensor(torch.zeros(input_ids.shape[0], config.hidden_size, device=dev,
                                    dtype=str_dtype_to_torch(config.dtype)))
    kv = KeyValueCacheParams(host_max_attention_window_sizes=stage_attention_windows(config))
    out = model.forward(ids, position_ids=positions, use_cache=False, attention_params=AttentionParams(),
                        kv_cache_params=kv, hidden_states=hidden)
    return out.t if config.mapping.is_last_pp_rank() else None
