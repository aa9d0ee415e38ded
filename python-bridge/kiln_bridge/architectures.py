"""config.json -> the semantics TensorRT-LLM 1.2 gives that checkpoint, as a `DecoderSpec` (data, no code).

Each built-in family reads config.json the way its TensorRT-LLM model class does (tensorrt_llm/models/{llama,qwen,
gpt,gptj,gptneox}/model.py), including the places where the class ignores config.json:
- LLaMA: RmsNorm, GatedMLP(fc = activated half), rope_gpt_neox over the whole head, q_scaling = 1/attention_multiplier;
  with a `moe` block (Mixtral) every layer's MLP is `MOE` (tensorrt_llm/layers/moe.py @ c388fec7).
- QWen, qwen_type qwen2 (models/qwen/model.py, the QWenConfig version of the 1.2 line): LLaMA's layer with
  Attention(bias=attn_bias, dense_bias=False), GatedMLP(bias=mlp_bias), head_size from config.json; qwen2_moe layers
  are `SharedMoE(use_shared_gate=True)` with experts of moe_intermediate_size and a shared expert of
  moe_shared_expert_intermediate_size, on every layer: mlp_only_layers / decoder_sparse_step are not read there, so
  others are refused.
- GPT: LayerNorm with bias, learned absolute positions or RoPE (rotary_pct), GatedMLP only for swiglu/geglu acts;
  the starcoder2 variant is the same layer (models/gpt/config.py @ 6b25e1e0 maps Starcoder2 onto these fields).
- Gemma 1 (models/gemma/model.py @ 5dedf53b, config.py @ 9df6d722): LLaMA's layer with RmsNorms (the checkpoint
  holds 1 + w), Attention(bias=attn_bias) with head_size, GatedMLP(hidden_act, bias=mlp_bias), token embeddings
  times sqrt(hidden_size) cast back to the model dtype, use_parallel_embedding forced to tp_size > 1.
- Phi-3 (models/phi3/model.py @ c4dc529f, config.py @ 1e6a4f97): RmsNorm layers, Attention without biases and with
  head_size = hidden // heads over rotary_pct, a plain MLP whose hidden_act is swiglu (fc = [x; gate] halves per
  rank), lm_head without bias; the small, MoE and long-rope variants are refused; no pipeline stages.
- Gemma 2 (the same class, architecture Gemma2ForCausalLM): inter_layernorms (post_layernorm on the attention output,
  pre/post_feedforward_layernorm around the MLP), q_scaling = sqrt(query_pre_attn_scalar) / sqrt(head_size), the
  attention logits capped at attn_logit_softcapping (Attention's max_attn_value) and the final logits at
  final_logit_softcapping (DecoderModelForCausalLM, Gemma2ConfigGroup).
- GPT-NeoX (models/gptneox/model.py, DecoderModelForCausalLM version): parallel residual with two LayerNorms
  (input_layernorm, post_attention_layernorm, default eps 1e-5) and two all-reduces, biased MHA with rope_gpt_neox
  over rotary_pct at rotary_emb_base, MLP width 4 x hidden whatever config.json says; no pipeline stages.
- GPT-J: parallel attention + MLP with ONE all-reduce (so mlp.proj.bias lives on tp rank 0 only), MLP width fixed at
  4*hidden, no attention biases, lm_head with bias, ln_f eps fixed at 1e-5, kv heads = heads.
Every family applies config.json's runtime_defaults.max_attention_window (per-layer sliding windows) as the
runtime does when a run sets no window of its own.
Fields that change the computation in ways the verifier does not model are refused with `UnsupportedConfig`.
A config.json with a `kiln` block describes a Kiln custom layer program; those are dispatched to programs registered
with `register_kiln_program` (none yet).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import rope
from .errors import CheckpointError, UnsupportedConfig
from .numerics import GATED_ACT_2_ACT
from .quantized import quant_config

# MoeConfig.ExpertScaleNormalizationMode (tensorrt_llm/layers/moe.py @ c388fec7) values the verifier models:
# NONE = softmax(fp32 logits) then top-k; RENORMALIZE = top-k of the fp32 logits, then softmax over those k.
MOE_NORMALIZATION = {0: "none", 1: "renormalize"}


@dataclass(frozen=True)
class MoeSpec:
    num_experts: int
    top_k: int
    normalization: str          # none | renormalize (MOE_NORMALIZATION)
    expert_size: int            # ffn_hidden_size of one expert
    hidden_act: str             # MOE's hidden_act: gated (swiglu) => fc holds [up; gate] of 2 * expert_size rows
    shared_size: int            # SharedMoE's shared expert MLP width (0: plain MOE)
    shared_act: str             # the shared expert MLP's hidden_act


@dataclass(frozen=True)
class DecoderSpec:
    family: str                 # llama | qwen | gpt | gptj | gptneox
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_size: int
    intermediate_size: int
    norm: str                   # rms | layer
    norm_eps: float
    ln_f_eps: float
    parallel_residual: bool     # GPT-J block: x + allreduce(attn(ln(x)) + mlp(ln(x)))
    parallel_norms: bool        # GPT-NeoX block: x + attn(ln1(x)) + mlp(ln2(x)), each reduced on its own
    gated_mlp: bool             # proj(act(fc(x)) * gate(x))
    hidden_act: str
    qkv_bias: bool
    dense_bias: bool
    mlp_bias: bool
    lm_head_bias: bool
    position: str               # learned_absolute | rope_gpt_neox | rope_gptj
    max_position_embeddings: int
    rotary_dim: int
    rotary_base: float
    rotary_scaling: dict | None
    q_scaling: float
    use_parallel_embedding: bool
    embedding_sharding_dim: int
    logits_dtype: str
    windows: tuple[int, ...] | None = None  # per global layer (runtime_defaults.max_attention_window), None = global
    embedding_scale: float | None = None    # Gemma: token embeddings times sqrt(hidden_size)
    inter_norms: bool = False               # Gemma 2: post-attention, pre- and post-feedforward norms
    attn_softcap: float | None = None       # Gemma 2: c * tanh(scaled logits / c)
    final_softcap: float | None = None      # Gemma 2: c * tanh(logits / c)

    moe: MoeSpec | None = None  # every layer's MLP is a mixture of experts

def _windows(config: dict) -> tuple[int, ...] | None:
    """runtime_defaults.max_attention_window (PretrainedConfig.runtime_defaults -> RuntimeDefaults, models/
    modeling_utils.py @ b35ac1b6), repeated to one entry per layer as the executor's KvCacheConfig does."""
    defaults = config.get("runtime_defaults") or {}
    windows = defaults.get("max_attention_window") if isinstance(defaults, dict) else None
    if not windows:
        return None
    if not all(isinstance(w, int) and w > 0 for w in windows):
        raise CheckpointError(f"config.json runtime_defaults.max_attention_window={windows!r}: expected positive integers")
    layers = int(_require(config, "num_hidden_layers"))
    return tuple(int(windows[i % len(windows)]) for i in range(layers))


def _get(config: dict, key: str, default: Any) -> Any:
    value = config.get(key)
    return default if value is None else value


def _refuse_unless(config: dict, key: str, default: Any) -> None:
    value = _get(config, key, default)
    if value != default:
        raise UnsupportedConfig(f"config.json {key}={value!r} is not supported by the verifier (only {default!r})")


def _require(config: dict, key: str) -> Any:
    if config.get(key) is None:
        raise CheckpointError(f"config.json: required field {key!r} is missing")
    return config[key]


def _common(config: dict) -> dict[str, Any]:
    """Fields every family reads the same way (PretrainedConfig defaults)."""
    quant_config(config)  # FP8 and W4A16_AWQ weights are dequantized on load (quantized.py); others are refused
    hidden, heads = int(_require(config, "hidden_size")), int(_require(config, "num_attention_heads"))
    return dict(
        vocab_size=int(_require(config, "vocab_size")),
        hidden_size=hidden,
        num_layers=int(_require(config, "num_hidden_layers")),
        num_heads=heads,
        num_kv_heads=int(_get(config, "num_key_value_heads", heads)),
        head_size=int(_get(config, "head_size", hidden // heads)),
        intermediate_size=int(_get(config, "intermediate_size", 4 * hidden)),
        norm_eps=float(_get(config, "norm_epsilon", 1e-5)),
        hidden_act=str(_get(config, "hidden_act", "gelu")),
        max_position_embeddings=int(_get(config, "max_position_embeddings", 0)),
        rotary_base=float(_get(config, "rotary_base", 10000.0)),
        rotary_scaling=_rotary_scaling(config),
        use_parallel_embedding=bool(_get(config, "use_parallel_embedding", False)),
        embedding_sharding_dim=int(_get(config, "embedding_sharding_dim", 0)),
        logits_dtype=str(_get(config, "logits_dtype", "float32")),
        windows=_windows(config),
        parallel_norms=False,
    )


def _rotary_scaling(config: dict) -> dict | None:
    scaling = config.get("rotary_scaling")
    rope.check_buildable(scaling)
    return scaling


def _moe_block(config: dict, default_mode: int) -> tuple[int, int, int, int] | None:
    """(num_experts, top_k, normalization_mode, shared_expert_intermediate_size) from config.json's `moe` dict (or the
    legacy moe_num_experts / moe_top_k / moe_normalization_mode keys), None when the model has no MoE (has_moe():
    num_experts > 1). Fields whose non-default values change the routing in ways not modelled are refused."""
    moe = config.get("moe")
    if moe is None:
        moe = {"num_experts": _get(config, "moe_num_experts", 0), "top_k": _get(config, "moe_top_k", 0),
               "normalization_mode": _get(config, "moe_normalization_mode", default_mode)}
    if not isinstance(moe, dict):
        raise CheckpointError("config.json moe: expected an object (MoeConfig.to_dict())")
    experts, top_k = int(_get(moe, "num_experts", 0)), int(_get(moe, "top_k", 0))
    if (experts == 0) != (top_k == 0):
        raise CheckpointError(f"config.json moe: num_experts={experts} and top_k={top_k} must both be 0 or both be set")
    if experts <= 1:
        return None
    if not 1 <= top_k <= experts:
        raise CheckpointError(f"config.json moe.top_k={top_k} is not in 1..num_experts={experts}")
    mode = moe.get("normalization_mode", 1)  # the MoeConfig dataclass default is RENORMALIZE
    # MOE.forward compares the mode with IntEnum members: a string never matches and silently routes as NONE.
    if not isinstance(mode, int) or isinstance(mode, bool) or mode not in MOE_NORMALIZATION:
        raise UnsupportedConfig(f"config.json moe.normalization_mode={mode!r} is not modelled (only the integers "
                                f"{', '.join(f'{k} ({v})' for k, v in MOE_NORMALIZATION.items())})")
    for key, default in (("tp_mode", 0), ("device_limited_n_group", 0), ("device_limited_topk_group", 0),
                         ("device_limited_routed_scaling_factor", 1.0)):
        _refuse_unless(moe, key, default)
    return experts, top_k, mode, int(_get(moe, "shared_expert_intermediate_size", 0))


def _refuse_moe(config: dict, family: str) -> None:
    if _moe_block(config, default_mode=1) is not None:
        raise UnsupportedConfig(f"config.json moe: mixture-of-experts {family} layers are not modelled")


def _check_rotary_dim(config: dict, rotary_dim: int) -> None:
    # create_attention_const_params builds the RoPE tables from config.rotary_embedding_dim, while Attention rotates
    # rotary_dim channels: if config.json says otherwise the engine's tables and kernel disagree.
    for key in ("rotary_dim", "rotary_embedding_dim"):
        if config.get(key) is not None and int(config[key]) != rotary_dim:
            raise UnsupportedConfig(f"config.json {key}={config[key]} disagrees with the {rotary_dim} rotary channels "
                                    f"the model class uses")


def _llama(config: dict) -> DecoderSpec:
    for key, default in (("residual_mlp", False), ("embedding_multiplier", 1.0), ("residual_multiplier", 1.0),
                         ("output_multiplier_scale", 1.0), ("qk_layernorm", False)):
        _refuse_unless(config, key, default)
    if _get(config, "position_embedding_type", "rope_gpt_neox") != "rope_gpt_neox":
        raise UnsupportedConfig(f"config.json position_embedding_type={config['position_embedding_type']!r}: "
                                "LLaMA layers always use rope_gpt_neox")
    c = _common(config)
    _refuse_unless(config, "rotary_pct", 1.0)
    _check_rotary_dim(config, c["head_size"])
    attn_bias, mlp_bias = bool(_get(config, "attn_bias", False)), bool(_get(config, "mlp_bias", False))
    moe = None
    block = _moe_block(config, default_mode=1)  # LLaMAConfig's legacy default: RENORMALIZE
    if block is not None:
        experts, top_k, mode, shared = block
        if shared:
            raise UnsupportedConfig("config.json moe.shared_expert_intermediate_size: LLaMA layers build a plain MOE, "
                                    "which has no shared expert")
        if mlp_bias:
            raise UnsupportedConfig("config.json mlp_bias with moe: expert biases are not modelled")
        # LLaMADecoderLayer passes config.hidden_act to MOE unchanged: Mixtral's converter writes 'swiglu'.
        moe = MoeSpec(num_experts=experts, top_k=top_k, normalization=MOE_NORMALIZATION[mode],
                      expert_size=c["intermediate_size"], hidden_act=c["hidden_act"], shared_size=0, shared_act="")
    return DecoderSpec(family="llama", norm="rms", ln_f_eps=c["norm_eps"], parallel_residual=False, gated_mlp=True,
                       qkv_bias=attn_bias, dense_bias=attn_bias, mlp_bias=mlp_bias, lm_head_bias=False,
                       position="rope_gpt_neox", rotary_dim=c["head_size"],
                       q_scaling=1.0 / float(_get(config, "attention_multiplier", 1.0)), moe=moe, **c)


_QWEN_TYPES = ("qwen2", "qwen2_moe")


def _qwen(config: dict) -> DecoderSpec:
    qwen_type = _get(config, "qwen_type", "qwen")
    if qwen_type not in _QWEN_TYPES:
        raise UnsupportedConfig(f"config.json qwen_type={qwen_type!r} is not one of {', '.join(_QWEN_TYPES)}")
    for key, default in (("use_logn_attn", False), ("qk_layernorm", False), ("mlp_only_layers", []),
                         ("decoder_sparse_step", 1)):
        _refuse_unless(config, key, default)
    if _get(config, "position_embedding_type", "rope_gpt_neox") != "rope_gpt_neox":
        raise UnsupportedConfig(f"config.json position_embedding_type={config['position_embedding_type']!r}: only "
                                "rope_gpt_neox QWen layers are modelled")
    c = _common(config)
    _refuse_unless(config, "rotary_pct", 1.0)
    _check_rotary_dim(config, c["head_size"])
    attn_bias, mlp_bias = bool(_get(config, "attn_bias", True)), bool(_get(config, "mlp_bias", False))
    moe = None
    block = _moe_block(config, default_mode=0)  # QWenConfig's legacy default: NONE
    if (block is None) != (qwen_type == "qwen2"):
        raise UnsupportedConfig(f"config.json qwen_type={qwen_type!r} with moe "
                                f"{'absent' if block is None else 'present'} is not modelled")
    if block is not None:
        experts, top_k, mode, _ = block
        if mlp_bias:
            raise UnsupportedConfig("config.json mlp_bias with moe: expert biases are not modelled")
        # QWenDecoderLayer overwrites moe.shared_expert_intermediate_size with this top-level field.
        shared = int(_require(config, "moe_shared_expert_intermediate_size"))
        if shared <= 0:
            raise UnsupportedConfig("config.json moe_shared_expert_intermediate_size must be > 0 for qwen2_moe "
                                    "(SharedMoE always builds its shared expert)")
        act = c["hidden_act"]
        moe = MoeSpec(num_experts=experts, top_k=top_k, normalization=MOE_NORMALIZATION[mode],
                      expert_size=int(_require(config, "moe_intermediate_size")), hidden_act=act,
                      shared_size=shared, shared_act=act)
    return DecoderSpec(family="qwen", norm="rms", ln_f_eps=c["norm_eps"], parallel_residual=False, gated_mlp=True,
                       qkv_bias=attn_bias, dense_bias=False, mlp_bias=mlp_bias, lm_head_bias=False,
                       position="rope_gpt_neox", rotary_dim=c["head_size"], q_scaling=1.0, moe=moe, **c)


_GPT_VARIANTS = ("gpt2", "santacoder", "starcoder", "starcoder2")
_GPT_POSITIONS = ("learned_absolute", "rope_gpt_neox", "rope_gptj")


def _gpt(config: dict) -> DecoderSpec:
    variant = _get(config, "gpt_variant", "gpt2")
    if variant not in _GPT_VARIANTS:
        raise UnsupportedConfig(f"config.json gpt_variant={variant!r} is not one of {', '.join(_GPT_VARIANTS)}")
    for key, default in (("qk_layernorm", False), ("inner_layernorm", False), ("apply_query_key_layer_scaling", False),
                         ("embedding_scale", None), ("norm_before_bmm1", False)):
        _refuse_unless(config, key, default)
    _refuse_moe(config, "GPT")
    position = _get(config, "position_embedding_type", "learned_absolute")
    if position not in _GPT_POSITIONS:
        raise UnsupportedConfig(f"config.json position_embedding_type={position!r} is not one of {', '.join(_GPT_POSITIONS)}")
    c = _common(config)
    rotary_dim = int(c["head_size"] * float(_get(config, "rotary_pct", 1.0)))
    if position != "learned_absolute":
        _check_rotary_dim(config, rotary_dim)
    gated = c["hidden_act"] in GATED_ACT_2_ACT
    if gated:  # MLPFactory: GatedMLP with the non-gated activation
        c["hidden_act"] = GATED_ACT_2_ACT[c["hidden_act"]]
    bias = bool(_get(config, "bias", True))
    return DecoderSpec(family="gpt", norm="layer", ln_f_eps=c["norm_eps"], parallel_residual=False, gated_mlp=gated,
                       qkv_bias=bias, dense_bias=bias, mlp_bias=bias, lm_head_bias=False, position=position,
                       rotary_dim=rotary_dim, q_scaling=float(_get(config, "q_scaling", 1.0)), **c)


def _gptj(config: dict) -> DecoderSpec:
    _refuse_moe(config, "GPT-J")
    c = _common(config)
    if c["num_kv_heads"] != c["num_heads"]:
        raise UnsupportedConfig("config.json num_key_value_heads: GPT-J attention always has kv heads = heads")
    if c["head_size"] != c["hidden_size"] // c["num_heads"]:
        raise UnsupportedConfig("config.json head_size: GPT-J attention always uses hidden_size // num_attention_heads")
    if c["rotary_scaling"]:
        raise UnsupportedConfig("config.json rotary_scaling: GPT-J attention takes no rotary scaling")
    # GPTJDecoderLayer: rotary_embedding_percentage = rotary_dim / head, Attention rotates int(head * percentage).
    head = c["head_size"]
    rotary_dim = int(head * (int(_get(config, "rotary_dim", 64)) / head))
    c.update(intermediate_size=4 * c["hidden_size"])  # MLP(ffn_hidden_size=hidden_size * 4), config ignored
    return DecoderSpec(family="gptj", norm="layer", ln_f_eps=1e-5, parallel_residual=True, gated_mlp=False,
                       qkv_bias=False, dense_bias=False, mlp_bias=True, lm_head_bias=True, position="rope_gptj",
                       rotary_dim=rotary_dim, q_scaling=1.0, **c)


def _gemma(config: dict) -> DecoderSpec:
    _refuse_moe(config, "Gemma")
    gemma2 = config.get("architecture") == "Gemma2ForCausalLM"
    _refuse_unless(config, "qk_layernorm", False)
    if not gemma2:
        for key in ("final_logit_softcapping", "attn_logit_softcapping"):
            _refuse_unless(config, key, None)
    c = _common(config)
    _refuse_unless(config, "rotary_pct", 1.0)
    _check_rotary_dim(config, c["head_size"])
    tp = int((config.get("mapping") or {}).get("tp_size", 1))
    # GemmaConfig.__init__: use_parallel_embedding = tp_size > 1, whatever config.json says.
    c.update(use_parallel_embedding=tp > 1)
    attn_bias, mlp_bias = bool(_get(config, "attn_bias", False)), bool(_get(config, "mlp_bias", False))
    extra: dict[str, Any] = {"embedding_scale": float(c["hidden_size"]) ** 0.5}
    q_scaling = 1.0
    if gemma2:
        # GemmaConfig asserts query_pre_attn_scalar for Gemma 2; GemmaDecoderLayer derives q_scaling from it.
        q_scaling = math.sqrt(float(_require(config, "query_pre_attn_scalar"))) / math.sqrt(c["head_size"])
        extra.update(inter_norms=True, attn_softcap=config.get("attn_logit_softcapping") or None,
                     final_softcap=config.get("final_logit_softcapping") or None)
    return DecoderSpec(family="gemma", norm="rms", ln_f_eps=c["norm_eps"], parallel_residual=False, gated_mlp=True,
                       qkv_bias=attn_bias, dense_bias=attn_bias, mlp_bias=mlp_bias, lm_head_bias=False,
                       position="rope_gpt_neox", rotary_dim=c["head_size"], q_scaling=q_scaling, **dict(c, **extra))


def _phi3(config: dict) -> DecoderSpec:
    _refuse_moe(config, "Phi-3")
    if _get(config, "position_embedding_type", "rope_gpt_neox") != "rope_gpt_neox":
        raise UnsupportedConfig(f"config.json position_embedding_type={config['position_embedding_type']!r}: "
                                "only rope_gpt_neox (not long_rope) is modelled for Phi-3")
    if "moe" in config or _get(config, "gegelu_limit", None) is not None:
        raise UnsupportedConfig("config.json: the Phi-3 small and MoE variants are not modelled")
    if int((config.get("mapping") or {}).get("pp_size", 1)) != 1:
        raise UnsupportedConfig("config.json mapping.pp_size > 1: the Phi-3 model has no pipeline stages")
    c = _common(config)
    if c["head_size"] != c["hidden_size"] // c["num_heads"]:
        raise UnsupportedConfig("config.json head_size: Phi-3's Attention uses hidden_size // num_attention_heads")
    rotary_dim = int(c["head_size"] * float(_get(config, "rotary_pct", 1.0)))
    _check_rotary_dim(config, rotary_dim)
    return DecoderSpec(family="phi3", norm="rms", ln_f_eps=c["norm_eps"], parallel_residual=False, gated_mlp=False,
                       qkv_bias=False, dense_bias=False, mlp_bias=False, lm_head_bias=False, position="rope_gpt_neox",
                       rotary_dim=rotary_dim, q_scaling=1.0, **c)


def _gptneox(config: dict) -> DecoderSpec:
    _refuse_moe(config, "GPT-NeoX")
    c = _common(config)
    if c["num_kv_heads"] != c["num_heads"] or c["head_size"] != c["hidden_size"] // c["num_heads"]:
        raise UnsupportedConfig("config.json num_key_value_heads/head_size: GPT-NeoX attention is MHA with "
                                "head_size = hidden_size // num_attention_heads")
    if _get(config, "position_embedding_type", "rope_gpt_neox") != "rope_gpt_neox":
        raise UnsupportedConfig("config.json position_embedding_type: GPT-NeoX layers always use rope_gpt_neox")
    if int((config.get("mapping") or {}).get("pp_size", 1)) != 1:
        raise UnsupportedConfig("config.json mapping.pp_size > 1: the GPT-NeoX model has no pipeline stages")
    rotary_dim = int(c["head_size"] * float(_get(config, "rotary_pct", 1.0)))
    _check_rotary_dim(config, rotary_dim)
    # GPTNeoXDecoderLayer: LayerNorm(hidden) with the default eps, MLP(ffn_hidden_size=hidden_size * 4), Attention
    # without rotary scaling, at rotary_emb_base.
    c.update(norm_eps=1e-5, intermediate_size=4 * c["hidden_size"], rotary_scaling=None,
             rotary_base=float(_get(config, "rotary_emb_base", 10000.0)))
    return DecoderSpec(family="gptneox", norm="layer", ln_f_eps=1e-5, parallel_residual=False, gated_mlp=False,
                       qkv_bias=True, dense_bias=True, mlp_bias=True, lm_head_bias=False, position="rope_gpt_neox",
                       rotary_dim=rotary_dim, q_scaling=1.0, **dict(c, parallel_norms=True))


# architecture string (MODEL_MAP key) -> spec reader
ARCHITECTURES: dict[str, Callable[[dict], DecoderSpec]] = {
    "LlamaForCausalLM": _llama,
    "LLaMAForCausalLM": _llama,
    "MixtralForCausalLM": _llama,
    "MistralForCausalLM": _llama,
    "QWenForCausalLM": _qwen,
    "Qwen2ForCausalLM": _qwen,
    "Qwen2MoeForCausalLM": _qwen,
    "GPTForCausalLM": _gpt,
    "GPT2LMHeadModel": _gpt,
    "GPTBigCodeForCausalLM": _gpt,
    "Starcoder2ForCausalLM": _gpt,
    "GPTNeoXForCausalLM": _gptneox,
    "GemmaForCausalLM": _gemma,
    "Gemma2ForCausalLM": _gemma,
    "Phi3ForCausalLM": _phi3,
    "GPTJForCausalLM": _gptj,
}


class KilnProgramNotImplemented(UnsupportedConfig, NotImplementedError):
    """config.json carries a Kiln layer program that no registered interpreter handles."""


# kiln block format name -> factory(config) returning an object with the ModelProgram interface of decoder.py
KILN_PROGRAMS: dict[str, Callable[[dict], Any]] = {}


def register_kiln_program(fmt: str, factory: Callable[[dict], Any]) -> None:
    """Hook for Kiln custom architectures: `factory(config)` must return a program like `DecoderProgram`
    (attributes vocab_size, logits_dtype; methods expected_tensors(layout, rank), run_rank(...))."""
    KILN_PROGRAMS[fmt] = factory


def resolve_program(config: dict) -> Any:
    """The program that executes this checkpoint: a Kiln custom program, or a built-in decoder."""
    from .decoder import DecoderProgram  # decoder imports this module's DecoderSpec

    if "kiln" in config:
        block = config["kiln"] or {}
        fmt = str(block.get("format", block.get("version", "unversioned"))) if isinstance(block, dict) else "invalid"
        if fmt in KILN_PROGRAMS:
            return KILN_PROGRAMS[fmt](config)
        raise KilnProgramNotImplemented(
            f"config.json architecture={config.get('architecture')!r} has a 'kiln' layer-program block "
            f"(format {fmt!r}); the verifier has no interpreter for Kiln layer programs yet "
            "(register one with kiln_bridge.architectures.register_kiln_program)")
    arch = config.get("architecture")
    if arch not in ARCHITECTURES:
        raise UnsupportedConfig(f"config.json architecture={arch!r} is not one of {', '.join(ARCHITECTURES)} "
                                "and has no 'kiln' block")
    return DecoderProgram(ARCHITECTURES[arch](config))
