"""Abstract values the API checker gives to Python expressions, and the scopes it tracks.

Invariants: values compare by meaning (Entity by kind and path; LocalClass by identity, as only its
bases are refreshed each pass), so "every binding of a name agrees" is plain equality; `None` means
"unknown, or not TensorRT-LLM".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api_manifest import Entity


@dataclass(frozen=True)
class Instance:
    """An object of a TensorRT-LLM class."""
    cls: Entity


@dataclass(eq=False)
class LocalClass:
    """A class defined in the checked file; identity is its ClassDef node."""
    name: str
    members: frozenset[str]  # names bound in the class body (methods, class attributes)
    bases: tuple[Any, ...] = ()  # per pass: Entity, LocalClass or Opaque


@dataclass(frozen=True)
class LocalObj:
    """`self`, or an object of a class defined in the file."""
    cls: LocalClass


@dataclass(frozen=True)
class Super:
    cls: LocalClass


@dataclass(frozen=True)
class MethodRef:
    method: Entity
    explicit_self: bool  # reached through the class: the instance is the first positional argument


@dataclass(eq=False)
class Opaque:
    """A base class that is neither TensorRT-LLM nor defined in the file (torch.nn.Module, ...)."""
    source: str


@dataclass
class Scope:
    key: Any  # the defining node; the module scope uses the Module node
    kind: str  # module | function | class
    names: set[str]  # names local to this scope
    parent: Scope | None
    owner: LocalClass | None = None  # class of the method (function scopes) or of the body (class scopes)
    declared: set[str] = field(default_factory=set)  # names declared `global` / `nonlocal` here


@dataclass
class Report:
    problems: list[tuple[int, int, str]] = field(default_factory=list)
    unverified: list[tuple[int, int, str]] = field(default_factory=list)
    checked: list[tuple[int, int, str]] = field(default_factory=list)  # what was proven, for --verbose
