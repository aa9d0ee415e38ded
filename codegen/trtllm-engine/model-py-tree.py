"""Builds the module tree of an emitted model.py against a stand-in for tensorrt_llm, without TensorRT-LLM or a GPU.

Usage: python3 model-py-tree.py MODEL_PY CONFIG_JSON
Prints {"<rank>": {"<parameter name>": [shape...]}} for every rank of the config's mapping.

The stand-in implements only what constructing a model touches, following TensorRT-LLM 1.2's documented rules
(facts §2-§3): Module keeps Parameters and child Modules in dicts keyed by attribute name and named_parameters()
joins the attribute path; ColumnLinear splits its output dim by tp_size, RowLinear its input dim; Attention holds
qkv (ceil(kv_heads / tp) key/value heads per rank) and dense; MLP/GatedMLP hold fc, [gate,] proj; DecoderLayerList
builds the layers of this rank's pipeline stage, named by local index. Forward code is never run.
"""
import json
import runpy
import sys
import types


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


class Parameter:

    def __init__(self, value=None, shape=None, dtype=None, is_buffer=False, prefer_managed=False):
        self.shape = tuple(shape) if shape is not None else ()
        self.dtype = dtype
        self.is_buffer = is_buffer

    @property
    def value(self):
        return self


class Module:

    def __init__(self):
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_parameters", {})

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        for store in ("_parameters", "_modules"):
            found = self.__dict__.get(store, {})
            if name in found:
                return found[name]
        raise AttributeError(name)

    def register_parameter(self, name, param):
        self._parameters[name] = param

    def named_parameters(self, prefix=""):
        for name, p in self._parameters.items():
            if p is not None and not p.is_buffer:
                yield prefix + name, p
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_parameters(prefix + name + ".")


class ModuleList(Module):

    def __init__(self, modules):
        super().__init__()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m


class ColumnLinear(Module):

    def __init__(self, in_features, out_features, bias=True, dtype=None, tp_group=None, tp_size=1,
                 gather_output=True, **kw):
        super().__init__()
        self.weight = Parameter(shape=(out_features // tp_size, in_features), dtype=dtype)
        self.register_parameter("bias", Parameter(shape=(out_features // tp_size,)) if bias else None)


class RowLinear(Module):

    def __init__(self, in_features, out_features, bias=True, dtype=None, tp_group=None, tp_size=1, **kw):
        super().__init__()
        self.weight = Parameter(shape=(out_features, in_features // tp_size), dtype=dtype)
        self.register_parameter("bias", Parameter(shape=(out_features,)) if bias else None)


class Attention(Module):

    def __init__(self, *, local_layer_idx, hidden_size, num_attention_heads, num_kv_heads=None,
                 attention_head_size=None, bias=True, dense_bias=None, tp_size=1, **kw):
        super().__init__()
        hd = attention_head_size or hidden_size // num_attention_heads
        heads = num_attention_heads // tp_size
        kv = (num_kv_heads or num_attention_heads)
        kv_local = (kv + tp_size - 1) // tp_size
        self.qkv = ColumnLinear(hidden_size, tp_size * (heads + 2 * kv_local) * hd, bias=bias, tp_size=tp_size)
        self.dense = RowLinear(tp_size * heads * hd, hidden_size, bias=bias if dense_bias is None else dense_bias,
                               tp_size=tp_size)


class MLP(Module):

    def __init__(self, hidden_size, ffn_hidden_size, hidden_act, bias=True, dtype=None, tp_group=None, tp_size=1,
                 **kw):
        super().__init__()
        self.fc = ColumnLinear(hidden_size, ffn_hidden_size, bias=bias, tp_size=tp_size)
        self.proj = RowLinear(ffn_hidden_size, hidden_size, bias=bias, tp_size=tp_size)


class GatedMLP(MLP):

    def __init__(self, hidden_size, ffn_hidden_size, hidden_act, bias=True, dtype=None, tp_group=None, tp_size=1,
                 **kw):
        super().__init__(hidden_size, ffn_hidden_size, hidden_act, bias, dtype, tp_group, tp_size)
        self.gate = ColumnLinear(hidden_size, ffn_hidden_size, bias=bias, tp_size=tp_size)


class RmsNorm(Module):

    def __init__(self, normalized_shape, num_groups=1, eps=1e-6, elementwise_affine=True, dtype=None):
        super().__init__()
        self.register_parameter("weight", Parameter(shape=(normalized_shape,)) if elementwise_affine else None)


class LayerNorm(Module):

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None, **kw):
        super().__init__()
        self.register_parameter("weight", Parameter(shape=(normalized_shape,)) if elementwise_affine else None)
        self.register_parameter("bias", Parameter(shape=(normalized_shape,)) if elementwise_affine and bias else None)


class Embedding(Module):

    def __init__(self, num_embeddings, embedding_dim, dtype=None, **kw):
        super().__init__()
        self.weight = Parameter(shape=(num_embeddings, embedding_dim), dtype=dtype)


class Mapping:

    def __init__(self, world_size=1, rank=0, tp_size=1, pp_size=1, **kw):
        self.world_size, self.rank, self.tp_size, self.pp_size = world_size, rank, tp_size, pp_size

    tp_rank = property(lambda self: self.rank % self.tp_size)
    pp_rank = property(lambda self: self.rank // self.tp_size)
    tp_group = property(lambda self: [self.pp_rank * self.tp_size + i for i in range(self.tp_size)])

    def pp_layers(self, n):
        # torch.tensor_split: the first n % pp stages get one extra layer.
        base, extra = divmod(n, self.pp_size)
        start = self.pp_rank * base + min(self.pp_rank, extra)
        return list(range(start, start + base + (1 if self.pp_rank < extra else 0)))

    def is_first_pp_rank(self):
        return self.pp_rank == 0

    def is_last_pp_rank(self):
        return self.pp_rank == self.pp_size - 1


class PretrainedConfig:

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.mapping = Mapping(**kwargs.get("mapping", {}))
        self.quant_mode = None

    def set_rank(self, rank):
        self.mapping.rank = rank


class DecoderLayerList(ModuleList):

    def __init__(self, cls, config):
        super().__init__([cls(config, idx) for idx in config.mapping.pp_layers(config.num_hidden_layers)])


class DecoderModelForCausalLM(Module):

    def __init__(self, config, transformer, lm_head):
        super().__init__()
        self.config = config
        self.transformer = transformer
        self.lm_head = lm_head
        # RoPE tables are buffers on the top model; they are not checkpoint tensors.
        self.register_parameter("rotary_inv_freq", Parameter(shape=(1,), is_buffer=True))


def install():
    functional = _module("tensorrt_llm.functional", Tensor=object,
                         **{n: (lambda *a, **k: None) for n in ("recv", "send", "allreduce", "identity")})
    layers = _module("tensorrt_llm.layers", Attention=Attention, AttentionMaskType=types.SimpleNamespace(causal=1),
                     ColumnLinear=ColumnLinear, RowLinear=RowLinear, Embedding=Embedding, LayerNorm=LayerNorm,
                     RmsNorm=RmsNorm, MLP=MLP, GatedMLP=GatedMLP)
    modeling_utils = _module("tensorrt_llm.models.modeling_utils", PretrainedConfig=PretrainedConfig,
                             DecoderLayerList=DecoderLayerList, DecoderModelForCausalLM=DecoderModelForCausalLM)
    models = _module("tensorrt_llm.models", MODEL_MAP={}, modeling_utils=modeling_utils)
    module = _module("tensorrt_llm.module", Module=Module)
    _module("tensorrt_llm", Parameter=Parameter, functional=functional, layers=layers, models=models, module=module,
            __path__=[])
    return models


def main(model_py, config_json):
    models = install()
    runpy.run_path(model_py)
    with open(config_json) as f:
        config = json.load(f)
    cls = models.MODEL_MAP[config["architecture"]]
    out = {}
    for rank in range(config["mapping"]["world_size"]):
        cfg = cls.config_class(**config)
        cfg.set_rank(rank)
        model = cls(cfg)
        out[str(rank)] = {name: list(p.shape) for name, p in model.named_parameters()}
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
