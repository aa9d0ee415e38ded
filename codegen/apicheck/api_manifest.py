"""Read-only view of one or more TensorRT-LLM API manifests (JSON, see README.md).

Answers three questions about a dotted name such as
`tensorrt_llm.layers.Attention`: does it exist, what is it (module, class,
enum, function, method, ...), and which parameters does calling it accept.

Invariants:
- Nothing from TensorRT-LLM is imported or executed; only the JSON is read.
- Several manifests can be loaded at once. A name is routed to the manifest
  whose module prefix is the longest match (`tensorrt_llm._torch` beats
  `tensorrt_llm`), and an `external` answer is followed into another loaded
  manifest when that one covers the target.
- Every lookup answers one of: an Entity with a definition, an Entity of kind
  `external` (known to exist, but not described by any loaded manifest, so it
  cannot be checked), or None (definitely absent from a covered namespace).
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

# Entry tables of a manifest module, in lookup order, with the entity kind each holds.
MODULE_TABLES = (("classes", "class"), ("enums", "enum"), ("functions", "function"),
                 ("partial_functions", "partial_function"))

# Keys of a method body record that name instance attributes set in that method.
BODY_ATTRIBUTE_KEYS = ("registered_parameters", "child_modules", "attributes_set_to_none",
                       "other_self_attributes", "attributes_from_arguments")

# Attributes every enum member has (Python's Enum machinery, not in the manifest).
ENUM_MEMBER_ATTRIBUTES = ("name", "value")

MODULE_BASE = "tensorrt_llm.module.Module"
# Calling an instance of any of these runs its forward (TensorRT-LLM's Module, and torch.nn.Module for the
# PyTorch backend's tensorrt_llm._torch modules, whose bases resolve to the external torch class).
MODULE_BASES = (MODULE_BASE, "torch.nn.Module", "torch.nn.modules.module.Module")


@dataclass(frozen=True)
class Entity:
    """A named thing of the API. Equality is by (kind, fq) so values can be compared."""
    kind: str  # module|class|enum|function|partial_function|method|enum_member|attribute|constant|external
    fq: str  # canonical dotted path of the definition
    entry: Json | None = field(default=None, compare=False, repr=False)
    manifest: Manifest | None = field(default=None, compare=False, repr=False)


def external(fq: str) -> Entity:
    return Entity("external", fq)


def parent_paths(dotted: str) -> Iterable[str]:
    parts = dotted.split(".")
    return (".".join(parts[:i]) for i in range(1, len(parts)))


def common_root(names: Iterable[str]) -> str:
    split = [n.split(".") for n in names]
    root: list[str] = []
    for column in zip(*split):
        if len(set(column)) != 1:
            break
        root.append(column[0])
    return ".".join(root)


def c3_merge(sequences: list[list[Entity]]) -> list[Entity]:
    """C3 linearisation merge; on an inconsistent hierarchy falls back to first-seen order."""
    seqs = [list(s) for s in sequences if s]
    out: list[Entity] = []
    while seqs:
        head = next((s[0] for s in seqs if not any(s[0] in t[1:] for t in seqs)), None)
        if head is None:
            return out + [c for s in seqs for c in s if c not in out]
        out.append(head)
        seqs = [[c for c in s if c != head] for s in seqs]
        seqs = [s for s in seqs if s]
    return out


def method_name(key: str) -> str:
    """Manifest method keys carry suffixes for accessors and redefinitions: `rank:setter`, `_get_name#2`."""
    return key.split(":")[0].split("#")[0]


class Manifest:
    """One manifest file: its modules, its name resolution table and the prefixes it covers."""

    def __init__(self, path: str):
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if "modules" not in data or "resolution" not in data:
            raise ValueError(f"{path}: not an API manifest (needs 'modules' and 'resolution')")
        self.path = path
        self.modules: Json = data["modules"]
        self.resolution: Json = data["resolution"]
        self.prefixes: list[str] = data.get("module_prefixes") or [common_root(self.modules)]
        # Packages above covered modules exist even when their __init__ is not covered (models.llama).
        self.packages = {p for mod in self.modules for p in parent_paths(mod)} - set(self.modules)
        # Every path that a covered module imports from is known to exist, as are its parent packages.
        self.known_external = set()
        for r in self.resolution.values():
            if r["kind"] == "external":
                self.known_external.add(r["target"])
                self.known_external.update(parent_paths(r["target"]))

    def covers(self, dotted: str) -> int:
        """Length of the longest prefix of this manifest matching `dotted` (0: none)."""
        return max((len(p) for p in self.prefixes if dotted == p or dotted.startswith(p + ".")), default=0)

    def definition(self, fq: str) -> Entity | None:
        if fq in self.modules:
            return Entity("module", fq, self.modules[fq], self)
        mod, _, name = fq.rpartition(".")
        m = self.modules.get(mod)
        if m is None:
            return None
        for table, kind in MODULE_TABLES:
            if name in m.get(table, {}):
                return Entity(kind, fq, m[table][name], self)
        if name in m.get("module_assignments", {}):
            return Entity("constant", fq, m["module_assignments"][name], self)
        return None

    def names_in_module(self, mod: str) -> list[str]:
        head = mod + "."
        return [k[len(head):] for k in self.resolution if k.startswith(head) and "." not in k[len(head):]]


class ManifestSet:
    """All loaded manifests; the checker asks only this object."""

    def __init__(self, paths: Iterable[str]):
        self.manifests = [Manifest(p) for p in paths]
        self._mro_cache: dict[Entity, list[Entity]] = {}

    def route(self, dotted: str) -> Manifest | None:
        best = max(self.manifests, key=lambda m: m.covers(dotted), default=None)
        return best if best is not None and best.covers(dotted) else None

    def is_api_name(self, dotted: str) -> bool:
        return self.route(dotted) is not None

    # ---- names ----------------------------------------------------------
    def lookup(self, dotted: str, _seen: frozenset = frozenset()) -> Entity | None:
        """Resolve a dotted name as Python would after importing its module."""
        m = self.route(dotted)
        if m is None or dotted in _seen:
            return None
        r = m.resolution.get(dotted)
        if r is not None:
            return self._resolved(m, r, _seen | {dotted})
        if dotted in m.modules:
            return m.definition(dotted)
        if dotted in m.packages:
            return Entity("module", dotted, None, m)
        mod, _, name = dotted.rpartition(".")
        if mod in m.modules and name in m.modules[mod].get("private_functions", []):
            return external(dotted)  # exists, but the manifest keeps no signature for private helpers
        head = self.lookup(mod, _seen) if mod else None
        if head is not None and head.kind in ("class", "enum"):
            return self.class_member(head, name)
        uncovered_parent = head is not None and (head.kind == "external" or (head.kind == "module" and head.entry is None))
        if dotted in m.known_external or uncovered_parent:
            return external(dotted)  # exists, or an uncovered module may define it
        return None

    def _resolved(self, m: Manifest, r: Json, seen: frozenset) -> Entity | None:
        target, kind = r["target"], r["kind"]
        if kind == "external":
            other = self.route(target)
            if other is not None and other is not m:
                return self.lookup(target, seen) or external(target)
            return external(target)
        if kind == "module":
            return self.lookup(target, seen) if target not in m.modules else m.definition(target)
        found = m.definition(target)
        if found is None and kind == "private_function":
            return external(target)  # listed by name only, without a signature
        return found or Entity(kind, target, None, m)

    def member_names(self, ent: Entity) -> list[str]:
        """Candidate names for 'did you mean' hints."""
        if ent.kind == "module" and ent.manifest is not None:
            return ent.manifest.names_in_module(ent.fq)
        if ent.kind in ("class", "enum"):
            names = []
            for cls in self.mro(ent):
                if cls.kind == "external":
                    continue
                names += [method_name(k) for k in cls.entry.get("methods", {})]
                names += [mem["name"] for mem in cls.entry.get("members", [])]
                names += list(cls.entry.get("class_attributes", {}))
            return names
        return []

    # ---- classes --------------------------------------------------------
    def base_entities(self, cls: Entity) -> list[Entity]:
        """The class's bases as entities; builtins other than `object` count as external."""
        mod = cls.fq.rpartition(".")[0]
        out = []
        for src in cls.entry.get("bases", []):
            if src == "object":
                continue
            head, _, rest = src.partition(".")
            base = self.lookup(f"{mod}.{head}")
            if base is not None and rest:
                if base.kind == "module":
                    base = self.lookup(f"{base.fq}.{rest}")
                else:  # `nn.Module` with `nn` -> torch.nn (external): name the class canonically
                    base = external(f"{base.fq}.{rest}" if base.kind == "external" else src)
            known = base is not None and base.kind in ("class", "enum", "external")
            out.append(base if known else external(src))
        return out

    def mro(self, cls: Entity) -> list[Entity]:
        """C3 method resolution order. External classes end their branch: their own bases are unknown.
        Enums stop at themselves: their bases are the stdlib Enum types, whose members are not API."""
        if cls.kind != "class":
            return [cls]
        if cls not in self._mro_cache:
            self._mro_cache[cls] = self._c3(cls)
        return self._mro_cache[cls]

    def _c3(self, cls: Entity) -> list[Entity]:
        return c3_merge([[cls]] + [self.mro(b) for b in self.base_entities(cls)]
                        + [self.base_entities(cls)])

    def fully_covered(self, cls: Entity) -> bool:
        return all(c.kind != "external" for c in self.mro(cls))

    def is_subclass(self, cls: Entity, base_fq: str) -> bool:
        return any(c.fq == base_fq for c in self.mro(cls))

    def own_member(self, cls: Entity, name: str) -> Entity | None:
        """`name` defined in the body of `cls` itself: method, enum member, class attribute or nested class."""
        e = cls.entry
        for key, meth in e.get("methods", {}).items():
            if method_name(key) == name:
                return Entity("method", f"{cls.fq}.{name}", meth, cls.manifest)
        if any(mem["name"] == name for mem in e.get("members", [])):
            return Entity("enum_member", f"{cls.fq}.{name}", e, cls.manifest)
        if name in e.get("class_attributes", {}) or name in e.get("nested_classes", {}):
            return Entity("attribute", f"{cls.fq}.{name}", None, cls.manifest)
        return None

    def class_member(self, cls: Entity, name: str) -> Entity | None:
        """Class-level attribute `cls.name`, searched along the method resolution order."""
        for c in self.mro(cls):
            if c.kind == "external":
                return external(f"{cls.fq}.{name}")  # an uncovered base may define it
            found = self.own_member(c, name)
            if found is not None:
                return found
        if cls.kind == "enum" and name.startswith("_"):
            return external(f"{cls.fq}.{name}")  # Enum machinery (__members__, _value2member_map_, ...)
        return None

    def instance_attribute(self, cls: Entity, name: str) -> Entity | None:
        """Data attribute of an instance: set in a recorded method body, a field or a checkpoint member.

        Returns an `attribute` Entity whose entry is the child-module record when there is one."""
        for c in self.mro(cls):
            if c.kind == "external":
                continue
            if any(f["name"] == name for f in c.entry.get("fields", [])):
                return Entity("attribute", f"{c.fq}.{name}", None, c.manifest)
            for meth in c.entry.get("methods", {}).values():
                body = meth.get("body") or {}
                for key in BODY_ATTRIBUTE_KEYS:
                    for item in body.get(key, []):
                        item_name = item if isinstance(item, str) else item.get("name")
                        if item_name == name:
                            child = item if key == "child_modules" else None
                            return Entity("attribute", f"{c.fq}.{name}", child, c.manifest)
        return None

    def child_module_class(self, attr: Entity) -> Entity | None:
        """Class of a child module attribute when its constructor is unambiguous (Attention.dense -> RowLinear)."""
        callee = (attr.entry or {}).get("callee_resolved")
        found = self.lookup(callee) if callee else None
        return found if found is not None and found.kind == "class" else None

    # ---- calls ----------------------------------------------------------
    def constructor_params(self, cls: Entity) -> list[Json] | None:
        """Parameters of `cls(...)`, or None when the constructor lies outside the manifests."""
        if cls.kind == "enum":
            return [{"name": "value", "kind": "positional_only", "has_default": False}]
        src = cls.entry.get("init_defined_in") or ""
        if src.endswith("(synthesized)"):
            owner = self.lookup(src.split(" ")[0])
            return (owner.entry or {}).get("synthesized_init", {}).get("params") if owner else None
        init = self.class_member(cls, "__init__")
        if init is None:
            return []  # object.__init__
        return init.entry["params"] if init.kind == "method" else None

    def returned_instance(self, callee: Entity) -> Entity | None:
        """Class of the value a call returns, when the manifest's return annotation names one plainly."""
        returns = (callee.entry or {}).get("returns")
        if not returns or not returns.isidentifier():
            return None
        owner = callee.fq.rpartition(".")[0]
        if callee.kind == "method":
            owner = owner.rpartition(".")[0]
        found = self.lookup(f"{owner}.{returns}")
        return found if found is not None and found.kind == "class" else None

    def is_module_class(self, cls: Entity) -> bool:
        return any(self.is_subclass(cls, base) for base in MODULE_BASES)

    def call_method_of_instance(self, cls: Entity) -> Entity | None:
        """What `obj(...)` runs: `forward` for Module subclasses (Module.__call__ forwards), else `__call__`."""
        name = "forward" if self.is_module_class(cls) else "__call__"
        found = self.class_member(cls, name)
        return found if found is not None and found.kind == "method" else None


def default_manifest_paths() -> list[str]:
    here = os.path.dirname(os.path.abspath(__file__))
    return [os.path.join(here, "trtllm-1.2.json")]
