"""Tiny random Hugging Face checkpoints + goldens for Kiln's model zoo (test/fixtures/zoo/<name>/).

Each fixture is built by transformers (the version .ci/setup-python.sh installs) from a small config chosen to
exercise the family's features: sliding windows shorter than the prompts, vocab sizes not divisible by tp,
grouped-query heads, biases, tied embeddings. Weights are seeded; 1-D parameters (norm scales, biases) are
perturbed away from their HF init so that a wrong norm formula or a dropped bias changes the logits.

Files per fixture, in the format of ../shared/fixtures/hf/*: config.json, generation_config.json,
model.safetensors (float32), golden.safetensors with, per prompt i, input_ids.i (i32 [T]), logits.i (f32 [T, vocab],
every position) and greedy.i (i32 [8], argmax continuation recomputed over the whole sequence, no EOS stop).

Usage: .venv/bin/python scripts/zoo-fixtures/make.py [--out test/fixtures/zoo] [NAME ...]
Deterministic: rerunning writes byte-identical files (test/zoo/fixtures.test.ts checks this).
"""

import argparse
import os
import sys

import torch
import transformers
from safetensors.torch import save_file

PROMPTS = [[7, 300, 12, 45, 99, 3, 500, 250, 1, 64, 128], [42, 17, 5, 260, 77, 9]]
NEW_TOKENS = 8

# Common small sizes: vocab 509 is odd (lm_head padding at tp 2 and 4); 4 query heads / 2 kv heads allow tp 1, 2.
BASE = dict(vocab_size=509, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=128, initializer_range=0.08,
            bos_token_id=1, eos_token_id=2, pad_token_id=None)

FIXTURES = {
    # Mistral: sliding window 4 on every layer (prompts are 6 and 11 tokens long).
    "mistral": ("MistralConfig", "MistralForCausalLM", dict(BASE, sliding_window=4, rms_norm_eps=1e-5,
                                                            rope_theta=10000.0, tie_word_embeddings=False)),
    # Qwen2: q/k/v biases (no o bias), tied embeddings, sliding window on layers >= max_window_layers only.
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(BASE, use_sliding_window=True, sliding_window=5,
                                                      max_window_layers=1, rms_norm_eps=1e-6, rope_theta=1e6,
                                                      tie_word_embeddings=True)),
    # Qwen3: per-head q/k RMSNorm (QK-norm), no attention biases; head_dim 24 differs from hidden / heads = 16, so a
    # head size derived from hidden_size would fail.
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(BASE, head_dim=24, rms_norm_eps=1e-6, rope_theta=1e6,
                                                      tie_word_embeddings=False)),
    # Gemma: embeddings * sqrt(hidden), (1 + w) RMSNorms, tanh-GELU gated MLP, tied embeddings, head_dim 24.
    "gemma": ("GemmaConfig", "GemmaForCausalLM", dict(BASE, head_dim=24, rms_norm_eps=1e-6, rope_theta=10000.0,
                                                      hidden_act="gelu_pytorch_tanh", tie_word_embeddings=True)),
    # GPT-NeoX / Pythia: parallel residual, partial rotary (rotary_pct 0.5 of head_dim 16), interleaved fused QKV.
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(
        vocab_size=509, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        max_position_embeddings=128, initializer_range=0.08, bos_token_id=1, eos_token_id=2, rotary_pct=0.5,
        rotary_emb_base=10000, use_parallel_residual=True, tie_word_embeddings=False)),
    # The same with the sequential residual (use_parallel_residual false).
    "gpt_neox_seq": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(
        vocab_size=509, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
        max_position_embeddings=128, initializer_range=0.08, bos_token_id=1, eos_token_id=2, rotary_pct=0.5,
        rotary_emb_base=10000, use_parallel_residual=False, tie_word_embeddings=False)),
    # StarCoder2: LayerNorms with bias, biased GQA attention and MLP (c_fc/c_proj), sliding window 4, tied.
    "starcoder2": ("Starcoder2Config", "Starcoder2ForCausalLM", dict(BASE, sliding_window=4, norm_epsilon=1e-5,
                                                                     rope_theta=10000.0, use_bias=True,
                                                                     tie_word_embeddings=True)),
    # Phi-3 (Phi-4-mini style): fused qkv_proj and gate_up_proj, partial rotary 0.5, sliding window 5, GQA.
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(BASE, partial_rotary_factor=0.5, sliding_window=5,
                                                   rms_norm_eps=1e-5, rope_theta=10000.0, pad_token_id=None,
                                                   tie_word_embeddings=False)),
    # Gemma 2: attention-logit and final-logit soft-capping with caps small enough to bite (2 and 3), pre- and
    # post-norms around attention and MLP, alternating sliding (window 4) and global layers from the default
    # layer_types, query_pre_attn_scalar 24 (attention scale 24**-0.5, not head_dim**-0.5), tied embeddings.
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", dict(BASE, head_dim=16, rms_norm_eps=1e-6, rope_theta=10000.0,
                                                        hidden_activation="gelu_pytorch_tanh", sliding_window=4,
                                                        query_pre_attn_scalar=24, attn_logit_softcapping=2.0,
                                                        final_logit_softcapping=3.0, tie_word_embeddings=True)),
    # Phi-3 long context (LongRoPE, "su" in 4.x configs): per-frequency short and long divisors, long ones once a
    # sequence passes original_max_position_embeddings 8 (the 11-token prompt; the 6-token one crosses while
    # generating), attention factor sqrt(1 + ln(128 / 8) / ln 8) on cos/sin; partial rotary 0.5 (4 frequencies).
    "phi3_longrope": ("Phi3Config", "Phi3ForCausalLM", dict(
        BASE, partial_rotary_factor=0.5, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
        original_max_position_embeddings=8,
        rope_scaling=dict(type="su", short_factor=[1.0, 1.25, 1.5, 2.0], long_factor=[1.5, 3.0, 6.0, 12.0],
                          original_max_position_embeddings=8))),
    # LLaMA with YaRN: factor 4 over original_max_position_embeddings 32, default betas, attention factor
    # 0.1 ln 4 + 1 on cos/sin.
    "llama_yarn": ("LlamaConfig", "LlamaForCausalLM", dict(
        BASE, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
        rope_scaling=dict(rope_type="yarn", factor=4.0, original_max_position_embeddings=32))),
    # LLaMA with dynamic NTK: max_position_embeddings 8, so the base grows for the 11-token prompt and while the
    # 6-token one generates past 8 tokens.
    "llama_dynamic": ("LlamaConfig", "LlamaForCausalLM", dict(
        BASE, max_position_embeddings=8, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
        rope_scaling=dict(rope_type="dynamic", factor=2.0))),
    # Falcon (7B style): parallel attention and MLP from one LayerNorm, multi-query attention from a fused
    # query_key_value (q heads, then k, then v), exact-GELU MLP, LayerNorms with bias, tied embeddings.
    "falcon": ("FalconConfig", "FalconForCausalLM", dict(
        vocab_size=509, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, ffn_hidden_size=96,
        max_position_embeddings=128, initializer_range=0.08, bos_token_id=1, eos_token_id=2, layer_norm_epsilon=1e-5,
        new_decoder_architecture=False, multi_query=True, parallel_attn=True, alibi=False, bias=False,
        rope_theta=10000.0, tie_word_embeddings=True)),
    # Mixtral: 8 experts of width 48, top-2 renormalized (softmax), no sliding window.
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", dict(BASE, intermediate_size=48, num_local_experts=8, num_experts_per_tok=2,
                                                            rms_norm_eps=1e-5, rope_theta=1e6, sliding_window=None,
                                                            tie_word_embeddings=False)),
    # Qwen2-MoE: 6 experts, top-3 not renormalized, a shared expert behind a sigmoid gate, q/k/v biases.
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", dict(
        BASE, num_experts=6, num_experts_per_tok=3, moe_intermediate_size=32, shared_expert_intermediate_size=80,
        norm_topk_prob=False, rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=False)),
    # The same with renormalized top-k (norm_topk_prob), top-2, and tied embeddings. (Dense layers among sparse ones,
    # mlp_only_layers, run in the interpreter but not through the compile targets, which need one layer class.)
    "qwen2_moe_norm": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", dict(
        BASE, num_experts=6, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=80,
        norm_topk_prob=True, rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=True)),
    # Qwen3-MoE: Qwen3's QK-norm attention (head_dim 24) with 6 experts, top-2 renormalized, no shared expert.
    "qwen3_moe": ("Qwen3MoeConfig", "Qwen3MoeForCausalLM", dict(
        BASE, head_dim=24, num_experts=6, num_experts_per_tok=2, moe_intermediate_size=32, norm_topk_prob=True,
        rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=False)),
}

# Mixture-of-experts fixtures: router weights are drawn wider than the HF init so that routing is decisive, and
# every routing decision on the fixture sequences (prompts and greedy continuations) must clear this margin between
# the router logits of the k-th and the (k+1)-th expert (scores are monotone in the logits, so the logits decide the
# choice; 1e-3 is about 1e4 float32 roundings at these magnitudes), so no implementation can pick another expert.
ROUTER_STD = 0.3
MIN_TOPK_MARGIN = 1e-3
# Router seeds (default 2); qwen3_moe's default draw had a decision 7e-4 from a tie, so it draws with seed 3.
ROUTER_SEED = {"qwen3_moe": 3}


def widen_routers(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Router weights (mlp.gate.weight) and shared-expert gates N(0, ROUTER_STD)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("mlp.gate.weight") or name.endswith("mlp.shared_expert_gate.weight"):
                p.copy_(ROUTER_STD * torch.randn(p.shape, generator=gen))


def check_router_margins(model, config, sequences: list[list[int]]) -> float:
    """The smallest k-th vs (k+1)-th router-logit gap over every routing decision; fails below MIN_TOPK_MARGIN."""
    k = config.num_experts_per_tok
    gaps = []

    def hook(module, inputs, _output):
        x = inputs[0].reshape(-1, inputs[0].shape[-1])
        top = torch.topk(torch.nn.functional.linear(x, module.weight).float(), k + 1, dim=-1).values
        gaps.append((top[:, k - 1] - top[:, k]).min().item())

    routers = [m for n, m in model.named_modules() if n.endswith("mlp.gate") and hasattr(m, "top_k")]
    handles = [r.register_forward_hook(hook) for r in routers]
    with torch.no_grad():
        for seq in sequences:
            model(torch.tensor([seq]))
    for h in handles:
        h.remove()
    margin = min(gaps)
    if margin < MIN_TOPK_MARGIN:
        sys.exit(f"make.py: a routing decision is a near tie (top-k logit margin {margin:.2e} < {MIN_TOPK_MARGIN})")
    return margin


# Fixtures whose goldens come from transformers' eager attention: for Gemma 2 the SDPA path (the default) drops
# attn_logit_softcapping, while eager_attention_forward applies it (modeling_gemma2.py @ transformers 5.17).
EAGER = {"gemma2"}


def perturb_vectors(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Norm scales 1 + 0.2 N(0,1) (gemma-style zero-centred scales get 0.2 N(0,1)), biases 0.1 N(0,1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim != 1:
                continue
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(p + 0.2 * noise)


def greedy(model, ids: list[int]) -> list[int]:
    seq = list(ids)
    for _ in range(NEW_TOKENS):
        logits = model(torch.tensor([seq])).logits[0, -1]
        seq.append(int(torch.argmax(logits)))
    return seq[len(ids):]


def make(name: str, out: str) -> None:
    config_cls, model_cls, fields = FIXTURES[name]
    torch.manual_seed(0)
    config = getattr(transformers, config_cls)(**fields)
    config.architectures = [model_cls]
    if name in EAGER:
        config._attn_implementation = "eager"
    model = getattr(transformers, model_cls)(config).eval().float()
    perturb_vectors(model, torch.Generator().manual_seed(1))
    moe = hasattr(config, "num_experts_per_tok")
    if moe:
        widen_routers(model, torch.Generator().manual_seed(ROUTER_SEED.get(name, 2)))
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    golden = {}
    with torch.no_grad():
        for i, ids in enumerate(PROMPTS):
            golden[f"input_ids.{i}"] = torch.tensor(ids, dtype=torch.int32)
            golden[f"logits.{i}"] = model(torch.tensor([ids])).logits[0].float().contiguous()
            golden[f"greedy.{i}"] = torch.tensor(greedy(model, ids), dtype=torch.int32)
    save_file(golden, os.path.join(d, "golden.safetensors"))
    margin = ""
    if moe:
        seqs = [ids + golden[f"greedy.{i}"].tolist() for i, ids in enumerate(PROMPTS)]
        margin = f" (smallest top-k margin {check_router_margins(model, config, seqs):.3f})"
    print(f"{name}: {model_cls} -> {d}{margin}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "zoo"))
    ap.add_argument("names", nargs="*", help=f"fixtures to make (default all: {', '.join(FIXTURES)})")
    args = ap.parse_args()
    unknown = [n for n in args.names if n not in FIXTURES]
    if unknown:
        sys.exit(f"make.py: unknown fixture(s) {', '.join(unknown)}; known: {', '.join(FIXTURES)}")
    torch.use_deterministic_algorithms(True)
    for name in args.names or FIXTURES:
        make(name, os.path.normpath(args.out))


if __name__ == "__main__":
    main()
