# Valid code that a careless checker would flag: shadowing, spreads, externals,
# star imports, rebinding, mixins outside the manifest. Must give zero problems
# (lines with a trailing "unverified:" comment must be listed as unverified). Never executed.
import os
from typing import List

import tensorrt_llm.models.llama.model
from tensorrt_llm.functional import *
from tensorrt_llm.layers import Mish  # unverified: tensorrt_llm.layers.activation.Mish
from tensorrt_llm.layers import Attention, RmsNorm
from tensorrt_llm.mapping import Mapping
from tensorrt_llm.models import LLaMAForCausalLM
from tensorrt_llm.models.modeling_utils import (DecoderModelForCausalLM,
                                                QuantConfig)
from tensorrt_llm.module import Module

from .weights import load_kiln_weights


class ScaledNorm(RmsNorm):
    pass


class Helper:
    """Not a TensorRT-LLM subclass: its attributes are its own business."""

    def run(self):
        return self.anything_at_all(1, 2, 3)


class TemplateLayer(Module):

    def forward(self, x):
        return self.kiln_hook(x)  # supplied by a subclass below


class ConcreteLayer(TemplateLayer):

    def kiln_hook(self, x):
        return x


class KilnBaseModel(DecoderModelForCausalLM):

    def generate_text(self, prompt):
        # GenerationMixin is outside the manifest: cannot be proven absent.
        return self.generate(prompt)  # unverified: tensorrt_llm.models.modeling_utils.DecoderModelForCausalLM.generate


def build(hidden: int, *args, **kwargs):
    norm = ScaledNorm(normalized_shape=hidden, eps=1e-6)
    spread = RmsNorm(*args, **kwargs)
    partial_spread = RmsNorm(hidden, **kwargs)
    quant = QuantConfig(quant_algo=None, kv_cache_quant_algo=None)
    mapping = Mapping(world_size=2, rank=0, tp_size=2)
    rope = PositionEmbeddingType.from_string("rope_gpt_neox")
    rope_is = PositionEmbeddingType(2).is_rope()
    mask = AttentionMaskType.causal.value
    model = LLaMAForCausalLM.from_hugging_face(os.environ["HF_DIR"], dtype="float16", mapping=mapping)
    llama = tensorrt_llm.models.llama.model.LLaMAForCausalLM
    return norm, spread, partial_spread, quant, rope, rope_is, mask, model, llama


def shadowing(Attention, x: Tensor):
    # The parameter shadows the import: this call is not the TensorRT-LLM class.
    made = Attention(whatever=1)
    y = gelu(x)
    y = (y, 1)
    reshaped = y.reshape(2)  # y is bound twice with different types: unknown, not checked
    squares = [pow(t, 2.0) for t in [x, x]]
    act = lambda gelu: gelu(approximate=True)
    Mish(1, 2, 3)
    return made, reshaped, squares, act, load_kiln_weights


def no_tensorrt_here(items: List[int]):
    count = len
    return count(items)


gelu_alias = gelu


def rebind_global():
    global gelu_alias
    gelu_alias = len


def use_alias(x):
    # rebound through `global` above, so not known to be tensorrt_llm.functional.gelu
    return gelu_alias(x, 1, 2)


def int_enum_members():
    # IntEnum members are ints; their int methods are real attributes
    return PositionEmbeddingType.rope_gpt_neox.bit_length() + PositionEmbeddingType.from_bytes(b"\x02", "little")
