# Misuses of the TensorRT-LLM 1.2 API. Each misuse carries a trailing "error:"
# comment; check-api.test.ts requires exactly those lines to be reported, each
# with a message containing the comment's text, and nothing else. Never executed.
import tensorrt_llm
import tensorrt_llm.functional as F
import tensorrt_llm.layerz  # error: no module named 'tensorrt_llm.layerz'
import tensorrt_llm.layers.Attention  # error: 'tensorrt_llm.layers.Attention' is a class, not a module
from tensorrt_llm.functional import ACT2FN, Tensor, prod
from tensorrt_llm.layers import (Attention, AttentionMaskType, GatedMLP,
                                 Attentoin,  # error: cannot import name 'Attentoin' from 'tensorrt_llm.layers' (did you mean 'Attention'?)
                                 PositionEmbeddingType, RmsNorm)
from tensorrt_llm.layers.attention import Attention as Attn
from tensorrt_llm.models import MODEL_MAP
from tensorrt_llm.models.modeling_utils import MODEL_MAP as MAP2  # error: cannot import name 'MODEL_MAP' from 'tensorrt_llm.models.modeling_utils'
from tensorrt_llm.models.modeling_utils import (DecoderModelForCausalLM,
                                                PretrainedConfig)
from tensorrt_llm.module import Module


class BadConfig(PretrainedConfig):

    def __init__(self, hidden_size: int):
        super().__init__(architecture="Bad", dtype="float16", hidden_size=hidden_size)  # error: missing required argument(s) 'num_hidden_layers', 'num_attention_heads'


class BadNorm(RmsNorm):
    pass


class BadLayer(Module):

    def __init__(self, config: BadConfig):
        super().__init__()
        self.attention = Attention(
            local_layer_idx=0,
            hidden_size=config.hidden_size,
            num_attention_heads=config.num_attention_heads,
            attention_mask_type=AttentionMaskType.casual,  # error: enum 'tensorrt_llm.functional.AttentionMaskType' has no member 'casual' (did you mean 'causal'?)
            rotary_base=10000.0,  # error: unknown keyword argument 'rotary_base' (did you mean 'rotary_embedding_base'?)
            position_embedding_type=PositionEmbeddingType.rope_gpt_neox)
        self.mlp = GatedMLP(hidden_size=config.hidden_size,  # error: missing required argument(s) 'hidden_act'
                            ffn_hidden_size=4 * config.hidden_size)
        self.norm = RmsNorm(config.hidden_size, normalized_shape=config.hidden_size)  # error: argument 'normalized_shape' given by position and by keyword
        self.other_norm = BadNorm(config.hidden_size, epsilon=1e-5)  # error: unknown keyword argument 'epsilon' (did you mean 'eps'?)
        self.attn2 = Attn(hidden_size=64)  # error: missing required argument(s) 'local_layer_idx', 'num_attention_heads'
        self.register_parameters("bias", None)  # error: 'BadLayer' has no method 'register_parameters'
        Attention.create_attention_const_params(self)  # error: missing required argument(s) 'config'

    def forward(self, hidden_states: Tensor, kv_cache_params=None):
        summed = prod(hidden_states, -1)  # error: takes at most 1 positional argument(s), 2 given; keyword-only: op, dim, keepdim # error: missing required argument(s) 'dim'
        act = F.gelu(hidden_states, approximate=True)  # error: unknown keyword argument 'approximate'
        flat = act.reshape([-1])  # error: 'tensorrt_llm.functional.Tensor' object has no method 'reshape'
        out = self.attention(hidden_states, use_cache=False, kv_cache=kv_cache_params)  # error: unknown keyword argument 'kv_cache' (did you mean 'kv_cache_params'?)
        act(out)  # error: 'tensorrt_llm.functional.Tensor' object is not callable
        rope = PositionEmbeddingType.rope_gpt_neox.is_ropee()  # error: enum member 'tensorrt_llm.functional.PositionEmbeddingType.rope_gpt_neox' has no attribute 'is_ropee'
        return tensorrt_llm.functional.gelu2(out)  # error: module 'tensorrt_llm.functional' has no name 'gelu2'


class BadForCausalLM(DecoderModelForCausalLM):

    def __init__(self, config: BadConfig, transformer, lm_head):
        DecoderModelForCausalLM.__init__(self, config, transformer)  # error: missing required argument(s) 'lm_head'


def patched_gelu(x):
    return x


F.gelu = patched_gelu  # error: assignment to tensorrt_llm.functional.gelu patches TensorRT-LLM
ACT2FN["kiln_gelu"] = patched_gelu  # error: item assignment into tensorrt_llm.functional.ACT2FN patches TensorRT-LLM
MODEL_MAP["BadLayer"] = BadLayer  # error: tensorrt_llm.models.MODEL_MAP entry BadLayer must be a class deriving from tensorrt_llm.models.modeling_utils.PretrainedModel
MODEL_MAP["BadForCausalLM"] = BadForCausalLM
