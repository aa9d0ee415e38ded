"""Writes moe-block.golden.json: tiny random Mixtral and Qwen2-MoE sparse MoE blocks from transformers (5.17) with
their inputs and outputs, the outside truth for the `trtllm.moe` simulator kernel (src/lower/moe.test.ts).

Run from the repository root: .venv/bin/python src/lower/testdata/make_moe_block_golden.py
Weights are HF-layout per expert (w1 = gate_proj, w3 = up_proj, w2 = down_proj), rounded to 4 decimals so the JSON
stays small; router weights are scaled so no token's k-th and (k+1)-th logits are within 1e-2 (asserted).
"""
import json
import os

import torch
import transformers

H, E, K, INTER, SHARED, T = 8, 4, 2, 8, 12, 5


def rounded(block):
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.round(torch.randn_like(p) * 0.5 * 1e4) / 1e4)
        block.gate.weight.mul_(4.0)
    return block.eval()


def experts(block):
    gate_up, down = block.experts.gate_up_proj.detach(), block.experts.down_proj.detach()
    return {"gate": [gate_up[e, :INTER].tolist() for e in range(E)], "up": [gate_up[e, INTER:].tolist() for e in range(E)],
            "down": [down[e].tolist() for e in range(E)]}


def case(kind):
    torch.manual_seed({"mixtral": 0, "qwen2_moe": 1}[kind])
    if kind == "mixtral":
        cfg = transformers.MixtralConfig(hidden_size=H, intermediate_size=INTER, num_local_experts=E, num_experts_per_tok=K)
        block = rounded(transformers.models.mixtral.modeling_mixtral.MixtralSparseMoeBlock(cfg))
    else:
        cfg = transformers.Qwen2MoeConfig(hidden_size=H, moe_intermediate_size=INTER, shared_expert_intermediate_size=SHARED,
                                          num_experts=E, num_experts_per_tok=K, norm_topk_prob=False)
        block = rounded(transformers.models.qwen2_moe.modeling_qwen2_moe.Qwen2MoeSparseMoeBlock(cfg))
    x = torch.round(torch.randn(1, T, H) * 1e4) / 1e4
    logits = (x[0] @ block.gate.weight.t()).topk(K + 1, dim=-1).values
    assert float((logits.detach()[:, K - 1] - logits[:, K]).min()) > 1e-2
    with torch.no_grad():
        y = block(x)
        y = y[0] if isinstance(y, tuple) else y
    out = {"x": x[0].tolist(), "y": y[0].tolist(), "router": block.gate.weight.detach().tolist(), **experts(block)}
    if kind == "qwen2_moe":
        s = block.shared_expert
        out.update(shared_gate=s.gate_proj.weight.detach().tolist(), shared_up=s.up_proj.weight.detach().tolist(),
                   shared_down=s.down_proj.weight.detach().tolist(),
                   shared_expert_gate=block.shared_expert_gate.weight.detach().tolist())
    return out


golden = {"transformers": transformers.__version__, "hidden": H, "experts": E, "topK": K, "inter": INTER, "shared": SHARED,
          "mixtral": case("mixtral"), "qwen2_moe": case("qwen2_moe")}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moe-block.golden.json")
with open(path, "w") as f:
    json.dump(golden, f, separators=(",", ":"))
    f.write("\n")
print(path)
