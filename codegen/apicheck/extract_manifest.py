#!/usr/bin/env python3
"""Extracts an API manifest (the schema of trtllm-1.2.json, see README.md) from Python source files.

    python3 extract_manifest.py SOURCES.json --root DIR --out MANIFEST.json

SOURCES.json lists the files to read: {"manifest", "target_release", "module_prefixes", "files": [{"module",
"path", "repo", "commit", "version_hint", "parsed"}]}; each `path` is read under DIR (a TensorRT-LLM checkout, or
excerpts of its files: class and function signatures with bodies elided). With `--keep MANIFEST.json` (an earlier
output for the same SOURCES.json), a listed file absent under DIR keeps its module entry and source record from
MANIFEST, so a manifest can be extended with new files without the excerpts it was first made from. Every file is parsed with `ast`; nothing
is imported or executed. The manifest records, per module, its imports (relative ones resolved), public functions,
classes (bases, methods with their parameters, dataclass fields and the synthesized __init__, child modules and
attributes set in __init__), enums with their members and module-level assignments, plus a resolution table for
every name visible in a covered module. Only names, signatures, defaults and attribute names are kept: no source
text beyond default-value expressions.

Pydantic models (a class deriving from `BaseModel`) get the synthesized keyword-only __init__ of their annotated
fields, as kw_only dataclasses do (`Field(default=...)` / `Field(default_factory=...)` count as defaults).

Invariants: Python 3.9+ standard library only; the output is deterministic (sorted keys in `resolution`, source
order elsewhere); a file listed but absent (and not kept) is an error naming it.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
from typing import Any

Json = dict[str, Any]
ENUM_BASES = {"Enum", "IntEnum", "IntFlag", "Flag", "StrEnum"}


def literal(node: ast.expr) -> Any:
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return ...
    return value if isinstance(value, (str, int, float, bool, type(None))) else ...


def param(arg: ast.arg, kind: str, default: ast.expr | None) -> Json:
    out: Json = {"name": arg.arg, "kind": kind}
    if arg.annotation is not None:
        out["annotation"] = ast.unparse(arg.annotation)
    out["has_default"] = default is not None
    if default is not None:
        out["default"] = ast.unparse(default)
        value = literal(default)
        if value is not ...:
            out["default_literal"] = value
    return out


def signature(fn: ast.FunctionDef, drop_first: bool) -> Json:
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [param(p, "positional_only" if i < len(a.posonlyargs) else "positional_or_keyword", d)
              for i, (p, d) in enumerate(zip(positional, defaults))]
    bound = None
    if drop_first and params:
        bound = params.pop(0)["name"]
    if a.vararg:
        params.append(param(a.vararg, "var_positional", None))
    params += [param(p, "keyword_only", d) for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        params.append(param(a.kwarg, "var_keyword", None))
    out: Json = {"params": params, "accepts_var_keyword": a.kwarg is not None,
                 "accepts_var_positional": a.vararg is not None, "lineno": fn.lineno}
    if bound is not None:
        out["bound_param"] = bound
    if fn.returns is not None:
        out["returns"] = ast.unparse(fn.returns)
    decorators = [ast.unparse(d) for d in fn.decorator_list]
    if decorators:
        out["decorators"] = decorators
    return out


def method_kind(fn: ast.FunctionDef) -> str:
    names = {ast.unparse(d) for d in fn.decorator_list}
    if "staticmethod" in names:
        return "staticmethod"
    if "classmethod" in names:
        return "classmethod"
    if "property" in names or any(n.endswith(".getter") for n in names):
        return "property"
    if any(n.endswith((".setter", ".deleter")) for n in names):
        return "property_accessor"
    return "method"


def init_body(fn: ast.FunctionDef) -> Json:
    """Attributes `self.x = ...` set in __init__: child modules (a call of a capitalised name) and the rest."""
    children: list[Json] = []
    others: list[str] = []
    for node in ast.walk(fn):
        if not isinstance(node, ast.Assign):
            continue
        for t in node.targets:
            if not (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"):
                continue
            v = node.value
            callee = ast.unparse(v.func) if isinstance(v, ast.Call) else None
            if callee and callee.split(".")[-1][:1].isupper() and callee.split(".")[-1] != "Parameter":
                if all(c["name"] != t.attr for c in children):
                    children.append({"name": t.attr, "callee": callee})
            elif t.attr not in others:
                others.append(t.attr)
    return {"child_modules": children, "other_self_attributes": others}


def is_dataclass(cls: ast.ClassDef) -> ast.expr | None:
    for d in cls.decorator_list:
        name = ast.unparse(d.func if isinstance(d, ast.Call) else d)
        if name in ("dataclass", "dataclasses.dataclass"):
            return d
    return None


def is_pydantic(cls: ast.ClassDef) -> bool:
    return any(ast.unparse(b).split(".")[-1] == "BaseModel" for b in cls.bases)


def dataclass_fields(cls: ast.ClassDef, decorator: ast.expr | None) -> list[Json]:
    """Fields of a dataclass (decorator given) or of a pydantic model (decorator None: keyword-only)."""
    kw_only = decorator is None or (isinstance(decorator, ast.Call) and any(
        k.arg == "kw_only" and literal(k.value) is True for k in decorator.keywords))
    fields = []
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        if ast.unparse(node.annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = node.value
        init = True
        has_default = value is not None
        if isinstance(value, ast.Call) and ast.unparse(value.func) in ("field", "dataclasses.field"):
            kws = {k.arg: k.value for k in value.keywords}
            init = literal(kws["init"]) is not False if "init" in kws else True
            has_default = "default" in kws or "default_factory" in kws
        elif isinstance(value, ast.Call) and ast.unparse(value.func) in ("Field", "pydantic.Field"):
            kws = {k.arg: k.value for k in value.keywords}
            first = value.args[0] if value.args else None
            has_default = ("default" in kws or "default_factory" in kws
                           or (first is not None and not (isinstance(first, ast.Constant) and first.value is ...)))
        if not init:
            continue
        f = {"name": node.target.id, "kind": "keyword_only" if kw_only else "positional_or_keyword",
             "annotation": ast.unparse(node.annotation), "has_default": has_default}
        if has_default and value is not None:
            f["default"] = ast.unparse(value)
        fields.append(f)
    return fields


def class_entry(cls: ast.ClassDef, fq: str) -> Json:
    out: Json = {"bases": [ast.unparse(b) for b in cls.bases], "lineno": cls.lineno, "kind": "class"}
    if cls.keywords:
        out["class_keywords"] = {k.arg: ast.unparse(k.value) for k in cls.keywords if k.arg}
    if cls.decorator_list:
        out["decorators"] = [ast.unparse(d) for d in cls.decorator_list]
    methods: Json = {}
    attributes: Json = {}
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kind = method_kind(node)
            entry = signature(node, drop_first=kind != "staticmethod")
            entry["kind"] = kind
            if node.name == "__init__":
                entry["body"] = init_body(node)
            key = node.name
            if kind == "property_accessor":
                key = f"{node.name}:{ast.unparse(node.decorator_list[0]).split('.')[-1]}"
            while key in methods:
                key += "#2"
            methods[key] = entry
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    attributes[t.id] = {"source": ast.unparse(node.value)}
        elif (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and not is_dataclass(cls)
              and not is_pydantic(cls)):
            attributes[node.target.id] = {"annotation": ast.unparse(node.annotation)}
    out["methods"] = methods
    if attributes:
        out["class_attributes"] = attributes
    decorator = is_dataclass(cls)
    if decorator is not None or is_pydantic(cls):
        out["kind"] = "dataclass"
        out["fields"] = dataclass_fields(cls, decorator)
        if "__init__" not in methods:
            out["init_defined_in"] = f"{fq} (synthesized)"
            out["synthesized_init"] = {"params": out["fields"], "accepts_var_keyword": False,
                                       "accepts_var_positional": False}
    if "init_defined_in" not in out and "__init__" in methods:
        out["init_defined_in"] = fq
    return out


def enum_entry(cls: ast.ClassDef) -> Json:
    bases = [ast.unparse(b).split(".")[-1] for b in cls.bases]
    members = []
    for node in cls.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            m: Json = {"name": node.targets[0].id, "value_source": ast.unparse(node.value)}
            value = literal(node.value)
            if value is not ...:
                m["value"] = value
            members.append(m)
    methods = {}
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            kind = method_kind(node)
            entry = signature(node, drop_first=kind != "staticmethod")
            entry["kind"] = kind
            methods[node.name] = entry
    return {"enum_base": next(b for b in reversed(bases) if b in ENUM_BASES), "bases": [ast.unparse(b) for b in cls.bases],
            "members": members, "methods": methods, "lineno": cls.lineno}


def absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def module_entry(module: str, path: str, tree: ast.Module) -> Json:
    is_package = os.path.basename(path) == "__init__.py"
    imports: Json = {}
    functions: Json = {}
    private: list[str] = []
    classes: Json = {}
    enums: Json = {}
    assignments: Json = {}
    exported = None
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                imports[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            src = absolute(module, is_package, node)
            for a in node.names:
                if a.name != "*":
                    imports[a.asname or a.name] = f"{src}.{a.name}"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.startswith("_"):
                private.append(node.name)
            else:
                functions[node.name] = signature(node, drop_first=False)
        elif isinstance(node, ast.ClassDef):
            bases = {ast.unparse(b).split(".")[-1] for b in node.bases}
            if bases & ENUM_BASES:
                enums[node.name] = enum_entry(node)
            else:
                classes[node.name] = class_entry(node, f"{module}.{node.name}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and node.value is not None:
                    if t.id == "__all__":
                        value = ast.literal_eval(node.value)
                        exported = list(value)
                    else:
                        assignments[t.id] = {"source": ast.unparse(node.value)}
    out: Json = {"file": path, "is_package": is_package, "imports": imports}
    if exported is not None:
        out["__all__"] = exported
    out.update({"functions": functions, "private_functions": private, "classes": classes, "enums": enums,
                "aliases": {}, "partial_functions": {}, "module_assignments": assignments})
    return out


def resolve(modules: Json, name: str, seen=frozenset()) -> Json:
    """Where a dotted name defined in or imported into a covered module leads."""
    if name in modules:
        return {"target": name, "kind": "module"}
    mod, _, local = name.rpartition(".")
    m = modules.get(mod)
    if m is None or name in seen:
        return {"target": name, "kind": "external"}
    for table, kind in (("classes", "class"), ("enums", "enum"), ("functions", "function")):
        if local in m[table]:
            return {"target": name, "kind": kind}
    if local in m["private_functions"]:
        return {"target": name, "kind": "private_function"}
    if local in m["module_assignments"]:
        return {"target": name, "kind": "constant"}
    if local in m["imports"]:
        return resolve(modules, m["imports"][local], seen | {name})
    return {"target": name, "kind": "external"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Extract an API manifest from Python sources (ast only).")
    ap.add_argument("sources")
    ap.add_argument("--root", required=True, help="directory the listed paths are read under")
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep", help="an earlier manifest: listed files absent under --root keep their entries from it")
    a = ap.parse_args(argv)
    with open(a.sources, encoding="utf-8") as f:
        spec = json.load(f)
    kept: Json = {"modules": {}, "source": {}}
    if a.keep:
        with open(a.keep, encoding="utf-8") as f:
            kept = json.load(f)
    modules: Json = {}
    source: Json = {}
    for entry in spec["files"]:
        path = os.path.join(a.root, entry["path"])
        if not os.path.exists(path) and entry["module"] in kept["modules"] and entry["path"] in kept["source"]:
            modules[entry["module"]] = kept["modules"][entry["module"]]
            source[entry["path"]] = kept["source"][entry["path"]]
            continue
        if not os.path.exists(path):
            print(f"extract_manifest: {entry['path']} is listed in {a.sources} but missing under {a.root}", file=sys.stderr)
            return 2
        with open(path, encoding="utf-8") as f:
            text = f.read()
        modules[entry["module"]] = module_entry(entry["module"], entry["path"], ast.parse(text, filename=path))
        source[entry["path"]] = {**{k: entry[k] for k in ("repo", "commit", "version_hint", "parsed") if k in entry},
                                 "path": entry["path"], "chars": len(text),
                                 "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}
    for mod, m in modules.items():  # child modules' classes, where the callee is a name the module can see
        for cls in m["classes"].values():
            for child in cls["methods"].get("__init__", {}).get("body", {}).get("child_modules", []):
                head, _, rest = child["callee"].partition(".")
                found = resolve(modules, f"{mod}.{head}")
                if found["kind"] == "class" and not rest:
                    child["callee_resolved"] = found["target"]
    resolution: Json = {}
    for mod, m in modules.items():
        names = list(m["imports"]) + list(m["functions"]) + list(m["classes"]) + list(m["enums"]) + list(m["module_assignments"])
        for n in names:
            resolution[f"{mod}.{n}"] = resolve(modules, f"{mod}.{n}")
    manifest = {
        "manifest": spec["manifest"],
        "schema_version": 1,
        "target_release": spec["target_release"],
        "generated_by": "codegen/apicheck/extract_manifest.py (Python ast over the files listed under 'source')",
        "module_prefixes": spec["module_prefixes"],
        "source": source,
        "modules": modules,
        "resolution": dict(sorted(resolution.items())),
    }
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"extract_manifest: {len(modules)} modules, {len(resolution)} names -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
