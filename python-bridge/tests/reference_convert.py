"""Test-only HF -> TensorRT-LLM 1.2 checkpoint converter for the tiny GPT-2 / GPT-J / LLaMA fixtures.

Written straight from the naming and sharding tables of shared/docs/trtllm-1.2-facts.md §4 and independent of
kiln_bridge's verifier (it shares only the safetensors reader/writer), so verifying its output tests the verifier
against a second reading of the rules. It stands in for `kiln compile` until that exists. Conventions:
HF Conv1D weights (GPT-2) are [in, out] and get transposed; per-rank qkv = [q_r; k_r; v_r] split by heads, kv heads
repeated first when KV < tp; ColumnLinear split on dim 0, RowLinear on dim 1 with the bias whole on every rank,
except GPT-J's mlp.proj.bias which only tp rank 0 holds; lm_head padded to a multiple of tp; GatedMLP fc = HF
gate_proj, gate = HF up_proj.

Mixture of experts (Mixtral, Qwen2-MoE) follows the upstream converters' MoE branches directly
(tensorrt_llm/models/llama/convert.py @ 0afa06ab, tensorrt_llm/models/qwen/convert.py @ 65b31db1) and
tensorrt_llm/mapping.py @ b35ac1b6 for the ranks: experts of moe_ep rank `tp_rank % moe_ep` are the contiguous block
`ep_experts`; each expert's w1/w3 (gate/up) rows and w2 (down) columns are split over moe_tp by rank
`tp_rank // moe_ep`; mlp.fc = concat([stack(w3_r), stack(w1_r)], dim=-2); the router (HF gate) is stored in float32,
unsplit; Qwen2-MoE's shared expert fc = [up_r ; gate_r] and proj split by the plain tp rank, and its gate whole.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable

import torch
from kiln_bridge.safetensors_io import load_file, save_file

Tensors = dict[str, torch.Tensor]


def _rows(t: torch.Tensor, tp: int, r: int) -> torch.Tensor:
    assert t.shape[0] % tp == 0, (t.shape, tp)
    return t.chunk(tp, dim=0)[r].clone()


def _cols(t: torch.Tensor, tp: int, r: int) -> torch.Tensor:
    assert t.shape[1] % tp == 0, (t.shape, tp)
    return t.chunk(tp, dim=1)[r].clone()


def _pad_rows(t: torch.Tensor, tp: int) -> torch.Tensor:
    pad = -t.shape[0] % tp
    return torch.cat([t, t.new_zeros((pad,) + tuple(t.shape[1:]))]) if pad else t


def _qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, kv_heads: int, tp: int, r: int) -> torch.Tensor:
    """Rank r's fused [q_r; k_r; v_r] from full q [H*hd, ...], k/v [KV*hd, ...] (weights or biases)."""
    def by_head(t: torch.Tensor, n: int) -> torch.Tensor:
        return t.reshape((n, -1) + tuple(t.shape[1:]))

    q_r = _rows(by_head(q, heads), tp, r)
    k_h, v_h = by_head(k, kv_heads), by_head(v, kv_heads)
    if kv_heads < tp:  # replicate each kv head tp/KV times so every rank owns one
        k_h, v_h = k_h.repeat_interleave(tp // kv_heads, dim=0), v_h.repeat_interleave(tp // kv_heads, dim=0)
    k_r, v_r = _rows(k_h, tp, r), _rows(v_h, tp, r)
    return torch.cat([x.reshape((-1,) + tuple(x.shape[2:])) for x in (q_r, k_r, v_r)])


def _rope_fields(hf: dict) -> dict:
    params = hf.get("rope_parameters") or {}
    theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
    scaling = hf.get("rope_scaling") or {k: v for k, v in params.items() if k != "rope_theta"}
    kind = scaling.get("rope_type", scaling.get("type", "default")) if scaling else "default"
    if kind == "default":
        return {"rotary_base": theta, "rotary_scaling": None}
    out = {"type": kind}
    out.update({k: v for k, v in scaling.items() if k not in ("rope_type", "type")})
    return {"rotary_base": theta, "rotary_scaling": out}


# ---- per family: (trtllm config fields, per-rank weights) --------------------------------------------------------

def _gpt2(hf: dict, w: Tensors, tp: int, **_moe):
    D, H = hf["n_embd"], hf["n_head"]
    config = dict(architecture="GPTForCausalLM", vocab_size=hf["vocab_size"], hidden_size=D,
                  num_hidden_layers=hf["n_layer"], num_attention_heads=H, num_key_value_heads=H, head_size=D // H,
                  hidden_act=hf["activation_function"], intermediate_size=hf.get("n_inner") or 4 * D,
                  norm_epsilon=hf["layer_norm_epsilon"], position_embedding_type="learned_absolute",
                  max_position_embeddings=hf["n_positions"], bias=True, gpt_variant="gpt2")

    def layer(g: int, r: int) -> Tensors:
        p = f"transformer.h.{g}."
        qkv_w, qkv_b = w[p + "attn.c_attn.weight"].t(), w[p + "attn.c_attn.bias"]
        return {
            "input_layernorm.weight": w[p + "ln_1.weight"], "input_layernorm.bias": w[p + "ln_1.bias"],
            "attention.qkv.weight": _qkv(*qkv_w.chunk(3), H, H, tp, r),
            "attention.qkv.bias": _qkv(*qkv_b.chunk(3), H, H, tp, r),
            "attention.dense.weight": _cols(w[p + "attn.c_proj.weight"].t(), tp, r),
            "attention.dense.bias": w[p + "attn.c_proj.bias"],
            "post_layernorm.weight": w[p + "ln_2.weight"], "post_layernorm.bias": w[p + "ln_2.bias"],
            "mlp.fc.weight": _rows(w[p + "mlp.c_fc.weight"].t(), tp, r), "mlp.fc.bias": _rows(w[p + "mlp.c_fc.bias"], tp, r),
            "mlp.proj.weight": _cols(w[p + "mlp.c_proj.weight"].t(), tp, r), "mlp.proj.bias": w[p + "mlp.c_proj.bias"],
        }

    ends = dict(embed=w["transformer.wte.weight"], position=w["transformer.wpe.weight"],
                ln_f={"weight": w["transformer.ln_f.weight"], "bias": w["transformer.ln_f.bias"]},
                lm_head=w["transformer.wte.weight"], lm_head_bias=None, tied=True)
    return config, layer, ends


def _gptj(hf: dict, w: Tensors, tp: int, **_moe):
    D, H = hf["n_embd"], hf["n_head"]
    config = dict(architecture="GPTJForCausalLM", vocab_size=hf["vocab_size"], hidden_size=D,
                  num_hidden_layers=hf["n_layer"], num_attention_heads=H, head_size=D // H,
                  hidden_act=hf["activation_function"], norm_epsilon=hf["layer_norm_epsilon"],
                  position_embedding_type="rope_gptj", rotary_dim=hf["rotary_dim"],
                  max_position_embeddings=hf["n_positions"])

    def layer(g: int, r: int) -> Tensors:
        p = f"transformer.h.{g}."
        proj_bias = w[p + "mlp.fc_out.bias"]
        return {
            "input_layernorm.weight": w[p + "ln_1.weight"], "input_layernorm.bias": w[p + "ln_1.bias"],
            "attention.qkv.weight": _qkv(w[p + "attn.q_proj.weight"], w[p + "attn.k_proj.weight"],
                                         w[p + "attn.v_proj.weight"], H, H, tp, r),
            "attention.dense.weight": _cols(w[p + "attn.out_proj.weight"], tp, r),
            "mlp.fc.weight": _rows(w[p + "mlp.fc_in.weight"], tp, r), "mlp.fc.bias": _rows(w[p + "mlp.fc_in.bias"], tp, r),
            "mlp.proj.weight": _cols(w[p + "mlp.fc_out.weight"], tp, r),
            "mlp.proj.bias": proj_bias if r == 0 else torch.zeros_like(proj_bias),
        }

    ends = dict(embed=w["transformer.wte.weight"], position=None,
                ln_f={"weight": w["transformer.ln_f.weight"], "bias": w["transformer.ln_f.bias"]},
                lm_head=w["lm_head.weight"], lm_head_bias=w["lm_head.bias"], tied=False)
    return config, layer, ends


def _llama_block(w: Tensors, g: int, H: int, KV: int, tp: int, r: int) -> Tensors:
    """Norms and attention of HF LLaMA-style layer g (q/k/v biases when the checkpoint has them, as Qwen2)."""
    p = f"model.layers.{g}."
    a = p + "self_attn."
    t = {
        "input_layernorm.weight": w[p + "input_layernorm.weight"],
        "attention.qkv.weight": _qkv(w[a + "q_proj.weight"], w[a + "k_proj.weight"], w[a + "v_proj.weight"],
                                     H, KV, tp, r),
        "attention.dense.weight": _cols(w[a + "o_proj.weight"], tp, r),
        "post_layernorm.weight": w[p + "post_attention_layernorm.weight"],
    }
    if a + "q_proj.bias" in w:
        t["attention.qkv.bias"] = _qkv(w[a + "q_proj.bias"], w[a + "k_proj.bias"], w[a + "v_proj.bias"], H, KV, tp, r)
    return t


def _llama(hf: dict, w: Tensors, tp: int, **_moe):
    H, KV = hf["num_attention_heads"], hf.get("num_key_value_heads") or hf["num_attention_heads"]
    config = dict(architecture="LlamaForCausalLM", vocab_size=hf["vocab_size"], hidden_size=hf["hidden_size"],
                  num_hidden_layers=hf["num_hidden_layers"], num_attention_heads=H, num_key_value_heads=KV,
                  head_size=hf.get("head_dim") or hf["hidden_size"] // H, hidden_act=hf["hidden_act"],
                  intermediate_size=hf["intermediate_size"], norm_epsilon=hf["rms_norm_eps"],
                  position_embedding_type="rope_gpt_neox", max_position_embeddings=hf["max_position_embeddings"],
                  attn_bias=bool(hf.get("attention_bias")), mlp_bias=bool(hf.get("mlp_bias")), **_rope_fields(hf))

    def layer(g: int, r: int) -> Tensors:
        m = f"model.layers.{g}.mlp."
        return {
            **_llama_block(w, g, H, KV, tp, r),
            "mlp.fc.weight": _rows(w[m + "gate_proj.weight"], tp, r),
            "mlp.gate.weight": _rows(w[m + "up_proj.weight"], tp, r),
            "mlp.proj.weight": _cols(w[m + "down_proj.weight"], tp, r),
        }

    tied = "lm_head.weight" not in w
    ends = dict(embed=w["model.embed_tokens.weight"], position=None, ln_f={"weight": w["model.norm.weight"]},
                lm_head=w["model.embed_tokens.weight"] if tied else w["lm_head.weight"], lm_head_bias=None, tied=tied)
    return config, layer, ends


def _experts(w: Tensors, prefix: str, names: tuple[str, str, str], n: int, tp: int, r: int, moe_tp: int,
             moe_ep: int) -> Tensors:
    """mlp.fc / mlp.proj of tp rank r. names = HF (w1 gate, w2 down, w3 up) suffixes under `prefix`experts.{e}."""
    ep_rank, tp_rank = r % moe_ep, r // moe_ep
    per = n // moe_ep
    rank_experts = range(ep_rank * per, (ep_rank + 1) * per)

    def stack(suffix: str) -> torch.Tensor:
        return torch.stack([w[f"{prefix}experts.{e}.{suffix}.weight"] for e in rank_experts])

    w1, w2, w3 = (stack(x) for x in names)
    w1, w3 = (t.chunk(moe_tp, dim=1)[tp_rank] for t in (w1, w3))
    w2 = w2.chunk(moe_tp, dim=2)[tp_rank]
    return {"mlp.fc.weight": torch.cat([w3, w1], dim=-2), "mlp.proj.weight": w2}


_MOE_DEFAULTS = {"sparse_mixer_epsilon": 0.01, "tp_mode": 0, "device_limited_n_group": 0,
                 "device_limited_topk_group": 0, "device_limited_routed_scaling_factor": 1.0}


def _mixtral(hf: dict, w: Tensors, tp: int, moe_tp: int = 0, moe_ep: int = 1):
    moe_tp = moe_tp or tp // moe_ep
    H, KV, E = hf["num_attention_heads"], hf["num_key_value_heads"], hf["num_local_experts"]
    config, _, ends = _llama({**hf, "model_type": "llama"}, w, tp)
    config.update(architecture="MixtralForCausalLM", hidden_act="swiglu",
                  moe={"num_experts": E, "top_k": hf["num_experts_per_tok"], "normalization_mode": 1,
                       "shared_expert_intermediate_size": 0, **_MOE_DEFAULTS})

    def layer(g: int, r: int) -> Tensors:
        p = f"model.layers.{g}.block_sparse_moe."
        return {**_llama_block(w, g, H, KV, tp, r), **_experts(w, p, ("w1", "w2", "w3"), E, tp, r, moe_tp, moe_ep),
                "mlp.router.weight": w[p + "gate.weight"].float()}

    return config, layer, ends


def _qwen2_moe(hf: dict, w: Tensors, tp: int, moe_tp: int = 0, moe_ep: int = 1):
    moe_tp = moe_tp or tp // moe_ep
    H, KV, E = hf["num_attention_heads"], hf["num_key_value_heads"], hf["num_experts"]
    config, _, ends = _llama({**hf, "model_type": "llama"}, w, tp)
    config.update(architecture="Qwen2MoeForCausalLM", hidden_act="swiglu", qwen_type="qwen2_moe", attn_bias=True,
                  moe_intermediate_size=hf["moe_intermediate_size"],
                  moe_shared_expert_intermediate_size=hf["shared_expert_intermediate_size"],
                  moe={"num_experts": E, "top_k": hf["num_experts_per_tok"],
                       "normalization_mode": 1 if hf.get("norm_topk_prob") else 0,
                       "shared_expert_intermediate_size": 0, **_MOE_DEFAULTS})

    def layer(g: int, r: int) -> Tensors:
        p = f"model.layers.{g}.mlp."
        s = p + "shared_expert."
        return {**_llama_block(w, g, H, KV, tp, r),
                **_experts(w, p, ("gate_proj", "down_proj", "up_proj"), E, tp, r, moe_tp, moe_ep),
                "mlp.router.weight": w[p + "gate.weight"].float(),
                "mlp.shared_expert.fc.weight": torch.cat([_rows(w[s + "up_proj.weight"], tp, r),
                                                          _rows(w[s + "gate_proj.weight"], tp, r)], dim=-2),
                "mlp.shared_expert.proj.weight": _cols(w[s + "down_proj.weight"], tp, r),
                "mlp.shared_expert_gate.weight": w[p + "shared_expert_gate.weight"]}

    return config, layer, ends


FAMILIES: dict[str, Callable] = {"gpt2": _gpt2, "gptj": _gptj, "llama": _llama, "mixtral": _mixtral,
                                 "qwen2_moe": _qwen2_moe}

DEFAULT_BUILD_CONFIG = {"max_input_len": 64, "max_seq_len": 128, "max_batch_size": 4, "max_beam_width": 1,
                        "max_num_tokens": 256, "opt_num_tokens": None,
                        "plugin_config": {"gpt_attention_plugin": "auto", "gemm_plugin": "auto"}}


def convert(hf_dir: str, out_dir: str, tp: int = 1, pp: int = 1, dtype: str = "float32",
            parallel_embedding: int | None = None, omit_tied_lm_head: bool = False,
            build_config: dict | None = None, moe_tp: int = 0, moe_ep: int = 1,
            layer_hook: Callable | None = None) -> str:
    """Write a TensorRT-LLM checkpoint for `hf_dir` into `out_dir`; returns out_dir. `layer_hook(rank, tensors)`
    may edit a rank's layer tensors (tests plant bugs with it)."""
    with open(os.path.join(hf_dir, "config.json")) as f:
        hf = json.load(f)
    w = load_file(os.path.join(hf_dir, "model.safetensors"))
    moe = {"moe_tp": moe_tp, "moe_ep": moe_ep} if hf["model_type"] in ("mixtral", "qwen2_moe") else {}
    config, layer, ends = FAMILIES[hf["model_type"]](hf, w, tp, **moe)
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    mapping = {"world_size": tp * pp, "tp_size": tp, "pp_size": pp}
    if moe:
        mapping.update(moe_tp_size=moe_tp or tp // moe_ep, moe_ep_size=moe_ep)
    config.update(dtype=dtype, logits_dtype="float32", mapping=mapping,
                  quantization={"quant_algo": None, "kv_cache_quant_algo": None})
    if parallel_embedding is not None:
        config.update(use_parallel_embedding=True, embedding_sharding_dim=parallel_embedding)
    os.makedirs(out_dir, exist_ok=True)
    stages = torch.tensor_split(torch.arange(config["num_hidden_layers"]), pp)
    for pp_rank, stage in enumerate(stages):
        for r in range(tp):
            t: Tensors = {}
            if pp_rank == 0:
                embed = ends["embed"]
                if parallel_embedding == 0:
                    embed = _rows(_pad_rows(embed, tp), tp, r)
                elif parallel_embedding == 1:
                    embed = _cols(embed, tp, r)
                t["transformer.vocab_embedding.weight"] = embed
                if ends["position"] is not None:
                    t["transformer.position_embedding.weight"] = ends["position"]
            for local, g in enumerate(stage.tolist()):
                tensors = layer(g, r)
                if layer_hook is not None:
                    tensors = layer_hook(pp_rank * tp + r, tensors)
                t.update({f"transformer.layers.{local}.{k}": v for k, v in tensors.items()})
            if pp_rank == pp - 1:
                t.update({f"transformer.ln_f.{k}": v for k, v in ends["ln_f"].items()})
                if not (omit_tied_lm_head and ends["tied"]):
                    t["lm_head.weight"] = _rows(_pad_rows(ends["lm_head"], tp), tp, r)
                if ends["lm_head_bias"] is not None:
                    t["lm_head.bias"] = _rows(_pad_rows(ends["lm_head_bias"], tp), tp, r)
            save_file({k: (v if k.endswith("mlp.router.weight") else v.to(torch_dtype)).contiguous()
                       for k, v in t.items()},
                      os.path.join(out_dir, f"rank{pp_rank * tp + r}.safetensors"))
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out_dir, "build_config.json"), "w") as f:
        json.dump(build_config or DEFAULT_BUILD_CONFIG, f, indent=2)
    return out_dir
