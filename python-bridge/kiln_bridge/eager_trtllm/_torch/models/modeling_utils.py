"""Eager `tensorrt_llm._torch.models.modeling_utils` (@ 89fd9b74ab7ae753b4c6b3db25a400dca7ea54a0; loader semantics
per ../shared/docs/trtllm-pytorch-facts.md "The default DecoderModelForCausalLM.load_weights").

- register_auto_model(name) records the class in MODEL_CLASS_MAPPING.
- DecoderModelForCausalLM(model, *, config, hidden_size, vocab_size): `self.model` and an LMHead (COLUMN,
  gather_output=True; tied to model.embed_tokens when config.tie_word_embeddings); forward runs the model (handing it lora_params, as
  upstream's forward does) and the head over every token (return_context_logits) or the last one.
- load_weights(weights): walks named_modules; `*.qkv_proj` gets [q_proj, k_proj, v_proj] and `*.gate_up_proj` gets
  [gate_proj, up_proj] from the sibling checkpoint keys (k/v heads duplicated when tp > num_key_value_heads); any
  other module with `load_weights` gets its own keys; a module without it has its direct parameters copied by name.
  A missing key or a wrong shape is an error; the lm_head is skipped when tied. Keys no module consumed are an
  error here too (upstream ignores them; for the verifier an unused tensor means the package dropped a weight).
- Pipeline parallelism (`__pp_init__`, run by the PostInitCaller metaclass after the subclass's __init__, as in
  modeling_utils.py @ the 1.2-era main read for it): on a stage other than the first, `embed_tokens` is skipped; on
  one other than the last, `norm` and `lm_head` are; layers outside `mapping.pp_layers` are skipped (pass their
  hidden states through); the stage's first layer receives its hidden states from the previous stage, its last
  layer sends them to the next. A DecoderModel without `layers` gets no pipeline parallelism.
"""
from __future__ import annotations

from typing import Generic, TypeVar

import torch
from torch import nn

from ... import _rank
from ..modules.embedding import LMHead
from ..modules.linear import TensorParallelMode

MODEL_CLASS_MAPPING: dict[str, type] = {}

TModel = TypeVar("TModel")
TConfig = TypeVar("TConfig")


def register_auto_model(name: str):
    def register(cls):
        MODEL_CLASS_MAPPING[name] = cls
        return cls
    return register


def get_model_architecture(config):
    arch = config.architectures[0]
    return MODEL_CLASS_MAPPING[arch], arch


def filter_weights(prefix: str, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    head = prefix + "."
    return {k[len(head):]: v for k, v in weights.items() if k.startswith(head)}


def duplicate_kv_weight(weight: torch.Tensor, num_kv_heads: int, tensor_parallel_size: int) -> torch.Tensor:
    """Repeat each kv head tp / kv times so that COLUMN slicing gives every rank one whole head."""
    if num_kv_heads >= tensor_parallel_size:
        return weight
    reps = tensor_parallel_size // num_kv_heads
    head_dim = weight.shape[0] // num_kv_heads
    shaped = weight.reshape(num_kv_heads, head_dim, *weight.shape[1:])
    return shaped.repeat_interleave(reps, dim=0).reshape(num_kv_heads * reps * head_dim, *weight.shape[1:])


def skip_forward(module: nn.Module) -> None:
    """The module no longer computes on this stage: its forward becomes its `skip_forward` (LMHead: an output of
    the right shape; Embedding: [tokens, hidden]; norms and decoder layers: their hidden-state input)."""
    if not hasattr(module, "skip_forward"):
        raise NotImplementedError(f"eager tensorrt_llm: {type(module).__name__} has no skip_forward for "
                                  "pipeline parallelism")
    module.forward = module.skip_forward


def forward_after_recv(forward):
    def wrapped(*args, **kwargs):
        if "hidden_states" in kwargs:
            kwargs["hidden_states"] = _rank.comm().recv_prev(kwargs["hidden_states"])
        else:
            args = (args[0], _rank.comm().recv_prev(args[1]), *args[2:])
        return forward(*args, **kwargs)
    return wrapped


def forward_before_send(forward):
    def wrapped(*args, **kwargs):
        out = forward(*args, **kwargs)
        _rank.comm().send_next(out[0] if isinstance(out, tuple) else out)
        return out
    return wrapped


class DecoderModel(nn.Module):
    def __init__(self, model_config):
        super().__init__()
        self.model_config = model_config
        self.dtype = model_config.pretrained_config.torch_dtype

    def __pp_init__(self) -> None:
        mapping = self.model_config.mapping
        if not mapping.has_pp() or not hasattr(self, "layers"):
            return
        if hasattr(self, "embed_tokens") and not mapping.is_first_pp_rank():
            skip_forward(self.embed_tokens)
        if hasattr(self, "norm") and not mapping.is_last_pp_rank():
            skip_forward(self.norm)
        n = self.model_config.pretrained_config.num_hidden_layers
        local = mapping.pp_layers(n)
        for idx in range(n):
            layer = self.layers[idx]
            if idx not in local:
                skip_forward(layer)
            if idx == local[0] and not mapping.is_first_pp_rank():
                layer.forward = forward_after_recv(layer.forward)
            if idx == local[-1] and not mapping.is_last_pp_rank():
                layer.forward = forward_before_send(layer.forward)


class PostInitCaller(type):
    def __call__(cls, *args, **kwargs):
        obj = type.__call__(cls, *args, **kwargs)
        obj.__pp_init__()
        return obj


class DecoderModelForCausalLM(nn.Module, Generic[TModel, TConfig], metaclass=PostInitCaller):
    def __init__(self, model, *, config, hidden_size, vocab_size):
        super().__init__()
        self.model_config = config
        self.config = config.pretrained_config
        self.model = model
        self.lm_head = LMHead(vocab_size, hidden_size, dtype=self.config.torch_dtype, mapping=config.mapping,
                              tensor_parallel_mode=TensorParallelMode.COLUMN, gather_output=True)
        self.tied = bool(getattr(self.config, "tie_word_embeddings", False))
        if self.tied:
            self.lm_head.weight = model.embed_tokens.weight

    def __pp_init__(self) -> None:
        mapping = self.model_config.mapping
        if not mapping.has_pp():
            return
        if not mapping.is_last_pp_rank():
            skip_forward(self.lm_head)
        self.model.__pp_init__()

    def forward(self, attn_metadata, input_ids=None, position_ids=None, inputs_embeds=None,
                return_context_logits=False, lora_params=None, **kwargs):
        hidden = self.model(attn_metadata=attn_metadata, input_ids=input_ids, position_ids=position_ids,
                            inputs_embeds=inputs_embeds, lora_params=lora_params)
        if not return_context_logits:
            hidden = hidden[-1:]
        return self.lm_head(hidden)

    def load_weights(self, weights: dict[str, torch.Tensor], weight_mapper=None, skip_modules=(), params_map=None):
        if params_map:
            raise NotImplementedError("eager tensorrt_llm: load_weights(params_map=...) is not modelled")
        used = set()
        pretrained = self.config
        tp = self.model_config.mapping.tp_size
        kv_heads = getattr(pretrained, "num_key_value_heads", None) or pretrained.num_attention_heads
        done_prefixes = []
        for name, module in self.named_modules():
            if not name or any(name.startswith(p + ".") for p in done_prefixes):
                continue
            if self.tied and name == "lm_head":
                done_prefixes.append(name)
                continue
            if hasattr(module, "load_weights"):
                done_prefixes.append(name)
                parent, _, leaf = name.rpartition(".")
                sources = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}.get(leaf)
                try:
                    if sources:
                        groups = []
                        for src in sources:
                            key = f"{parent}.{src}" if parent else src
                            group = filter_weights(key, weights)
                            used.update(f"{key}.{k}" for k in group)
                            if src in ("k_proj", "v_proj"):
                                group = {k: duplicate_kv_weight(v, kv_heads, tp) for k, v in group.items()}
                            groups.append(group)
                        module.load_weights(groups)
                    else:
                        group = filter_weights(name, weights)
                        used.update(f"{name}.{k}" for k in group)
                        module.load_weights([group])
                except (KeyError, ValueError) as e:
                    raise ValueError(f"loading {name}: {e}") from None
                continue
            for pname, param in module.named_parameters(recurse=False):
                key = f"{name}.{pname}"
                if key not in weights:
                    raise ValueError(f"loading {name}: checkpoint has no '{key}'")
                if tuple(weights[key].shape) != tuple(param.shape):
                    raise ValueError(f"loading {name}: '{key}' of shape {list(weights[key].shape)} does not fit "
                                     f"{list(param.shape)}")
                param.data.copy_(weights[key].to(param.dtype))
                used.add(key)
        unused = sorted(set(weights) - used)
        if unused:
            raise ValueError(f"checkpoint tensors that no module loaded: {unused}")
