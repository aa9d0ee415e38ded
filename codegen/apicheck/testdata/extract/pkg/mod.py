# Invented API for extract_manifest.py's tests (not TensorRT-LLM code).
import enum
from dataclasses import dataclass, field
from typing import Generic, Optional, TypeVar

from torch import nn

from .sub.base import Base

T = TypeVar("T")


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(kw_only=True)
class Settings:
    size: int
    name: str = "x"
    hidden: int = field(default=0, init=False)


class Widget(Base, Generic[T]):

    def __init__(self, *, size: int, color: Color = Color.RED, extra: Optional[int] = None):
        super().__init__()
        self.part = Part(size)
        self.count = 0

    def forward(self, x, scale: float = 1.0, **kwargs):
        ...

    @staticmethod
    def make(size):
        ...


class Part(nn.Module):

    def __init__(self, size, /, bias=True):
        super().__init__()

    def forward(self, x, *, scale=1.0):
        ...


def build(widget: Widget, *items, flag=False):
    ...


def _private():
    ...
