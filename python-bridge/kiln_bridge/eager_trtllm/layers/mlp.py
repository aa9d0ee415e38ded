"""Eager MLP / GatedMLP (tensorrt_llm/layers/mlp.py, 1.2 line; unpinned in the manifest, see
codegen/apicheck/README.md).

MLP: fc = ColumnLinear(hidden, ffn, gather_output=False), proj = RowLinear(ffn, hidden);
out = proj(ACT2FN[hidden_act](fc(x))).
GatedMLP adds gate = ColumnLinear(hidden, ffn, gather_output=False) and computes
out = proj(ACT2FN[hidden_act](fc(x)) * gate(x)): the activation is on `fc` (HF's gate_proj), `gate` is HF's
up_proj. A plain MLP with a gated activation (swiglu) has an fc of 2 * ffn rows, [x ; gate] per rank, which the
activation splits in halves (how SharedMoE's shared expert is built). is_expert=True makes proj a RowLinear that
does not all-reduce (its caller reduces once).
"""
from __future__ import annotations

from .. import functional as F
from ..module import Module
from .linear import ColumnLinear, RowLinear


def _act(name: str):
    if name not in F.ACT2FN:
        raise NotImplementedError(f"eager tensorrt_llm: hidden_act {name!r} is not modelled "
                                  f"(known: {', '.join(sorted(F.ACT2FN))})")
    return F.ACT2FN[name]


class MLP(Module):
    def __init__(self, hidden_size, ffn_hidden_size, hidden_act, bias=True, dtype=None, tp_group=None, tp_size=1,
                 quant_mode=None, inner_layernorm=False, eps=1e-05, is_expert=False):
        super().__init__()
        if inner_layernorm:
            raise NotImplementedError("eager tensorrt_llm: MLP(inner_layernorm=True) is not modelled")
        self.hidden_act = hidden_act
        _act(hidden_act)
        fc_out = 2 * ffn_hidden_size if hidden_act == "swiglu" else ffn_hidden_size
        self.fc = ColumnLinear(hidden_size, fc_out, bias=bias, dtype=dtype, tp_group=tp_group,
                               tp_size=tp_size, gather_output=False)
        self.proj = RowLinear(ffn_hidden_size, hidden_size, bias=bias, dtype=dtype, tp_group=tp_group,
                              tp_size=tp_size, is_expert=is_expert)

    def forward(self, hidden_states, lora_layer_params=None, all_reduce_params=None, **_unused):
        return self.proj(_act(self.hidden_act)(self.fc(hidden_states)))


class GatedMLP(MLP):
    def __init__(self, hidden_size, ffn_hidden_size, hidden_act, bias=True, dtype=None, tp_group=None, tp_size=1,
                 quant_mode=None, inner_layernorm=False, eps=1e-05, is_expert=False):
        super().__init__(hidden_size, ffn_hidden_size, hidden_act, bias, dtype, tp_group, tp_size, quant_mode,
                         inner_layernorm, eps, is_expert)
        self.gate = ColumnLinear(hidden_size, ffn_hidden_size, bias=bias, dtype=dtype, tp_group=tp_group,
                                 tp_size=tp_size, gather_output=False)

    def forward(self, hidden_states, lora_layer_params=None, all_reduce_params=None, **_unused):
        inter = _act(self.hidden_act)(self.fc(hidden_states))
        return self.proj(inter * self.gate(hidden_states))
