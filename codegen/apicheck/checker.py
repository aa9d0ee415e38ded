"""The API checker proper: walks a parsed Python module and checks every TensorRT-LLM reference.

Every name reached from a manifest-covered import must exist; every call to a TensorRT-LLM callable
(functions, functools.partial ops, constructors, static/class methods, methods of known instances,
`super()` calls of subclasses, `module(...)` -> `forward`) must bind its arguments; enum members must
exist; only registries (MODEL_MAP) may be assigned into.

Invariants:
- Sound before complete: a problem is reported only when the manifest proves it. What the manifest
  cannot describe (uncovered modules or base classes, instance data attributes) goes to `unverified`.
- Names not reached from a manifest prefix (torch, math, the file's own classes) are ignored, except
  the file's classes that derive from TensorRT-LLM classes.
- Value types are flow-insensitive: a name has a type only when every binding of it in its scope
  agrees. Passes repeat until the bindings stop changing; the last pass's findings are the answer.
"""
from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from api_manifest import Entity, ManifestSet, c3_merge, external, method_name
from call_args import ArgProblem, CallShape, check_arguments, did_you_mean
from values import Instance, LocalClass, LocalObj, MethodRef, Opaque, Report, Scope, Super

# Registries generated code may extend by item assignment, with the base class every value must derive from.
REGISTRIES = {"tensorrt_llm.models.MODEL_MAP": "tensorrt_llm.models.modeling_utils.PretrainedModel"}

MAX_PASSES = 8
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
CLASS_LIKE = ("class", "enum")
# Enum bases whose members are also instances of a builtin type, so they carry its attributes.
ENUM_MIXINS = {"IntEnum": int, "IntFlag": int, "StrEnum": str}


# ---- scope pre-pass ---------------------------------------------------------
def bound_names(stmts: Sequence[ast.AST], star_names) -> tuple[set[str], set[str]]:
    """(names a block binds, names it declares global/nonlocal), not descending into nested scopes
    (whose def/class names do count)."""
    names: set[str] = set()
    declared_outer: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Lambda,) + COMPREHENSIONS):
            return
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.Import):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                names.update(star_names(node) if a.name == "*" else [a.asname or a.name])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_outer.update(node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for s in stmts:
        visit(s)
    return names - declared_outer, declared_outer


def all_args(args: ast.arguments) -> list[ast.arg]:
    out = list(args.posonlyargs) + list(args.args)
    out += [args.vararg] if args.vararg else []
    out += list(args.kwonlyargs)
    out += [args.kwarg] if args.kwarg else []
    return out


def decorator_names(node: ast.AST) -> set[str]:
    return {d.id for d in getattr(node, "decorator_list", []) if isinstance(d, ast.Name)}


def call_shape(call: ast.Call) -> CallShape:
    return CallShape(
        n_positional=sum(not isinstance(a, ast.Starred) for a in call.args),
        keywords=tuple(k.arg for k in call.keywords if k.arg is not None),
        star_args=any(isinstance(a, ast.Starred) for a in call.args),
        star_kwargs=any(k.arg is None for k in call.keywords))


def enum_builtin_attribute(enum_entry: dict[str, Any] | None, name: str) -> bool:
    """Attributes an enum gets from its mixin type (IntEnum members are ints: `bit_length`, ...)."""
    mixin = ENUM_MIXINS.get((enum_entry or {}).get("enum_base", ""))
    return name.startswith("_") or (mixin is not None and hasattr(mixin, name))


def attr_position(node: ast.Attribute) -> tuple[int, int]:
    """1-based line/column of the attribute name itself (`.casual` in `AttentionMaskType.casual`)."""
    end_line = getattr(node, "end_lineno", None)
    end_col = getattr(node, "end_col_offset", None)
    if end_line is None or end_col is None:
        return node.lineno, node.col_offset + 1
    return end_line, end_col - len(node.attr) + 1


# ---- the checker ------------------------------------------------------------
class Checker:

    def __init__(self, ms: ManifestSet):
        self.ms = ms
        self.local_classes: dict[ast.ClassDef, LocalClass] = {}
        self.scope_names: dict[ast.AST, tuple[set[str], set[str]]] = {}
        self.prev_sites: dict[Any, list[Any]] = {}  # bindings seen by the previous pass, per (scope, name)
        self.sites: dict[Any, list[Any]] = {}  # bindings of the current pass
        self.report = Report()
        self.scope: Scope | None = None

    def check(self, tree: ast.Module) -> Report:
        for _ in range(MAX_PASSES):
            report, sites = self.run_pass(tree)
            if sites == self.prev_sites:
                break
            self.prev_sites = sites
        return report

    def run_pass(self, tree: ast.Module) -> tuple[Report, dict[Any, list[Any]]]:
        self.report, self.sites, self.scope = Report(), {}, None
        self.scope = self.scope_for(tree, "module", tree.body)
        for stmt in tree.body:
            self.stmt(stmt)
        return self.report, self.sites

    # ---- reporting ----
    def problem(self, line: int, col: int, message: str) -> None:
        self.report.problems.append((line, col, message))

    def problem_at(self, node: ast.AST, message: str) -> None:
        self.problem(node.lineno, node.col_offset + 1, message)

    def resolved(self, line: int, col: int, ent: Entity) -> None:
        """A reference found in a manifest: checked if described there, unverified if external."""
        if ent.kind == "external":
            self.report.unverified.append((line, col, ent.fq))
        else:
            kind = (ent.entry or {}).get("kind", "method") if ent.kind == "method" else ent.kind
            self.report.checked.append((line, col, f"{kind} {ent.fq}"))

    # ---- scopes and bindings ----
    def scope_for(self, node: ast.AST, kind: str, body: Sequence[ast.AST], extra: Sequence[str] = (),
                  owner: LocalClass | None = None) -> Scope:
        if node not in self.scope_names:
            names, declared = bound_names(body, self.star_names)
            self.scope_names[node] = (names | set(extra), declared)
        names, declared = self.scope_names[node]
        return Scope(node, kind, names, self.scope if kind != "module" else None, owner, declared)

    def bind(self, name: str, value: Any) -> None:
        scope = self.scope
        if name in scope.declared:  # `global` / `nonlocal`: the binding belongs to an enclosing scope
            while scope.parent is not None and (scope is self.scope or scope.kind == "class" or name not in scope.names):
                scope = scope.parent
        self.sites.setdefault((scope.key, name), []).append(value)

    def agreed(self, key: Any) -> Any:
        values = self.prev_sites.get(key)
        if not values or any(v != values[0] for v in values):
            return None
        return values[0]

    def lookup_name(self, name: str) -> Any:
        s: Scope | None = self.scope
        while s is not None:
            if (s is self.scope or s.kind != "class") and name in s.names:
                return self.agreed((s.key, name))
            s = s.parent
        return None

    def in_scope(self, scope: Scope, body) -> None:
        outer, self.scope = self.scope, scope
        try:
            body()
        finally:
            self.scope = outer

    # ---- statements ----
    def stmt(self, node: ast.stmt) -> None:
        handler = getattr(self, "stmt_" + type(node).__name__, None)
        if handler is not None:
            handler(node)
        else:
            self.generic(node)

    def generic(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
            elif isinstance(child, ast.stmt):
                self.stmt(child)
            else:
                self.generic(child)

    def stmt_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            module = self.import_module(alias if hasattr(alias, "lineno") else node, alias.name)
            if alias.asname:
                self.bind(alias.asname, module)
            else:
                top = alias.name.split(".")[0]  # `import a.b` binds `a`, even when `a.b` was reported missing
                self.bind(top, self.ms.lookup(top) if self.ms.is_api_name(top) else None)

    def stmt_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = None
        if not node.level and node.module and self.ms.is_api_name(node.module):
            module = self.import_module(node, node.module)
        for alias in node.names:
            if alias.name == "*":
                for name in self.star_names(node):
                    self.bind(name, self.ms.lookup(f"{node.module}.{name}"))
                continue
            self.bind(alias.asname or alias.name, self.import_name(node, alias, module))

    def import_module(self, where: ast.AST, dotted: str) -> Entity | None:
        """Check that every step of a dotted module path exists; None when not API or absent."""
        if not self.ms.is_api_name(dotted):
            return None
        line, col = getattr(where, "lineno", 1), getattr(where, "col_offset", 0) + 1
        parts = dotted.split(".")
        found = None
        for i in range(1, len(parts) + 1):
            path = ".".join(parts[:i])
            if not self.ms.is_api_name(path):
                continue
            found = self.ms.lookup(path)
            if found is None:
                parent = self.ms.lookup(".".join(parts[:i - 1])) if i > 1 else None
                hint = did_you_mean(parts[i - 1], self.ms.member_names(parent)) if parent else ""
                self.problem(line, col, f"no module named '{path}' in the API manifest{hint}")
                return None
            if found.kind not in ("module", "external"):
                self.problem(line, col, f"'{path}' is a {found.kind}, not a module")
                return None
        if found is not None:
            self.resolved(line, col, found)
        return found

    def import_name(self, node: ast.ImportFrom, alias: ast.alias, module: Entity | None) -> Entity | None:
        if module is None:
            return None
        line = getattr(alias, "lineno", node.lineno)
        col = getattr(alias, "col_offset", node.col_offset) + 1
        found = self.ms.lookup(f"{module.fq}.{alias.name}") if module.kind != "external" \
            else external(f"{module.fq}.{alias.name}")
        if found is None:
            hint = did_you_mean(alias.name, self.ms.member_names(module))
            self.problem(line, col, f"cannot import name '{alias.name}' from '{module.fq}'{hint}")
            return None
        self.resolved(line, col, found)
        return found

    def star_names(self, node: ast.ImportFrom) -> list[str]:
        if node.level or not node.module:
            return []
        module = self.ms.lookup(node.module)
        if module is None or module.kind != "module" or module.manifest is None:
            return []
        exported = (module.entry or {}).get("__all__")
        names = module.manifest.names_in_module(module.fq)
        return [n for n in names if n in exported] if exported else [n for n in names if not n.startswith("_")]

    def stmt_ClassDef(self, node: ast.ClassDef) -> None:
        for d in node.decorator_list:
            self.expr(d)
        bases = [self.class_base(b) for b in node.bases]
        for k in node.keywords:
            self.expr(k.value)
        lc = self.local_classes.get(node)
        if lc is None:
            lc = LocalClass(node.name, frozenset(bound_names(node.body, self.star_names)[0]))
            self.local_classes[node] = lc
        lc.bases = tuple(self.as_base(v, b) for v, b in zip(bases, node.bases)
                         if not (isinstance(b, ast.Name) and b.id == "object" and v is None))
        scope = self.scope_for(node, "class", node.body, owner=lc)
        self.in_scope(scope, lambda: [self.stmt(s) for s in node.body])
        self.bind(node.name, lc)

    def class_base(self, node: ast.expr) -> Any:
        """A base class expression; `Generic[...]`-style subscripts (`DecoderModelForCausalLM[M, C]`) stand for the
        subscripted class itself, as they do at run time."""
        if isinstance(node, ast.Subscript):
            value = self.expr(node.value)
            self.expr(node.slice)
            return value if isinstance(value, LocalClass) or (isinstance(value, Entity) and value.kind == "class") else None
        return self.expr(node)

    @staticmethod
    def as_base(value: Any, node: ast.expr) -> Any:
        if isinstance(value, LocalClass) or (isinstance(value, Entity) and value.kind in CLASS_LIKE + ("external",)):
            return value
        return Opaque(ast.unparse(node))

    def stmt_FunctionDef(self, node: ast.FunctionDef) -> None:
        for d in node.decorator_list:
            self.expr(d)
        args = node.args
        for default in list(args.defaults) + [d for d in args.kw_defaults if d is not None]:
            self.expr(default)
        annotations = {a.arg: self.expr(a.annotation) for a in all_args(args) if a.annotation is not None}
        if node.returns is not None:
            self.expr(node.returns)
        self.bind(node.name, None)

        owner = self.scope.owner if self.scope.kind == "class" else None
        decorators = decorator_names(node)
        params = all_args(args)
        scope = self.scope_for(node, "function", node.body, [a.arg for a in params], owner)

        def body() -> None:
            for i, a in enumerate(params):
                if i == 0 and owner is not None and "staticmethod" not in decorators and a in args.args + args.posonlyargs:
                    self.bind(a.arg, owner if "classmethod" in decorators else LocalObj(owner))
                else:
                    self.bind(a.arg, self.as_instance(annotations.get(a.arg)))
            for s in node.body:
                self.stmt(s)
        self.in_scope(scope, body)

    stmt_AsyncFunctionDef = stmt_FunctionDef

    @staticmethod
    def as_instance(cls_value: Any) -> Any:
        if isinstance(cls_value, Entity) and cls_value.kind == "class":
            return Instance(cls_value)
        if isinstance(cls_value, LocalClass):
            return LocalObj(cls_value)
        return None

    def stmt_Assign(self, node: ast.Assign) -> None:
        value = self.expr(node.value)
        for target in node.targets:
            self.assign(target, value, node.value)

    def stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.expr(node.annotation)
        if node.value is not None:
            self.assign(node.target, self.expr(node.value), node.value)
        elif not isinstance(node.target, ast.Name):
            self.expr(node.target.value)

    def stmt_AugAssign(self, node: ast.AugAssign) -> None:
        self.expr(node.value)
        self.assign(node.target, None, None)

    def stmt_For(self, node: ast.For) -> None:
        self.expr(node.iter)
        self.assign(node.target, None, None)
        for s in node.body + node.orelse:
            self.stmt(s)

    stmt_AsyncFor = stmt_For

    def stmt_With(self, node: ast.With) -> None:
        for item in node.items:
            self.expr(item.context_expr)
            if item.optional_vars is not None:
                self.assign(item.optional_vars, None, None)
        for s in node.body:
            self.stmt(s)

    stmt_AsyncWith = stmt_With

    def stmt_Try(self, node: ast.Try) -> None:
        for s in node.body:
            self.stmt(s)
        for h in node.handlers:
            if h.type is not None:
                self.expr(h.type)
            if h.name:
                self.bind(h.name, None)
            for s in h.body:
                self.stmt(s)
        for s in node.orelse + node.finalbody:
            self.stmt(s)

    stmt_TryStar = stmt_Try

    def assign(self, target: ast.expr, value: Any, value_node: ast.expr | None) -> None:
        if isinstance(target, ast.Name):
            self.bind(target.id, value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self.assign(elt, None, None)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, None, None)
        elif isinstance(target, ast.Attribute):
            self.store_attribute(target, value)
        elif isinstance(target, ast.Subscript):
            self.store_item(target, value, value_node)

    def store_attribute(self, target: ast.Attribute, value: Any) -> None:
        base = self.expr(target.value)
        if isinstance(base, LocalObj):
            self.sites.setdefault(("attr", base.cls, target.attr), []).append(value)
        elif isinstance(base, Entity) and base.kind != "external":
            line, col = attr_position(target)
            self.problem(line, col, f"assignment to {base.fq}.{target.attr} patches TensorRT-LLM; "
                                    "generated code must not modify the library")

    def store_item(self, target: ast.Subscript, value: Any, value_node: ast.expr | None) -> None:
        base = self.expr(target.value)
        self.expr(target.slice)
        if not isinstance(base, Entity) or base.kind == "external":
            return
        required_base = REGISTRIES.get(base.fq)
        if required_base is None:
            self.problem_at(target, f"item assignment into {base.fq} patches TensorRT-LLM; "
                                    f"only registries ({', '.join(REGISTRIES)}) may be extended")
        elif self.derives_from(value, required_base) is False:
            shown = ast.unparse(value_node) if value_node is not None else "value"
            self.problem_at(target, f"{base.fq} entry {shown} must be a class deriving from {required_base}")
        else:
            self.report.checked.append((target.lineno, target.col_offset + 1, f"registry entry of {base.fq}"))

    def derives_from(self, value: Any, base_fq: str) -> bool | None:
        """True/False when decidable, None when the value's classes are not all known."""
        if isinstance(value, Entity) and value.kind == "class":
            return self.ms.is_subclass(value, base_fq) or (None if not self.ms.fully_covered(value) else False)
        if isinstance(value, LocalClass):
            mro = self.local_mro(value)
            if any(isinstance(c, Entity) and c.fq == base_fq for c in mro):
                return True
            return None if any(self.unknown_class(c) for c in mro) else False
        return None if value is None else False

    # ---- expressions ----
    def expr(self, node: ast.expr) -> Any:
        handler = getattr(self, "expr_" + type(node).__name__, None)
        if handler is not None:
            return handler(node)
        self.generic(node)
        return None

    def expr_Name(self, node: ast.Name) -> Any:
        return self.lookup_name(node.id) if isinstance(node.ctx, ast.Load) else None

    def expr_Attribute(self, node: ast.Attribute, called: bool = False) -> Any:
        base = self.expr(node.value)
        if not isinstance(node.ctx, ast.Load):
            return None
        return self.attribute(base, node, called)

    def expr_NamedExpr(self, node: ast.NamedExpr) -> Any:
        value = self.expr(node.value)
        self.bind(node.target.id, value)
        return value

    def expr_Lambda(self, node: ast.Lambda) -> None:
        for default in list(node.args.defaults) + [d for d in node.args.kw_defaults if d is not None]:
            self.expr(default)
        names = {a.arg for a in all_args(node.args)}
        self.in_scope(Scope(node, "function", names, self.scope, self.scope.owner), lambda: self.expr(node.body))

    def comprehension(self, node: ast.expr) -> None:
        gens = node.generators
        self.expr(gens[0].iter)  # evaluated in the enclosing scope, as Python does
        names = {n.id for g in gens for n in ast.walk(g.target) if isinstance(n, ast.Name)}

        def body() -> None:
            for i, g in enumerate(gens):
                if i:
                    self.expr(g.iter)
                self.assign(g.target, None, None)
                for cond in g.ifs:
                    self.expr(cond)
            for part in ("elt", "key", "value"):
                if hasattr(node, part):
                    self.expr(getattr(node, part))
        self.in_scope(Scope(node, "function", names, self.scope, self.scope.owner), body)

    expr_ListComp = expr_SetComp = expr_DictComp = expr_GeneratorExp = comprehension

    def expr_Call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Name) and func.id == "super" and self.lookup_name("super") is None:
            self.generic(node)
            return Super(self.scope.owner) if self.scope.owner is not None else None
        callee = self.expr_Attribute(func, called=True) if isinstance(func, ast.Attribute) else self.expr(func)
        for a in node.args:
            self.expr(a)
        for k in node.keywords:
            self.expr(k.value)
        return self.call(callee, node)

    # ---- attribute access ----
    def attribute(self, base: Any, node: ast.Attribute, called: bool) -> Any:
        name = node.attr
        line, col = attr_position(node)
        if isinstance(base, Entity):
            return self.entity_attribute(base, name, line, col)
        if isinstance(base, Instance):
            return self.instance_attribute(base.cls, name, line, col, called)
        if isinstance(base, (LocalObj, LocalClass, Super)):
            return self.local_attribute(base, name, line, col, called)
        return None

    def entity_attribute(self, base: Entity, name: str, line: int, col: int) -> Any:
        if base.kind == "external":
            return external(f"{base.fq}.{name}")
        if base.kind == "module":
            found = self.ms.lookup(f"{base.fq}.{name}")
            if found is None:
                hint = did_you_mean(name, self.ms.member_names(base))
                self.problem(line, col, f"module '{base.fq}' has no name '{name}'{hint}")
                return None
            self.resolved(line, col, found)
            return found
        if base.kind in CLASS_LIKE:
            found = self.ms.class_member(base, name)
            if found is None and base.kind == "enum" and enum_builtin_attribute(base.entry, name):
                return None
            if found is None:
                hint = did_you_mean(name, self.ms.member_names(base))
                what = "member" if base.kind == "enum" else "attribute"
                self.problem(line, col, f"{base.kind} '{base.fq}' has no {what} '{name}'{hint}")
                return None
            self.resolved(line, col, found)
            if found.kind == "method":
                return self.method_value(found, through_class=True)
            return found
        if base.kind == "enum_member":
            enum = base.fq.rpartition(".")[0]
            methods = {method_name(k): m for k, m in (base.entry or {}).get("methods", {}).items()}
            if name in methods:
                found = Entity("method", f"{enum}.{name}", methods[name], None)
                self.resolved(line, col, found)
                return self.method_value(found, through_class=False)
            if name in ("name", "value") or enum_builtin_attribute(base.entry, name):
                self.report.checked.append((line, col, f"enum member attribute {base.fq}.{name}"))
                return None
            hint = did_you_mean(name, ["name", "value"] + list(methods))
            self.problem(line, col, f"enum member '{base.fq}' has no attribute '{name}'{hint}")
        return None

    @staticmethod
    def method_value(method: Entity, through_class: bool) -> Any:
        kind = (method.entry or {}).get("kind")
        if kind in ("property", "property_accessor"):
            return None
        return MethodRef(method, explicit_self=through_class and kind == "method")

    def instance_attribute(self, cls: Entity, name: str, line: int, col: int, called: bool) -> Any:
        found = self.ms.class_member(cls, name)
        if found is not None and found.kind != "external":
            self.resolved(line, col, found)
            return self.method_value(found, through_class=False) if found.kind == "method" else None
        data = self.ms.instance_attribute(cls, name)
        if data is not None:
            self.resolved(line, col, data)
            child = self.ms.child_module_class(data)
            return Instance(child) if child is not None else None
        if called and found is None and self.ms.fully_covered(cls):
            hint = did_you_mean(name, self.ms.member_names(cls))
            self.problem(line, col, f"'{cls.fq}' object has no method '{name}'{hint}")
        else:
            self.report.unverified.append((line, col, f"{cls.fq}.{name}"))
        return None

    def local_attribute(self, base: Any, name: str, line: int, col: int, called: bool) -> Any:
        """Attribute of a class of the file, its instance, or super(). Lookup order: definitions in
        the file, then `self.name = ...` assignments, then the TensorRT-LLM bases."""
        lc = base.cls if isinstance(base, (LocalObj, Super)) else base
        mro = self.local_mro(lc)[1 if isinstance(base, Super) else 0:]
        api_classes = [c for c in mro if isinstance(c, Entity) and c.kind in CLASS_LIKE]
        if not api_classes:
            return None  # not a TensorRT-LLM subclass: none of our business
        local = [c for c in mro if isinstance(c, LocalClass)]
        if any(name in c.members for c in local):
            return None
        if isinstance(base, LocalObj):
            typed = self.local_attr_type(local, name)
            if typed is not None:
                return typed[0]
        uncertain = False
        for c in mro:
            if isinstance(c, LocalClass):
                continue
            if self.unknown_class(c):
                uncertain = True
                break
            found = self.ms.own_member(c, name)
            if found is not None:
                self.resolved(line, col, found)
                if found.kind != "method":
                    return None
                return self.method_value(found, through_class=isinstance(base, LocalClass))
        if isinstance(base, LocalObj) and any(self.ms.instance_attribute(c, name) for c in api_classes):
            return None
        if called and uncertain:
            self.report.unverified.append((line, col, f"{api_classes[0].fq}.{name}"))
        elif called and not self.defined_anywhere_in_file(name):
            where = "super()" if isinstance(base, Super) else f"'{lc.name}'"
            self.problem(line, col, f"{where} has no method '{name}': not defined in the file "
                                    f"nor by its TensorRT-LLM base {api_classes[0].fq}")
        return None

    def defined_anywhere_in_file(self, name: str) -> bool:
        """A method or `obj.name = ...` of any class of the file: a subclass may supply what a base calls."""
        return any(name in lc.members for lc in self.local_classes.values()) or \
            any(k[0] == "attr" and k[2] == name for k in self.prev_sites)

    def local_attr_type(self, mro: Sequence[Any], name: str) -> tuple[Any] | None:
        """(type,) of `self.name` when some class of the file assigns it; None when none does."""
        keys = [("attr", c, name) for c in mro if isinstance(c, LocalClass)]
        keys = [k for k in keys if k in self.prev_sites]
        if not keys:
            return None
        values = [v for k in keys for v in self.prev_sites[k]]
        return (values[0] if all(v == values[0] for v in values) else None,)

    def local_mro(self, lc: LocalClass, _stack: tuple[LocalClass, ...] = ()) -> list[Any]:
        if lc in _stack:
            return [lc]
        seqs = []
        for b in lc.bases:
            if isinstance(b, LocalClass):
                seqs.append(self.local_mro(b, _stack + (lc,)))
            elif isinstance(b, Entity) and b.kind in CLASS_LIKE:
                seqs.append(self.ms.mro(b))
            else:
                seqs.append([b])
        return c3_merge([[lc]] + seqs + [list(lc.bases)])

    @staticmethod
    def unknown_class(c: Any) -> bool:
        return isinstance(c, Opaque) or (isinstance(c, Entity) and c.kind == "external")

    # ---- calls ----
    def call(self, callee: Any, node: ast.Call) -> Any:
        if isinstance(callee, Entity):
            return self.call_entity(callee, node)
        if isinstance(callee, MethodRef):
            return self.call_method(callee.method, node, callee.explicit_self)
        if isinstance(callee, Instance):
            method = self.ms.call_method_of_instance(callee.cls)
            if method is not None:
                return self.call_method(method, node, False)
            if self.ms.fully_covered(callee.cls):
                self.problem_at(node, f"{ast.unparse(node.func)}(): '{callee.cls.fq}' object is not callable")
            return None
        if isinstance(callee, LocalClass):
            init = self.local_attribute(callee, "__init__", node.lineno, node.col_offset + 1, False)
            if isinstance(init, MethodRef):
                self.call_method(init.method, node, False)
            return LocalObj(callee)
        if isinstance(callee, LocalObj):
            api_classes = [c for c in self.local_mro(callee.cls) if isinstance(c, Entity) and c.kind == "class"]
            is_module = any(self.ms.is_module_class(c) for c in api_classes)
            method = self.local_attribute(callee, "forward" if is_module else "__call__",
                                          node.lineno, node.col_offset + 1, False)
            if isinstance(method, MethodRef):
                return self.call_method(method.method, node, False)
        return None

    def call_entity(self, callee: Entity, node: ast.Call) -> Any:
        if callee.kind in CLASS_LIKE:
            params = self.ms.constructor_params(callee)
            if params is None:
                self.report.unverified.append((node.lineno, node.col_offset + 1, f"{callee.fq}.__init__"))
            else:
                signature = f"{callee.fq}.__init__" if callee.kind == "class" else f"{callee.fq}(value)"
                self.check_call(node, params, signature, callee)
            return Instance(callee) if callee.kind == "class" else None
        if callee.kind in ("function", "partial_function"):
            self.check_call(node, callee.entry["params"], callee.fq, callee)
            return self.returned(callee)
        if callee.kind == "module":
            self.problem_at(node, f"{ast.unparse(node.func)}(): module '{callee.fq}' is not callable")
        return None

    def call_method(self, method: Entity, node: ast.Call, explicit_self: bool) -> Any:
        self.check_call(node, method.entry["params"], method.fq, method, explicit_self)
        return self.returned(method)

    def returned(self, callee: Entity) -> Any:
        cls = self.ms.returned_instance(callee)
        return Instance(cls) if cls is not None else None

    def check_call(self, node: ast.Call, params, signature: str, callee: Entity, explicit_self: bool = False) -> None:
        self.report.checked.append((node.lineno, node.col_offset + 1, f"call {signature}"))
        label = ast.unparse(node.func)
        note = ", a functools.partial" if callee.kind == "partial_function" else ""
        for p in check_arguments(params, call_shape(node), explicit_self):
            where = self.argument_node(node, p)
            self.problem_at(where, f"{label}(): {p.message} [{signature}{note}]")

    @staticmethod
    def argument_node(node: ast.Call, p: ArgProblem) -> ast.AST:
        """The keyword or positional argument a problem is about, for a precise line; else the call."""
        if p.keyword is not None:
            for k in node.keywords:
                if k.arg == p.keyword and hasattr(k, "lineno"):
                    return k
        if p.positional_index is not None:
            positional = [a for a in node.args if not isinstance(a, ast.Starred)]
            if p.positional_index < len(positional):
                return positional[p.positional_index]
        return node
