# Hand-written sample of what Kiln emits for a custom architecture ("KilnFoo": a
# LLaMA-like decoder with a scaled residual and a tensor-parallel RMS gate),
# written in the style of TensorRT-LLM's own models/llama/model.py.
# check_api.py must accept it with zero problems; it is never executed.
import math
from typing import Optional

import tensorrt_llm
import tensorrt_llm.functional as F
from tensorrt_llm import Parameter
from tensorrt_llm.functional import Tensor, concat, recv, send
from tensorrt_llm.layers import (Attention, AttentionMaskType, ColumnLinear,
                                 Embedding, GatedMLP, PositionEmbeddingType,
                                 RmsNorm, RowLinear)
from tensorrt_llm.mapping import Mapping
from tensorrt_llm.models import MODEL_MAP
from tensorrt_llm.models.modeling_utils import (DecoderLayerList,
                                                DecoderModelForCausalLM,
                                                PretrainedConfig, QuantConfig)
from tensorrt_llm.module import Module


class KilnFooConfig(PretrainedConfig):

    def __init__(self,
                 *,
                 architecture: str = "KilnFooForCausalLM",
                 dtype: str = "float16",
                 hidden_size: int = 4096,
                 num_hidden_layers: int = 32,
                 num_attention_heads: int = 32,
                 rotary_base: float = 10000.0,
                 residual_scale: float = 1.0,
                 attn_bias: bool = False,
                 mlp_bias: bool = False,
                 **kwargs):
        self.rotary_base = rotary_base
        self.residual_scale = residual_scale
        self.attn_bias = attn_bias
        self.mlp_bias = mlp_bias
        super().__init__(architecture=architecture,
                         dtype=dtype,
                         hidden_size=hidden_size,
                         num_hidden_layers=num_hidden_layers,
                         num_attention_heads=num_attention_heads,
                         position_embedding_type=PositionEmbeddingType.rope_gpt_neox,
                         **kwargs)

    def to_dict(self):
        output = super().to_dict()
        output["rotary_base"] = self.rotary_base
        output["residual_scale"] = self.residual_scale
        output["attn_bias"] = self.attn_bias
        output["mlp_bias"] = self.mlp_bias
        return output


class KilnFooRmsGate(Module):
    """Per-token gate from the RMS of the tensor-parallel hidden shards."""

    def __init__(self, hidden_size: int, mapping: Mapping, dtype: str):
        super().__init__()
        self.mapping = mapping
        self.scale = Parameter(shape=(hidden_size // mapping.tp_size, ), dtype=dtype)
        self.proj = RowLinear(hidden_size, hidden_size, bias=False, dtype=dtype,
                              tp_group=mapping.tp_group, tp_size=mapping.tp_size)

    def forward(self, hidden_states: Tensor):
        squares = F.pow(hidden_states, 2.0)
        local_sum = F.sum(squares, dim=-1, keepdim=True)
        if self.mapping.tp_size > 1:
            local_sum = tensorrt_llm.functional.allreduce(local_sum, self.mapping.tp_group)
        rms = F.sqrt(local_sum)
        gate = F.sigmoid(F.div(rms, math.sqrt(2.0)))
        scaled = F.mul(hidden_states, self.scale.value)
        return self.proj(scaled * gate)


class KilnFooDecoderLayer(Module):

    def __init__(self, config: KilnFooConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.config = config
        layers_range = config.mapping.pp_layers(config.num_hidden_layers)
        self.local_layer_idx = layer_idx - layers_range[0]

        self.input_layernorm = RmsNorm(normalized_shape=config.hidden_size,
                                       eps=config.norm_epsilon,
                                       dtype=config.dtype)
        self.attention = Attention(
            local_layer_idx=self.local_layer_idx,
            hidden_size=config.hidden_size,
            attention_head_size=config.head_size,
            num_attention_heads=config.num_attention_heads,
            num_kv_heads=config.num_key_value_heads,
            max_position_embeddings=config.max_position_embeddings,
            dtype=config.dtype,
            attention_mask_type=AttentionMaskType.causal,
            bias=config.attn_bias,
            position_embedding_type=F.PositionEmbeddingType.rope_gpt_neox,
            rotary_embedding_base=config.rotary_base,
            tp_group=config.mapping.tp_group,
            tp_size=config.mapping.tp_size,
            tp_rank=config.mapping.tp_rank,
            quant_mode=config.quant_mode)
        self.mlp = GatedMLP(hidden_size=config.hidden_size,
                            ffn_hidden_size=config.intermediate_size,
                            hidden_act=config.hidden_act,
                            dtype=config.dtype,
                            bias=config.mlp_bias,
                            tp_group=config.mapping.tp_group,
                            tp_size=config.mapping.tp_size,
                            quant_mode=config.quant_mode)
        self.gate = KilnFooRmsGate(config.hidden_size, config.mapping, config.dtype)
        self.post_layernorm = RmsNorm(normalized_shape=config.hidden_size,
                                      eps=config.norm_epsilon,
                                      dtype=config.dtype)

    def forward(self,
                hidden_states: Tensor,
                attention_mask=None,
                use_cache=False,
                kv_cache_params=None,
                attention_params=None,
                lora_layer_params=None):
        residual = hidden_states
        normed = self.input_layernorm(hidden_states)
        attention_output = self.attention(normed,
                                          attention_mask=attention_mask,
                                          use_cache=use_cache,
                                          kv_cache_params=kv_cache_params,
                                          attention_params=attention_params,
                                          lora_layer_params=lora_layer_params)
        if use_cache:
            attention_output, presents = attention_output
        hidden_states = residual + attention_output * self.config.residual_scale
        residual = hidden_states
        hidden_states = self.post_layernorm(hidden_states)
        hidden_states = self.mlp(hidden_states, lora_layer_params=lora_layer_params)
        hidden_states = residual + self.gate(hidden_states)
        if use_cache:
            return (hidden_states, presents)
        return hidden_states


class KilnFooModel(Module):

    def __init__(self, config: KilnFooConfig):
        super().__init__()
        self.mapping = config.mapping
        self.hidden_size = config.hidden_size
        if self.mapping.is_first_pp_rank():
            self.vocab_embedding = Embedding(config.vocab_size,
                                             config.hidden_size,
                                             dtype=config.dtype)
        self.layers = DecoderLayerList(KilnFooDecoderLayer, config)
        if self.mapping.is_last_pp_rank():
            self.ln_f = RmsNorm(normalized_shape=config.hidden_size,
                                eps=config.norm_epsilon,
                                dtype=config.dtype)

    def forward(self,
                input_ids,
                position_ids=None,
                use_cache=False,
                attention_mask=None,
                kv_cache_params=None,
                attention_params=None,
                hidden_states=None,
                prompt_embedding_table: Optional[Tensor] = None,
                prompt_tasks: Optional[Tensor] = None,
                prompt_vocab_size: Optional[Tensor] = None,
                lora_params=None):
        if self.mapping.is_first_pp_rank():
            hidden_states = self.vocab_embedding(input_ids)
        else:
            received = recv(hidden_states, self.mapping.prev_pp_rank())
            gathered = F.allgather(received, self.mapping.tp_group, gather_dim=0)
            hidden_states = gathered.view(concat([-1, self.hidden_size]))

        hidden_states = self.layers.forward(hidden_states,
                                            use_cache=use_cache,
                                            attention_mask=attention_mask,
                                            kv_cache_params=kv_cache_params,
                                            attention_params=attention_params,
                                            lora_params=lora_params)
        if use_cache:
            hidden_states, presents = hidden_states

        if self.mapping.is_last_pp_rank():
            hidden_states = self.ln_f(hidden_states)
        else:
            hidden_states = send(hidden_states, self.mapping.next_pp_rank())

        if use_cache:
            return (hidden_states, tuple(presents))
        return hidden_states


class KilnFooForCausalLM(DecoderModelForCausalLM):
    config_class = KilnFooConfig

    def __init__(self, config: KilnFooConfig):
        transformer = KilnFooModel(config)
        tp_size = config.mapping.tp_size
        vocab_size_padded = int(math.ceil(config.vocab_size / tp_size) * tp_size)
        if config.mapping.is_last_pp_rank():
            lm_head = ColumnLinear(config.hidden_size,
                                   vocab_size_padded,
                                   bias=False,
                                   dtype=config.dtype,
                                   tp_group=config.mapping.tp_group,
                                   tp_size=tp_size,
                                   gather_output=True)
        else:
            lm_head = None
        super().__init__(config, transformer, lm_head)

    @classmethod
    def from_kiln_checkpoint(cls,
                             config_dict: dict,
                             weights: dict,
                             mapping: Optional[Mapping] = None,
                             quant_config: Optional[QuantConfig] = None):
        if mapping is None:
            mapping = Mapping(world_size=1, rank=0, tp_size=1, pp_size=1)
        config = KilnFooConfig.from_dict(config_dict)
        config.set_rank(mapping.rank)
        model = cls(config)
        model.load(weights)
        return model


MODEL_MAP["KilnFooForCausalLM"] = KilnFooForCausalLM
