"""One rank of a TensorRT-LLM decoder engine, executed in PyTorch with the engine's layer semantics.

`DecoderProgram(spec)` knows, for a rank of a mapping, (a) exactly which tensors its rank file must hold, with
shapes (what `PretrainedModel.load` demands: every parameter present, same shape), and (b) how that rank computes
the logits of a prompt by full causal recompute (no KV cache), talking to its peers only through a comm
(comm.py). Sharding semantics reproduced from tensorrt_llm/layers and models:
- ColumnLinear (qkv, fc, gate, lm_head) holds rows [out/tp, in]; lm_head gathers its output columns (gather_output);
- per-rank fused qkv = [q_r; k_r; v_r], with ceil(KV/tp) kv heads per rank (a replicated head when KV < tp);
- RowLinear (dense, proj) holds columns [out, in/tp]; partial products are all-reduced, then the WHOLE bias is
  added once; GPT-J's RowLinears have no tp group: each rank adds its own bias before the block's single
  all-reduce, and TensorRT-LLM's preprocess_weights zeroes attention.dense.bias / mlp.proj.bias on tp ranks > 0;
- GPT-NeoX's parallel block (models/gptneox/model.py): input_layernorm feeds the attention, post_attention_layernorm
  the MLP, both read the layer input; each RowLinear all-reduces and adds its bias once; out = attn + mlp + x;
- Gemma 2 (inter_norms): x + post_layernorm(attn(input_layernorm(x))), then + post_feedforward_layernorm(mlp(
  pre_feedforward_layernorm(.))); attention logits and final logits soft-capped (c * tanh(s / c), before the mask);
- sliding windows (config.json runtime_defaults.max_attention_window, one entry per global layer): a query at i sees
  keys i - w + 1 .. i, as the attention plugin with a cyclic KV cache of w tokens;
- vocab_embedding is replicated unless use_parallel_embedding (dim 0: row shards + all-reduce, dim 1: column
  shards + all-gather); tied lm_head: a missing lm_head.weight is taken from vocab_embedding.weight of the same file.
Mixture of experts (tensorrt_llm/layers/moe.py @ c388fec7, MixtureOfExperts / SharedMoE; the layout as
tensorrt_llm/models/llama/convert.py @ 0afa06ab and models/qwen/convert.py @ 65b31db1 write it):
- mlp.router.weight [E, hidden] in float32 on every rank (RowLinear, dtype float32, strict_dtype, no tp); routing
  reads the hidden state cast to float32. NONE: top-k of softmax(logits); RENORMALIZE: softmax over the top-k logits.
- mlp.fc.weight [E/moe_ep, 2*I/moe_tp, hidden] = per expert [w3 (up) ; w1 (gate)] rows of this moe_tp rank, the
  gated activation taking `x, gate = chunk(2)` -> act(gate) * x; mlp.proj.weight [E/moe_ep, hidden, I/moe_tp].
  moe_ep rank e holds the experts e*E/moe_ep ... (e+1)*E/moe_ep - 1 (Mapping.ep_experts). Each rank adds the
  scaled outputs of its experts for the tokens routed to them; the tp group all-reduces the partial sums.
- SharedMoE adds mlp.shared_expert (MLP, fc [2*S/tp, hidden] = [up_r ; gate_r], proj [hidden, S/tp]) scaled by
  sigmoid(mlp.shared_expert_gate [1, hidden], replicated, model dtype) to the routed partial sum before that single
  all-reduce.
"""
from __future__ import annotations

import math
import os

import torch

from . import rope
from .architectures import DecoderSpec
from .checkpoint import CheckpointLayout
from .errors import CheckpointError
from .numerics import GATED_ACT_2_ACT, Numerics
from .quantized import quantize_input

Shape = tuple[int, ...]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class DecoderProgram:
    def __init__(self, spec: DecoderSpec):
        self.spec = spec
        self.vocab_size = spec.vocab_size
        self.logits_dtype = spec.logits_dtype

    # ---- layout -----------------------------------------------------------------------------------------------

    @property
    def _post_norm(self) -> str:
        return "post_attention_layernorm" if self.spec.parallel_norms else "post_layernorm"

    def local_dims(self, tp: int) -> dict[str, int]:
        s = self.spec
        where = "config.json"
        if s.num_heads % tp:
            raise CheckpointError(f"{where}: num_attention_heads={s.num_heads} is not divisible by tp_size={tp}")
        if s.num_heads % s.num_kv_heads:
            raise CheckpointError(f"{where}: num_attention_heads={s.num_heads} is not a multiple of "
                                  f"num_key_value_heads={s.num_kv_heads}")
        kv = s.num_kv_heads
        if (kv >= tp and kv % tp) or (kv < tp and tp % kv):
            raise CheckpointError(f"{where}: num_key_value_heads={kv} cannot be split or replicated over tp_size={tp}")
        fc_out = s.intermediate_size * (2 if (not s.gated_mlp and s.hidden_act in ("swiglu", "gegelu")) else 1)
        for name, value in (("intermediate_size", s.intermediate_size), ("mlp fc width", fc_out)):
            if value % tp:
                raise CheckpointError(f"{where}: {name}={value} is not divisible by tp_size={tp}")
        return dict(heads=s.num_heads // tp, kv_heads=_ceil_div(kv, tp), ffn=s.intermediate_size // tp,
                    fc=fc_out // tp, vocab=_ceil_div(s.vocab_size, tp))

    def moe_dims(self, layout: CheckpointLayout) -> dict[str, int]:
        """Per-rank MoE sizes (MixtureOfExperts.__init__ raises on the same indivisibilities)."""
        m = self.spec.moe
        where = "config.json"
        if m.num_experts % layout.moe_ep:
            raise CheckpointError(f"{where}: moe.num_experts={m.num_experts} is not a multiple of "
                                  f"moe_ep_size={layout.moe_ep}")
        if m.expert_size % layout.moe_tp:
            raise CheckpointError(f"{where}: expert intermediate size {m.expert_size} is not a multiple of "
                                  f"moe_tp_size={layout.moe_tp}")
        if m.shared_size % layout.tp:
            raise CheckpointError(f"{where}: moe_shared_expert_intermediate_size={m.shared_size} is not divisible by "
                                  f"tp_size={layout.tp}")
        inter = m.expert_size // layout.moe_tp
        return dict(experts=m.num_experts // layout.moe_ep, inter=inter,
                    fc=inter * (2 if m.hidden_act in GATED_ACT_2_ACT else 1), shared=m.shared_size // layout.tp,
                    shared_fc=(m.shared_size // layout.tp) * (2 if m.shared_act in GATED_ACT_2_ACT else 1))

    def expected_tensors(self, layout: CheckpointLayout, rank: int) -> dict[str, Shape]:
        """name -> shape of every tensor `rank{rank}.safetensors` must hold."""
        s, tp = self.spec, layout.tp
        d = self.local_dims(tp)
        pp_rank = layout.pp_rank(rank)
        D, hd = s.hidden_size, s.head_size
        out: dict[str, Shape] = {}
        norm = ("weight",) if s.norm == "rms" else ("weight", "bias")

        def put(prefix: str, shape: Shape, bias: Shape | None = None) -> None:
            out[prefix + ".weight"] = shape
            if bias is not None:
                out[prefix + ".bias"] = bias

        if pp_rank == 0:
            out["transformer.vocab_embedding.weight"] = self._embedding_shape(tp)
            if s.position == "learned_absolute":
                out["transformer.position_embedding.weight"] = (s.max_position_embeddings, D)
        for l in range(len(layout.stage_layers(pp_rank))):
            p = f"transformer.layers.{l}."
            for part in norm:
                out[p + "input_layernorm." + part] = (D,)
                if not s.parallel_residual:
                    out[p + self._post_norm + "." + part] = (D,)
                if s.inter_norms:
                    out[p + "pre_feedforward_layernorm." + part] = (D,)
                    out[p + "post_feedforward_layernorm." + part] = (D,)
            qkv = (d["heads"] + 2 * d["kv_heads"]) * hd
            put(p + "attention.qkv", (qkv, D), (qkv,) if s.qkv_bias else None)
            put(p + "attention.dense", (D, d["heads"] * hd), (D,) if s.dense_bias else None)
            if s.moe is not None:
                m = self.moe_dims(layout)
                put(p + "mlp.router", (s.moe.num_experts, D))
                put(p + "mlp.fc", (m["experts"], m["fc"], D))
                put(p + "mlp.proj", (m["experts"], D, m["inter"]))
                if s.moe.shared_size:
                    put(p + "mlp.shared_expert.fc", (m["shared_fc"], D))
                    put(p + "mlp.shared_expert.proj", (D, m["shared"]))
                    put(p + "mlp.shared_expert_gate", (1, D))
                continue
            put(p + "mlp.fc", (d["fc"], D), (d["fc"],) if s.mlp_bias else None)
            if s.gated_mlp:
                put(p + "mlp.gate", (d["ffn"], D), (d["ffn"],) if s.mlp_bias else None)
            put(p + "mlp.proj", (D, d["ffn"]), (D,) if s.mlp_bias else None)
        if pp_rank == layout.pp - 1:
            for part in norm:
                out["transformer.ln_f." + part] = (D,)
            put("lm_head", (d["vocab"], D), (d["vocab"],) if s.lm_head_bias else None)
        return out

    def _embedding_shape(self, tp: int) -> Shape:
        s = self.spec
        if not s.use_parallel_embedding or tp == 1:
            return (s.vocab_size, s.hidden_size)
        if s.embedding_sharding_dim == 0:
            return (_ceil_div(s.vocab_size, tp), s.hidden_size)
        if s.hidden_size % tp:
            raise CheckpointError(f"config.json: hidden_size={s.hidden_size} is not divisible by tp_size={tp} "
                                  "(embedding_sharding_dim=1)")
        return (s.vocab_size, s.hidden_size // tp)

    def check_weights(self, layout: CheckpointLayout, rank: int, weights: dict[str, torch.Tensor]) -> list[str]:
        """Raise CheckpointError on a missing or mis-shaped tensor; return warnings (extra tensors, dtypes)."""
        path = layout.rank_file(rank)
        expected = self.expected_tensors(layout, rank)
        for name, shape in expected.items():
            source = name
            if name == "lm_head.weight" and name not in weights and "transformer.vocab_embedding.weight" in weights:
                source = "transformer.vocab_embedding.weight"  # tied embedding stands in for lm_head
            if source not in weights:
                raise CheckpointError(f"{path}: tensor {name!r} missing (expected shape {list(shape)})")
            if tuple(weights[source].shape) != shape:
                what = repr(name) if source == name else f"{source!r} (standing in for a tied lm_head.weight)"
                raise CheckpointError(f"{path}: tensor {what} has shape {list(weights[source].shape)}, "
                                      f"expected {list(shape)}")
        routers = sorted(n for n in expected if n.endswith(".mlp.router.weight") and weights[n].dtype != torch.float32)
        if routers:  # MixtureOfExperts.router: RowLinear(dtype="float32", strict_dtype=True)
            raise CheckpointError(f"{path}: tensor {routers[0]!r} is {weights[routers[0]].dtype}; the MoE router "
                                  "must be stored in float32 (routing runs in float32)")
        warnings = []
        extra = sorted(set(weights) - set(expected))
        if extra:
            warnings.append(f"{os.path.basename(path)}: {len(extra)} tensor(s) the model does not use: "
                            f"{', '.join(extra[:5])}{' ...' if len(extra) > 5 else ''}")
        want = layout.config.get("dtype")
        odd = sorted(n for n, t in weights.items() if n in expected and want and str(t.dtype) != f"torch.{want}"
                     and not n.endswith(".mlp.router.weight"))
        if odd:
            warnings.append(f"{os.path.basename(path)}: {len(odd)} tensor(s) not stored as config dtype {want}, "
                            f"e.g. {odd[0]} is {weights[odd[0]].dtype}")
        return warnings

    def prepare(self, layout: CheckpointLayout, rank: int, weights: dict[str, torch.Tensor], numerics: Numerics,
                device: str) -> dict[str, torch.Tensor]:
        """Checked rank weights as float32 tensors holding compute-dtype values on `device`."""
        # the router keeps its float32 values: routing runs in float32 whatever the compute dtype
        w = {n: t.to(device=device, dtype=torch.float32) if n.endswith(".mlp.router.weight")
             else numerics.weight(t, device) for n, t in weights.items()}
        if layout.pp_rank(rank) == layout.pp - 1 and "lm_head.weight" not in w:
            w["lm_head.weight"] = w["transformer.vocab_embedding.weight"]
        if self.spec.family == "gptj" and layout.tp_rank(rank) > 0:
            for n in w:  # preprocess_weights: the parallel block's row-linear bias is added once, by tp rank 0
                if n.endswith(("attention.dense.bias", "mlp.proj.bias")):
                    w[n] = torch.zeros_like(w[n])
        return w

    # ---- execution ----------------------------------------------------------------------------------------------

    def run_rank(self, layout: CheckpointLayout, w: dict[str, torch.Tensor], comm, input_ids: torch.Tensor,
                 nm: Numerics) -> torch.Tensor | None:
        """Logits [T, vocab] (float32) on the last pipeline stage, None on the others. input_ids: [T] int."""
        s = self.spec
        T = int(input_ids.shape[0])
        device = next(iter(w.values())).device
        ids = input_ids.to(device=device, dtype=torch.long)
        positions = torch.arange(T, device=device)
        if comm.pp_rank == 0:
            h = self._embed(w, comm, ids, positions, nm)
        else:
            h = comm.recv_prev(torch.empty(T, s.hidden_size, device=device))
        cos = sin = None
        if s.position != "learned_absolute":
            cos, sin = rope.tables(positions, s.rotary_dim, s.rotary_base, s.rotary_scaling, s.max_position_embeddings)
        for l, layer in enumerate(layout.stage_layers(comm.pp_rank)):
            window = None if s.windows is None else s.windows[layer]
            h = self._layer(w, f"transformer.layers.{l}.", h, comm, nm, cos, sin, window, layout)
        if comm.pp_rank < comm.pp_size - 1:
            comm.send_next(h)
            return None
        h = self._norm(w, "transformer.ln_f", h, nm, s.ln_f_eps)
        logits = comm.all_gather(nm.linear(h, w["lm_head.weight"], w.get("lm_head.bias")))  # [T, padded vocab]
        if s.final_softcap:
            logits = nm.round(s.final_softcap * torch.tanh(logits / s.final_softcap))
        return Numerics(self.logits_dtype).round(logits[:, : s.vocab_size])

    def _embed(self, w, comm, ids, positions, nm: Numerics) -> torch.Tensor:
        s = self.spec
        table = w["transformer.vocab_embedding.weight"]
        if not s.use_parallel_embedding or comm.tp_size == 1:
            h = table[ids]
        elif s.embedding_sharding_dim == 0:
            rows = table.shape[0]
            local = ids - comm.tp_rank * rows
            inside = (local >= 0) & (local < rows)
            h = nm.round(comm.all_reduce(table[local.clamp(0, rows - 1)] * inside[:, None]))
        else:
            h = comm.all_gather(table[ids])
        if s.embedding_scale is not None:  # GemmaModel: cast(hidden_states * sqrt(hidden_size), hidden_states.dtype)
            h = nm.round(h * s.embedding_scale)
        if s.position == "learned_absolute":
            if int(positions[-1]) >= s.max_position_embeddings:
                raise CheckpointError(f"prompt of {len(positions)} tokens exceeds max_position_embeddings="
                                      f"{s.max_position_embeddings}")
            h = nm.add(h, w["transformer.position_embedding.weight"][positions])
        return h

    def _norm(self, w, prefix: str, x: torch.Tensor, nm: Numerics, eps: float) -> torch.Tensor:
        if self.spec.norm == "rms":
            return nm.rms_norm(x, w[prefix + ".weight"], eps)
        return nm.layer_norm(x, w[prefix + ".weight"], w[prefix + ".bias"], eps)

    def _row_linear(self, w, prefix: str, x, comm, nm: Numerics, reduce: bool) -> torch.Tensor:
        y = nm.linear(quantize_input(x, prefix, w), w[prefix + ".weight"])
        if reduce:
            y = nm.round(comm.all_reduce(y))
        bias = w.get(prefix + ".bias")
        return y if bias is None else nm.add(y, bias)

    def _layer(self, w, p: str, h, comm, nm: Numerics, cos, sin, window: int | None,
               layout: CheckpointLayout) -> torch.Tensor:
        s = self.spec
        x = self._norm(w, p + "input_layernorm", h, nm, s.norm_eps)
        if s.parallel_residual:
            y = nm.add(self._attention(w, p, x, comm, nm, cos, sin, False, window), self._mlp(w, p, x, comm, nm, False))
            return nm.add(nm.round(comm.all_reduce(y)), h)
        if s.inter_norms:
            a = self._norm(w, p + "post_layernorm", self._attention(w, p, x, comm, nm, cos, sin, True, window), nm,
                           s.norm_eps)
            h = nm.add(h, a)
            m = self._mlp(w, p, self._norm(w, p + "pre_feedforward_layernorm", h, nm, s.norm_eps), comm, nm, True)
            return nm.add(h, self._norm(w, p + "post_feedforward_layernorm", m, nm, s.norm_eps))
        if s.parallel_norms:
            a = self._attention(w, p, x, comm, nm, cos, sin, True, window)
            m = self._mlp(w, p, self._norm(w, p + self._post_norm, h, nm, s.norm_eps), comm, nm, True)
            return nm.add(nm.add(a, m), h)
        h = nm.add(h, self._attention(w, p, x, comm, nm, cos, sin, True, window))
        x = self._norm(w, p + self._post_norm, h, nm, s.norm_eps)
        if s.moe is not None:
            return nm.add(h, self._moe(w, p, x, comm, nm, layout))
        return nm.add(h, self._mlp(w, p, x, comm, nm, True))

    def _attention(self, w, p: str, x, comm, nm: Numerics, cos, sin, reduce: bool, window: int | None) -> torch.Tensor:
        s = self.spec
        d = self.local_dims(comm.tp_size)
        T, hd = x.shape[0], s.head_size
        qkv = nm.linear(quantize_input(x, p + "attention.qkv", w), w[p + "attention.qkv.weight"],
                        w.get(p + "attention.qkv.bias"))
        q, k, v = qkv.split([d["heads"] * hd, d["kv_heads"] * hd, d["kv_heads"] * hd], dim=-1)
        q, k, v = q.reshape(T, -1, hd), k.reshape(T, -1, hd), v.reshape(T, -1, hd)  # [T, heads, hd]
        if cos is not None:
            q = nm.round(rope.apply(q, cos, sin, s.rotary_dim, s.position))
            k = nm.round(rope.apply(k, cos, sin, s.rotary_dim, s.position))
        group = d["heads"] // d["kv_heads"]  # query heads sharing one kv head (GQA / MQA)
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / (math.sqrt(hd) * s.q_scaling)  # [heads, T, T], fp32
        if s.attn_softcap:
            scores = s.attn_softcap * torch.tanh(scores / s.attn_softcap)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        if window is not None:  # keys older than the window have left the cyclic KV cache
            causal |= torch.ones(T, T, dtype=torch.bool, device=x.device).tril(-window)
        probs = nm.round(torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1))
        ctx = nm.round(torch.einsum("hts,shd->thd", probs, v)).reshape(T, d["heads"] * hd)
        return self._row_linear(w, p + "attention.dense", ctx, comm, nm, reduce)

    def _mlp(self, w, p: str, x, comm, nm: Numerics, reduce: bool) -> torch.Tensor:
        s = self.spec
        fc_in, gate_in = quantize_input(x, p + "mlp.fc", w), quantize_input(x, p + "mlp.gate", w)
        a = nm.act(s.hidden_act, nm.linear(fc_in, w[p + "mlp.fc.weight"], w.get(p + "mlp.fc.bias")))
        if s.gated_mlp:
            a = nm.round(a * nm.linear(gate_in, w[p + "mlp.gate.weight"], w.get(p + "mlp.gate.bias")))
        return self._row_linear(w, p + "mlp.proj", a, comm, nm, reduce)

    def _moe(self, w, p: str, x, comm, nm: Numerics, layout: CheckpointLayout) -> torch.Tensor:
        """This rank's share of the MoE block, all-reduced over the tp group. x: [T, hidden]."""
        m = self.spec.moe
        logits = x @ w[p + "mlp.router.weight"].t()  # [T, E], float32 input and weight, not rounded
        if m.normalization == "renormalize":
            top, experts = logits.topk(m.top_k, dim=-1)
            scales = torch.softmax(top, dim=-1)
        else:
            scales, experts = torch.softmax(logits, dim=-1).topk(m.top_k, dim=-1)  # [T, k]
        fc, proj = w[p + "mlp.fc.weight"], w[p + "mlp.proj.weight"]
        local = fc.shape[0]
        first = (comm.tp_rank % layout.moe_ep) * local  # Mapping.ep_experts of this moe_ep rank
        out = torch.zeros_like(x)
        for e in range(local):
            scale = (scales * (experts == first + e)).sum(dim=-1)  # [T]: 0 where the token did not pick it
            picked = scale != 0
            if not bool(picked.any()):
                continue
            a = nm.act(m.hidden_act, nm.linear(x[picked], fc[e]))
            out[picked] += nm.round(nm.linear(a, proj[e]) * scale[picked, None])
        out = nm.round(out)
        if m.shared_size:
            a = nm.act(m.shared_act, nm.linear(x, w[p + "mlp.shared_expert.fc.weight"]))
            shared = nm.linear(a, w[p + "mlp.shared_expert.proj.weight"])
            gate = torch.sigmoid(nm.linear(x, w[p + "mlp.shared_expert_gate.weight"]))
            out = nm.add(out, nm.round(gate * shared))
        return nm.round(comm.all_reduce(out))
