"""Eager `tensorrt_llm.functional`: a Tensor that holds a torch tensor, the ops Kiln's glue code and custom-op
lowerings emit, the enums model code names, and the collectives (allreduce, send, recv).

Follows tensorrt_llm/functional.py @ 2a9abd9536aa62ad3e4b9314be9286b1b1be523b (the engine API manifest's version):
- Tensor: `ndim()` is a method, `view(shape)` takes a list of ints/Tensors or a shape Tensor (as built by
  `concat([shape(x, i), ...])`), arithmetic operators broadcast, `<`/`>` give boolean tensors;
- softmax and the statistics of rms_norm/layer_norm run in float32 and are cast back to the input dtype (rms_norm:
  normalise in float32, cast, then multiply by the weight in the input dtype);
- 'gelu' is the tanh approximation (ACT2FN maps every GELU name to it);
- matmul(a, b, transa, transb) transposes the last two dims; embedding(input, weight) gathers rows;
- allreduce sums over the tp group; send/recv pass hidden states between pipeline stages.
Tokens are packed as TensorRT-LLM runs with remove_input_padding: [num_tokens, ...].
Invariant: every op takes and returns `Tensor` (or Python numbers where TensorRT-LLM accepts them).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from enum import IntEnum

import torch

from . import _rank


class PositionEmbeddingType(IntEnum):
    learned_absolute = 0
    rope_gptj = 1
    rope_gpt_neox = 2
    long_rope = 3
    alibi = 4
    alibi_with_scale = 5
    relative = 6
    chatglm = 7
    yarn = 8
    mrope = 9
    deferred = 10

    def is_rope(self) -> bool:
        return self in (self.rope_gptj, self.rope_gpt_neox, self.long_rope, self.mrope)

    def is_mrope(self) -> bool:
        return self == self.mrope

    def is_alibi(self) -> bool:
        return self in (self.alibi, self.alibi_with_scale)

    @staticmethod
    def from_string(s: str) -> PositionEmbeddingType:
        try:
            return PositionEmbeddingType[s]
        except KeyError:
            raise ValueError(f"Unsupported position embedding type: {s}") from None


class AttentionMaskType(IntEnum):
    padding = 0
    causal = 1
    sliding_window_causal = 2
    bidirectional = 3
    bidirectionalglm = 4
    blocksparse = 5
    custom_mask = 6


class LayerNormType(IntEnum):
    # Values as in tensorrt_llm/functional.py; model.py names it for Attention(qk_layernorm=True, layernorm_type=...)
    # (Qwen3's QK-norm), which picks the per-head norm class of layers/attention.py.
    LayerNorm = 0
    RmsNorm = 1
    GroupNorm = 2


class RotaryScalingType(IntEnum):
    none = 0
    linear = 1
    dynamic = 2
    longrope = 3
    llama3 = 4
    yarn = 5
    mrope = 6

    @staticmethod
    def from_string(s: str) -> RotaryScalingType:
        try:
            return RotaryScalingType[s]
        except KeyError:
            raise ValueError(f"Unsupported rotary scaling type: {s}") from None


DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "int32": torch.int32,
          "int64": torch.int64, "bool": torch.bool, "int8": torch.int8}


def str_dtype_to_torch(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise TypeError(f"eager tensorrt_llm: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def _t(x):
    return x.t if isinstance(x, Tensor) else x


class Tensor:
    """A TensorRT-LLM graph tensor, evaluated eagerly: `.t` is the torch tensor."""

    __slots__ = ("t",)

    def __init__(self, t: torch.Tensor):
        self.t = t

    # shape and type
    def ndim(self) -> int:
        return self.t.dim()

    def rank(self) -> int:
        return self.t.dim()

    @property
    def shape(self):
        return tuple(self.t.shape)

    @property
    def dtype(self):
        return self.t.dtype

    def size(self, dim=None):
        return tuple(self.t.shape) if dim is None else self.t.shape[dim]

    def view(self, shape, zero_is_placeholder=True):
        return Tensor(self.t.reshape(_shape_list(shape)))

    def cast(self, dtype):
        return cast(self, dtype)

    def permute(self, dims):
        return permute(self, dims)

    def transpose(self, dim0, dim1):
        return Tensor(self.t.transpose(dim0, dim1))

    def split(self, split_size_or_sections, dim=0):
        return split(self, split_size_or_sections, dim)

    def mean(self, dim, keepdim=False):
        return mean(self, dim, keepdim)

    def max(self, dim, keepdim=False):
        return max(self, dim, keepdim)

    def sqrt(self):
        return sqrt(self)

    def abs(self):
        return abs(self)

    # arithmetic (elementwise, broadcasting)
    def __add__(self, b):
        return Tensor(self.t + _t(b))

    def __radd__(self, a):
        return Tensor(_t(a) + self.t)

    def __sub__(self, b):
        return Tensor(self.t - _t(b))

    def __rsub__(self, a):
        return Tensor(_t(a) - self.t)

    def __mul__(self, b):
        return Tensor(self.t * _t(b))

    def __rmul__(self, a):
        return Tensor(_t(a) * self.t)

    def __truediv__(self, b):
        return Tensor(self.t / _t(b))

    def __pow__(self, b):
        return Tensor(self.t ** _t(b))

    def __neg__(self):
        return Tensor(-self.t)

    def __lt__(self, b):
        return Tensor(self.t < _t(b))

    def __gt__(self, b):
        return Tensor(self.t > _t(b))

    def __le__(self, b):
        return Tensor(self.t <= _t(b))

    def __ge__(self, b):
        return Tensor(self.t >= _t(b))

    def __getitem__(self, index):
        return Tensor(self.t[index])

    def __repr__(self) -> str:
        return f"Tensor(shape={list(self.t.shape)}, dtype={self.t.dtype})"


def _shape_list(shape) -> list[int]:
    if isinstance(shape, Tensor):
        return [int(v) for v in shape.t.reshape(-1).tolist()]
    return [int(_t(d)) if isinstance(d, Tensor) else int(d) for d in shape]


def _wrap(t: torch.Tensor) -> Tensor:
    return Tensor(t)


def _as_tensor(x, like: torch.Tensor = None) -> torch.Tensor:
    if isinstance(x, Tensor):
        return x.t
    if like is not None:
        return torch.tensor(x, dtype=like.dtype, device=like.device)
    return torch.tensor(x)


# ---- elementwise ---------------------------------------------------------------------------------------------

def _unary(fn):
    def op(input: Tensor) -> Tensor:
        return Tensor(fn(input.t))
    return op


exp = _unary(torch.exp)
tanh = _unary(torch.tanh)
sqrt = _unary(torch.sqrt)
relu = _unary(torch.relu)
sigmoid = _unary(torch.sigmoid)
silu = _unary(torch.nn.functional.silu)
abs = _unary(torch.abs)  # noqa: A001 - the functional name
sin = _unary(torch.sin)
cos = _unary(torch.cos)
log = _unary(torch.log)


def gelu(x: Tensor) -> Tensor:
    """The tanh approximation, as functional.gelu @ 2a9abd95."""
    t = x.t
    return Tensor(0.5 * t * (torch.tanh(math.sqrt(2.0 / math.pi) * (t + 0.044715 * torch.pow(t, 3.0))) + 1.0))


def _binary(fn):
    def op(left, right) -> Tensor:
        like = left.t if isinstance(left, Tensor) else right.t
        return Tensor(fn(_as_tensor(left, like), _as_tensor(right, like)))
    return op


add = _binary(torch.add)
sub = _binary(torch.sub)
mul = _binary(torch.mul)
div = _binary(torch.div)
pow = _binary(torch.pow)  # noqa: A001
maximum = _binary(torch.maximum)
minimum = _binary(torch.minimum)


# comparisons: functools.partial(elementwise_binary, op=EQUAL / GREATER / LESS) in functional.py @ 2a9abd95; bool result
eq = _binary(torch.eq)
gt = _binary(torch.gt)
lt = _binary(torch.lt)


# ---- routing (topk / argmax / gather / index_select, functional.py @ 2a9abd95) ------------------------------------

def topk(input: Tensor, k, dim: int, largest: bool = True, prefer_plugin: bool = True):
    """(values, int32 indices) of the k largest (or smallest) along dim; ties keep the lower index first (a stable
    sort: TensorRT leaves tie order unspecified, Kiln's topk op pins it)."""
    values, order = torch.sort(input.t, dim=dim, descending=largest, stable=True)
    k = int(_t(k))
    return Tensor(values.narrow(dim, 0, k)), Tensor(order.narrow(dim, 0, k).to(torch.int32))


def argmax(input: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    """int32 index of the first maximum along dim."""
    return Tensor(torch.argmax(input.t, dim=dim, keepdim=keepdim).to(torch.int32))


def gather(input: Tensor, dim: int, indices) -> Tensor:
    """Element gather (TensorRT GatherMode.ELEMENT): out[..., i, ...] = input[..., indices[..., i, ...], ...]."""
    return Tensor(torch.gather(input.t, dim, _t(indices).to(torch.int64)))


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    return Tensor(torch.index_select(input.t, dim, index.t.to(torch.int64)))


def where(condition, left, right) -> Tensor:
    cond = _t(condition)
    like = next(_t(v) for v in (left, right) if isinstance(v, Tensor))
    return Tensor(torch.where(cond, _as_tensor(left, like), _as_tensor(right, like)))


def cast(input: Tensor, dtype) -> Tensor:
    return Tensor(input.t.to(str_dtype_to_torch(dtype)))


# ---- shape ----------------------------------------------------------------------------------------------------

def shape(input: Tensor, dim=None) -> Tensor:
    dims = torch.tensor(list(input.t.shape), dtype=torch.int64)
    return Tensor(dims if dim is None else dims[dim])


def concat(inputs: Sequence[Tensor | int], dim: int = 0) -> Tensor:
    if all(not isinstance(v, Tensor) or v.t.dim() == 0 for v in inputs):  # a shape list
        return Tensor(torch.tensor([int(_t(v)) for v in inputs], dtype=torch.int64))
    return Tensor(torch.cat([_t(v) for v in inputs], dim=dim))


def split(tensor: Tensor, split_size_or_sections, dim: int = 0):
    parts = torch.split(tensor.t, split_size_or_sections, dim=dim)
    return [Tensor(p) for p in parts]


def permute(input: Tensor, dims) -> Tensor:
    return Tensor(input.t.permute(*dims))


def repeat_interleave(tensor: Tensor, repeats: int, dim: int) -> Tensor:
    return Tensor(torch.repeat_interleave(tensor.t, repeats, dim=dim))


def unsqueeze(input: Tensor, axis: int) -> Tensor:
    return Tensor(input.t.unsqueeze(axis))


def expand_dims(input: Tensor, dim) -> Tensor:
    return unsqueeze(input, dim)


# ---- reductions, matmul, normalisation ------------------------------------------------------------------------

def _dims(dim):
    return tuple(dim) if isinstance(dim, (list, tuple)) else dim


def mean(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    return Tensor(input.t.mean(dim=_dims(dim), keepdim=keepdim))


def sum(input: Tensor, dim, keepdim: bool = False) -> Tensor:  # noqa: A001
    return Tensor(input.t.sum(dim=_dims(dim), keepdim=keepdim))


def max(input: Tensor, dim, keepdim: bool = False) -> Tensor:  # noqa: A001
    t = input.t
    for d in sorted([dim] if isinstance(dim, int) else list(dim), key=lambda a: a % t.dim(), reverse=True):
        t = t.amax(dim=d, keepdim=keepdim)
    return Tensor(t)


def softmax(input: Tensor, dim=None) -> Tensor:
    d = input.t.dim() - 1 if dim is None else dim
    return Tensor(torch.softmax(input.t.float(), dim=d).to(input.t.dtype))


def matmul(input: Tensor, mat2: Tensor, transa: bool = False, transb: bool = False, use_fp32_acc: bool = True) -> Tensor:
    a, b = input.t, mat2.t
    if transa:
        a = a.transpose(-1, -2)
    if transb:
        b = b.transpose(-1, -2)
    return Tensor(torch.matmul(a, b))


def embedding(input: Tensor, weight: Tensor, tp_size=1, tp_group=None, sharding_dim=0, tp_rank=None,
              per_token_scale=None, padding=None) -> Tensor:
    return Tensor(torch.nn.functional.embedding(input.t.long(), weight.t))


def rms_norm(input: Tensor, normalized_shape, num_groups: int = 1, weight=None, eps: float = 1e-06) -> Tensor:
    x = input.t
    n = 1 if isinstance(normalized_shape, int) else len(normalized_shape)
    dims = tuple(range(-n, 0))
    xf = x.float()
    y = (xf * torch.rsqrt(xf.pow(2).mean(dim=dims, keepdim=True) + eps)).to(x.dtype)
    if weight is not None:
        y = y * _t(weight)
    return Tensor(y)


def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-05,
               use_diff_of_squares: bool = True) -> Tensor:
    x = input.t
    shp = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    w, b = _t(weight), _t(bias)
    y = torch.nn.functional.layer_norm(x.float(), shp, None if w is None else w.float(),
                                       None if b is None else b.float(), eps)
    return Tensor(y.to(x.dtype))


# ---- collectives ----------------------------------------------------------------------------------------------

def allreduce(tensor: Tensor, group=None, all_reduce_params=None, strategy=None) -> Tensor:
    return Tensor(_rank.comm().all_reduce(tensor.t))


def allgather(tensor: Tensor, group=None, gather_dim: int = 0) -> Tensor:
    if gather_dim not in (-1, tensor.t.dim() - 1):
        raise NotImplementedError("eager tensorrt_llm: allgather only along the last dim")
    return Tensor(_rank.comm().all_gather(tensor.t))


def send(tensor: Tensor, tgt: int) -> Tensor:
    _rank.comm().send_next(tensor.t)
    return tensor


def recv(tensor: Tensor, src: int) -> Tensor:
    """`tensor` is the stage's hidden_states input; its shape and dtype are what the previous stage sends."""
    return Tensor(_rank.comm().recv_prev(tensor.t))


ACT2FN = {"gelu": gelu, "gelu_new": gelu, "gelu_fast": gelu, "gelu_pytorch_tanh": gelu, "openai-gelu": gelu,
          "relu": relu, "silu": silu, "sigmoid": sigmoid, "tanh": tanh, "identity": lambda x: x,
          "squared-relu": lambda x: Tensor(torch.relu(x.t) ** 2), "relu2": lambda x: Tensor(torch.relu(x.t) ** 2),
          "quick_gelu": lambda x: Tensor(x.t * torch.sigmoid(1.702 * x.t)),
          "swiglu": lambda x: swiglu(x)}


def swiglu(input: Tensor) -> Tensor:
    """`x, gate = chunk(input, 2, dim=-1); silu(gate) * x` (functional.py @ 2a9abd95)."""
    x, gate = input.t.chunk(2, dim=-1)
    return Tensor(torch.nn.functional.silu(gate) * x)
