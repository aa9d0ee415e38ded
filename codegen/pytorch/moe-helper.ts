// The PyTorch source of `_kiln_moe`, the helper the PyTorch targets call for the IR's `moe` op: a readable sparse
// mixture of experts (router in float32, top-k, a loop over the experts that were picked, index_add of each
// expert's weighted output). It follows the sparse computation of transformers' MixtralSparseMoeBlock and
// Qwen2MoeSparseMoeBlock (models/mixtral/modeling_mixtral.py, models/qwen2_moe/modeling_qwen2_moe.py @ v5.17.0),
// except that the router logits and the weighted sum stay float32 until the final cast (the op's contract).
// Invariants: PEP 8; uses only `torch` and `F`; shared-expert tensors are passed positionally after the experts.

export const MOE_HELPER_SOURCE: readonly string[] = [
  "def _kiln_moe(x, router_weight, expert_gate, expert_up, expert_down, *shared,",
  "              top_k, scoring, normalize_top_k, act):",
  '    """Sparse mixture of experts over the last dim of x.',
  "",
  "    Each token's top_k experts (by softmax or sigmoid router score, router in",
  "    float32) run a gated MLP; their outputs are summed, weighted by the scores",
  "    (renormalized to sum 1 when normalize_top_k). `shared` is an optional",
  "    always-on expert (gate, up, down) and its optional sigmoid gate [1, H].",
  '    """',
  "    tokens = x.reshape(-1, x.shape[-1])",
  "    logits = F.linear(tokens.float(), router_weight.float())",
  '    if scoring == "softmax":',
  "        scores = torch.softmax(logits, dim=-1)",
  "    else:",
  "        scores = torch.sigmoid(logits)",
  "    weights, experts = torch.topk(scores, top_k, dim=-1)",
  "    if normalize_top_k:",
  "        weights = weights / weights.sum(dim=-1, keepdim=True)",
  "    out = torch.zeros(tokens.shape, dtype=torch.float32, device=x.device)",
  "    for e in experts.unique().tolist():",
  "        token_idx, slot = torch.where(experts == e)",
  "        h = tokens[token_idx]",
  "        g = act(F.linear(h, expert_gate[e])) * F.linear(h, expert_up[e])",
  "        y = F.linear(g, expert_down[e]).float()",
  "        out.index_add_(0, token_idx, y * weights[token_idx, slot, None])",
  "    if shared:",
  "        gate, up, down = shared[:3]",
  "        y = F.linear(act(F.linear(tokens, gate)) * F.linear(tokens, up), down)",
  "        if len(shared) == 4:",
  "            y = y.float() * torch.sigmoid(F.linear(tokens, shared[3]).float())",
  "        out = out + y.float()",
  "    return out.to(x.dtype).reshape(x.shape)",
];
