"""Eager `tensorrt_llm.module.Module` and `ModuleList` (tensorrt_llm/module.py @ 2a9abd9536aa62ad3e4b9314be9286b1b1be523b).

Attribute assignment registers Parameters and child Modules in order, so `named_parameters()` yields the dotted
names a checkpoint uses (`transformer.layers.0.attention.qkv.weight`); assigning None removes nothing and registers
nothing (TensorRT-LLM's `register_parameter(name, None)` placeholders). Calling a module calls `forward`.
"""
from __future__ import annotations

from collections.abc import Iterator

from .parameter import Parameter


class Module:
    def __init__(self) -> None:
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_parameters", {})

    def __setattr__(self, name, value) -> None:
        if "_modules" not in self.__dict__:  # a subclass that assigns before super().__init__()
            Module.__init__(self)
        self._modules.pop(name, None)
        self._parameters.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, param) -> None:
        setattr(self, name, param)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_children(self):
        return iter(self._modules.items())


class ModuleList(Module):
    def __init__(self, modules) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def __getitem__(self, i) -> Module:
        return self._modules[str(i % len(self))]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
