"""config.json -> the semantics TensorRT-LLM 1.2 gives that checkpoint, as a `DecoderSpec` (data, no code).

Each built-in family reads config.json the way its TensorRT-LLM model class does (tensorrt_llm/models/{llama,gpt,
gptj}/model.py), including the places where the class ignores config.json:
- LLaMA: RmsNorm, GatedMLP(fc = activated half), rope_gpt_neox over the whole head, q_scaling = 1/attention_multiplier.
- GPT: LayerNorm with bias, learned absolute positions or RoPE (rotary_pct), GatedMLP only for swiglu/geglu acts.
- GPT-J: parallel attention + MLP with ONE all-reduce (so mlp.proj.bias lives on tp rank 0 only), MLP width fixed at
  4*hidden, no attention biases, lm_head with bias, ln_f eps fixed at 1e-5, kv heads = heads.
Fields that change the computation in ways the verifier does not model are refused with `UnsupportedConfig`.
A config.json with a `kiln` block describes a Kiln custom layer program; those are dispatched to programs registered
with `register_kiln_program` (none yet).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import CheckpointError, UnsupportedConfig
from .numerics import GATED_ACT_2_ACT
from .quantized import quant_config


@dataclass(frozen=True)
class DecoderSpec:
    family: str                 # llama | gpt | gptj
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
    moe = config.get("moe") or {}
    if int(_get(moe, "num_experts", 0)) > 0 or int(_get(config, "moe_num_experts", 0)) > 0:
        raise UnsupportedConfig("config.json moe: mixture-of-experts layers are not modelled")
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
        rotary_scaling=config.get("rotary_scaling"),
        use_parallel_embedding=bool(_get(config, "use_parallel_embedding", False)),
        embedding_sharding_dim=int(_get(config, "embedding_sharding_dim", 0)),
        logits_dtype=str(_get(config, "logits_dtype", "float32")),
    )


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
    return DecoderSpec(family="llama", norm="rms", ln_f_eps=c["norm_eps"], parallel_residual=False, gated_mlp=True,
                       qkv_bias=attn_bias, dense_bias=attn_bias, mlp_bias=mlp_bias, lm_head_bias=False,
                       position="rope_gpt_neox", rotary_dim=c["head_size"],
                       q_scaling=1.0 / float(_get(config, "attention_multiplier", 1.0)), **c)


_GPT_VARIANTS = ("gpt2", "santacoder", "starcoder")
_GPT_POSITIONS = ("learned_absolute", "rope_gpt_neox", "rope_gptj")


def _gpt(config: dict) -> DecoderSpec:
    variant = _get(config, "gpt_variant", "gpt2")
    if variant not in _GPT_VARIANTS:
        raise UnsupportedConfig(f"config.json gpt_variant={variant!r} is not one of {', '.join(_GPT_VARIANTS)}")
    for key, default in (("qk_layernorm", False), ("inner_layernorm", False), ("apply_query_key_layer_scaling", False),
                         ("embedding_scale", None), ("norm_before_bmm1", False)):
        _refuse_unless(config, key, default)
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


# architecture string (MODEL_MAP key) -> spec reader
ARCHITECTURES: dict[str, Callable[[dict], DecoderSpec]] = {
    "LlamaForCausalLM": _llama,
    "LLaMAForCausalLM": _llama,
    "GPTForCausalLM": _gpt,
    "GPT2LMHeadModel": _gpt,
    "GPTBigCodeForCausalLM": _gpt,
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
