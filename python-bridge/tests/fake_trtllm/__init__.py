"""A fake `tensorrt_llm` 1.2 package generated from the API manifest (tests/data/trtllm-1.2.json).

Every module, class, method, function, enum and MODEL_MAP entry the manifest lists is recreated; every callable is
given the manifest's signature (inspect.Signature) and binds its arguments before doing anything, so calling a name
the real 1.2 API lacks fails (AttributeError / ImportError) and passing a keyword or argument count it does not
accept raises TypeError. Calls are recorded in `FakeTrtLlm.calls` (in call order; MODEL_MAP registrations too).
A few callables get behaviour, emulating what the real ones do to the objects the bridge touches:
PretrainedConfig.from_json_file / from_dict (MODEL_MAP lookup -> KeyError for an unregistered architecture, then
config_class(**config)), set_rank, PretrainedModel.from_checkpoint (needs rank{r}.safetensors), BuildConfig.from_dict
(drops unknown keys as the real one does), build (returns an Engine) and Engine.save (writes rank{r}.engine as JSON
that records what was built, so builds in spawned workers can be checked from the parent; rank 0 also writes
config.json). Names the manifest marks as outside its coverage ('external') are absent.
"""
from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import os
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

MANIFEST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "trtllm-1.2.json")
FAKE_VERSION = "1.2.1"
_KINDS = {
    "positional_only": inspect.Parameter.POSITIONAL_ONLY,
    "positional_or_keyword": inspect.Parameter.POSITIONAL_OR_KEYWORD,
    "var_positional": inspect.Parameter.VAR_POSITIONAL,
    "keyword_only": inspect.Parameter.KEYWORD_ONLY,
    "var_keyword": inspect.Parameter.VAR_KEYWORD,
}


class ManifestDefault:
    """A default value given in the manifest as source text (not a literal)."""

    def __init__(self, source: str):
        self.source = source

    def __repr__(self) -> str:
        return f"<default {self.source}>"


@dataclass
class Call:
    name: str                   # canonical definition, e.g. tensorrt_llm.models.modeling_utils.PretrainedConfig.set_rank
    receiver: Optional[str]     # class name of self / cls for methods
    args: Dict[str, Any]        # bound arguments (self / cls removed)


def signature_of(params: List[dict], bound_param: Optional[str] = None) -> inspect.Signature:
    out = [inspect.Parameter(bound_param, inspect.Parameter.POSITIONAL_OR_KEYWORD)] if bound_param else []
    for p in params:
        default = inspect.Parameter.empty
        if p.get("has_default"):
            default = p["default_literal"] if "default_literal" in p else ManifestDefault(p.get("default", "?"))
        out.append(inspect.Parameter(p["name"], _KINDS[p["kind"]], default=default))
    return inspect.Signature(out)


class RecordingDict(dict):
    """MODEL_MAP: records registrations so tests can check their order against other calls."""

    def __init__(self, fake: "FakeTrtLlm", name: str, *args):
        super().__init__(*args)
        self._fake, self._name = fake, name

    def __setitem__(self, key, value):
        self._fake.calls.append(Call(self._name + ".__setitem__", None, {"key": key, "value": getattr(value, "__name__", value)}))
        super().__setitem__(key, value)


class FakeTrtLlm:
    def __init__(self, manifest_path: str = MANIFEST):
        with open(manifest_path) as f:
            self.manifest = json.load(f)
        self.calls: List[Call] = []
        self.selected_gpu: Optional[int] = None
        self.modules: Dict[str, types.ModuleType] = {}
        self.objects: Dict[str, Any] = {}  # canonical name -> fake object
        self._saved: Dict[str, Any] = {}
        self._behaviour = _behaviours(self)
        self._build()

    # ---- queries ---------------------------------------------------------------------------------------------------

    def calls_to(self, suffix: str) -> List[Call]:
        return [c for c in self.calls if c.name.endswith(suffix)]

    # ---- sys.modules ---------------------------------------------------------------------------------------------

    def install(self) -> "FakeTrtLlm":
        for name in list(sys.modules):
            if name == "tensorrt_llm" or name.startswith("tensorrt_llm."):
                self._saved[name] = sys.modules.pop(name)
        sys.modules.update(self.modules)
        return self

    def uninstall(self) -> None:
        for name in self.modules:
            sys.modules.pop(name, None)
        sys.modules.update(self._saved)
        self._saved.clear()

    # ---- construction ------------------------------------------------------------------------------------------

    def _build(self) -> None:
        mods = self.manifest["modules"]
        for name, info in mods.items():
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # parent packages the manifest does not list (e.g. tensorrt_llm.plugin)
                self._module(".".join(parts[:i]), package=i < len(parts) or info.get("is_package", False))
        self._module("tensorrt_llm", True).__version__ = FAKE_VERSION  # tensorrt_llm.version is outside the manifest
        for name, info in mods.items():
            for fname, fn in {**info.get("functions", {}), **info.get("partial_functions", {})}.items():
                self._define(f"{name}.{fname}", self._callable(f"{name}.{fname}", signature_of(fn["params"])))
            for ename, en in info.get("enums", {}).items():
                self._define(f"{name}.{ename}", _make_enum(ename, en))
            for cname in info.get("classes", {}):
                self._class(f"{name}.{cname}")
        for name, info in mods.items():
            for aname, assignment in info.get("module_assignments", {}).items():
                if aname == "MODEL_MAP":
                    self._define(f"{name}.{aname}", RecordingDict(self, f"{name}.MODEL_MAP", self._model_map()))
                elif "value" in assignment:
                    self._define(f"{name}.{aname}", assignment["value"])
                elif assignment.get("type") == "dict":
                    entries = assignment.get("entries", [])
                    self._define(f"{name}.{aname}", {e["key"]: self.objects.get(f"{name}.{e['value_source']}")
                                                     for e in entries if "key" in e})
        for visible, res in self.manifest["resolution"].items():  # re-exports and imports
            module, _, attr = visible.rpartition(".")
            if module in self.modules and res["target"] in self.objects and not hasattr(self.modules[module], attr):
                setattr(self.modules[module], attr, self.objects[res["target"]])

    def _module(self, name: str, package: bool) -> types.ModuleType:
        if name not in self.modules:
            mod = types.ModuleType(name, f"fake {name} generated from the TensorRT-LLM 1.2 API manifest")
            self.modules[name] = mod
            parent, _, leaf = name.rpartition(".")
            if parent:
                setattr(self._module(parent, True), leaf, mod)
        mod = self.modules[name]
        if package and not hasattr(mod, "__path__"):
            mod.__path__ = []  # type: ignore[attr-defined]
        return mod

    def _define(self, canonical: str, obj: Any) -> None:
        self.objects[canonical] = obj
        module, _, attr = canonical.rpartition(".")
        setattr(self.modules[module], attr, obj)

    def _callable(self, qualname: str, sig: inspect.Signature, bound_param: Optional[str] = None,
                  default: Optional[Callable] = None) -> Callable:
        fake = self
        impl = self._behaviour.get(qualname, default)

        def stub(*args, **kwargs):
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as e:
                raise TypeError(f"{qualname}{sig}: {e} (not accepted by the TensorRT-LLM 1.2 API)") from None
            arguments = dict(bound.arguments)
            receiver = None
            if bound_param:
                first = arguments.pop(bound_param)
                receiver = first.__name__ if isinstance(first, type) else type(first).__name__
            fake.calls.append(Call(qualname, receiver, arguments))
            return impl(bound) if impl else None

        stub.__signature__ = sig  # type: ignore[attr-defined]
        stub.__name__ = stub.__qualname__ = qualname.rsplit(".", 1)[-1]
        return stub

    def _class(self, canonical: str) -> type:
        if canonical in self.objects:
            return self.objects[canonical]
        module, _, cname = canonical.rpartition(".")
        info = self.manifest["modules"][module]["classes"][cname]
        bases = []
        for b in info.get("bases", []):
            target = self.manifest["resolution"].get(f"{module}.{b}", {})
            if target.get("kind") == "class" and target["target"].rpartition(".")[0] in self.manifest["modules"]:
                base = self._class(target["target"])
                if base not in bases:
                    bases.append(base)
        ns: Dict[str, Any] = {"__module__": module, "__doc__": f"fake {canonical}"}
        for mname, meth in info["methods"].items():
            kind = meth.get("kind", "method")
            if ":" in mname or kind == "property_accessor":
                continue
            if mname.startswith("__") and mname not in ("__init__", "__call__"):
                continue  # __getattribute__, __del__, __post_init__, ...: object protocol, not API surface
            qual = f"{canonical}.{mname}"
            if kind == "property":
                ns[mname] = self._behaviour.get(qual) or _data_property(mname)
                continue
            bound_param = meth.get("bound_param") if kind != "staticmethod" else None
            default = _store_arguments if mname == "__init__" else None
            fn = self._callable(qual, signature_of(meth["params"], bound_param), bound_param, default)
            ns[mname] = {"classmethod": classmethod, "staticmethod": staticmethod}.get(kind, lambda f: f)(fn)
        if info["kind"] == "pydantic_model":
            ns["model_fields"] = {p["name"]: p.get("default_literal") for p in info["synthesized_init"]["params"]}
        if "__init__" not in ns and "synthesized_init" in info and info["kind"] == "pydantic_model":
            ns["__init__"] = self._callable(f"{canonical}.__init__", signature_of(info["synthesized_init"]["params"],
                                                                                  "self"), "self", _store_arguments)
        for attr, source in (info.get("class_attributes") or {}).items():  # e.g. config_class = LLaMAConfig
            target = self.manifest["resolution"].get(f"{module}.{source}", {})
            if target.get("kind") == "class" and target["target"].rpartition(".")[0] in self.manifest["modules"]:
                ns[attr] = self._class(target["target"])
        extra = f"{canonical}._fake_post_init"
        if extra in self._behaviour:
            ns["_fake_post_init"] = self._behaviour[extra]
        cls = type(cname, tuple(bases) or (object,), ns)
        if info["kind"] == "dataclass" and "synthesized_init" in info:  # a dataclass writing its own __init__ stays
            cls = _as_dataclass(cls, info)
        self._define(canonical, cls)
        return cls

    def _model_map(self) -> Dict[str, type]:
        out = {}
        for key, entry in self.manifest["model_map"].items():
            if entry.get("in_manifest") and entry["defined_in"] in self.objects:
                out[key] = self.objects[entry["defined_in"]]
            else:  # a real class outside the manifest: present, but not executable here
                out[key] = type(entry["class"], (), {"__doc__": f"fake placeholder for {entry['defined_in']}"})
        return out


def _make_enum(name: str, info: dict) -> type:
    base = {"IntEnum": enum.IntEnum, "IntFlag": enum.IntFlag}.get(info.get("enum_base"), enum.Enum)
    members = [(m["name"], m.get("value", i)) for i, m in enumerate(info["members"])]
    return base(name, members)


def _data_property(name: str) -> property:
    return property(lambda self: self.__dict__.get(name), lambda self, v: self.__dict__.__setitem__(name, v))


def _store_arguments(bound: inspect.BoundArguments) -> None:
    """Default __init__: keep every argument (defaults included, **kwargs flattened) as an attribute."""
    bound.apply_defaults()
    args = dict(bound.arguments)
    self = args.pop(next(iter(bound.signature.parameters)))
    for p in bound.signature.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            args.update(args.pop(p.name, {}))
        elif p.kind is inspect.Parameter.VAR_POSITIONAL:
            args.pop(p.name, None)
    self.__dict__.update(args)
    post = getattr(self, "_fake_post_init", None)  # class extras, e.g. PretrainedConfig's Mapping(**mapping)
    if post is not None:
        post()


def _as_dataclass(cls: type, info: dict) -> type:
    fields = []
    for p in info["synthesized_init"]["params"]:
        default = p.get("default_literal") if "default_literal" in p else None
        field = (dataclasses.field(default_factory=lambda d=default: type(d)(d)) if isinstance(default, (list, dict))
                 else dataclasses.field(default=default))
        fields.append((p["name"], Any, field))
    namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    return dataclasses.make_dataclass(cls.__name__, fields, bases=cls.__bases__, namespace=namespace)


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "__dict__"):
        return {k: _jsonable(v) for k, v in vars(obj).items() if not k.startswith("_")}
    return repr(obj)


def _behaviours(fake: FakeTrtLlm) -> Dict[str, Callable[[inspect.BoundArguments], Any]]:
    """What the few callables the bridge drives actually do (keyed by canonical name)."""
    mu = "tensorrt_llm.models.modeling_utils"
    obj = fake.objects

    def config_post_init(self):  # runs after any config class's __init__ stored its arguments
        if isinstance(self.__dict__.get("mapping"), dict):
            # PretrainedConfig does Mapping(**mapping) (binding rejects unknown keys); Mapping.__new__ returns an
            # MpiTopology, whose tp_rank / pp_rank properties the bridge reads.
            checked = obj["tensorrt_llm.mapping.Mapping"](**self.mapping)
            self.mapping = obj["tensorrt_llm.mapping.MpiTopology"].__new__(obj["tensorrt_llm.mapping.MpiTopology"])
            self.mapping.__dict__.update(checked.__dict__)

    def from_dict(bound):
        cls, config = bound.arguments["cls"], bound.arguments["config"]
        model_cls = fake.modules["tensorrt_llm.models"].MODEL_MAP[config["architecture"]]  # KeyError like the real one
        return getattr(model_cls, "config_class", cls)(**config)

    def from_json_file(bound):
        with open(bound.arguments["config_file"]) as f:
            return bound.arguments["cls"].from_dict(json.load(f))

    def set_rank(bound):
        bound.arguments["self"].mapping.rank = bound.arguments["rank"]

    def from_checkpoint(bound):
        a = bound.arguments
        cls, ckpt_dir, config = a["cls"], a["ckpt_dir"], a.get("config")
        if config is None:
            config = obj[f"{mu}.PretrainedConfig"].from_json_file(os.path.join(ckpt_dir, "config.json"))
        if a.get("rank") is not None:
            config.set_rank(a["rank"])
        m = config.mapping
        path = os.path.join(ckpt_dir, f"rank{m.rank % m.tp_size + m.rank // (m.tp_size * m.cp_size) * m.tp_size}.safetensors")
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        model = cls.__new__(cls)
        model.__dict__.update(config=config, weights_file=path)
        return model

    def build_config_from_dict(bound):
        cls, config = bound.arguments["cls"], dict(bound.arguments["config"])
        known = {f.name for f in dataclasses.fields(cls)}
        plugin = config.pop("plugin_config", None)
        kwargs = {k: v for k, v in config.items() if k in known}  # the real from_dict ignores unknown keys
        pc_cls = obj["tensorrt_llm.plugin.plugin.PluginConfig"]
        plugin_obj = bound.arguments.get("plugin_config") or pc_cls()
        plugin_obj.__dict__.update(plugin or {})  # model_copy(update=...) does not validate either
        kwargs["plugin_config"] = plugin_obj
        return cls(**kwargs)

    def build(bound):
        model, build_config = bound.arguments["model"], bound.arguments["build_config"]
        config = types.SimpleNamespace(pretrained_config=model.config, build_config=build_config, version=FAKE_VERSION)
        return obj["tensorrt_llm.builder.Engine"](config, b"fake engine")

    def engine_save(bound):
        self, engine_dir = bound.arguments["self"], bound.arguments["engine_dir"]
        pretrained, rank = self.config.pretrained_config, self.config.pretrained_config.mapping.rank
        os.makedirs(engine_dir, exist_ok=True)
        record = {"rank": rank, "tp_rank": pretrained.mapping.tp_rank, "pp_rank": pretrained.mapping.pp_rank,
                  "architecture": pretrained.architecture, "gpu": fake.selected_gpu, "pid": os.getpid(),
                  "build_config": _jsonable(self.config.build_config), "calls": [c.name for c in fake.calls]}
        with open(os.path.join(engine_dir, f"rank{rank}.engine"), "w") as f:
            json.dump(record, f, indent=1)
        if rank == 0:
            with open(os.path.join(engine_dir, "config.json"), "w") as f:
                json.dump({"version": FAKE_VERSION, "pretrained_config": _jsonable(pretrained),
                           "build_config": _jsonable(self.config.build_config)}, f, indent=1)

    def tp_rank(self):
        return self.rank % self.tp_size

    def pp_rank(self):
        return self.rank // (self.tp_size * self.cp_size)

    return {
        f"{mu}.PretrainedConfig._fake_post_init": config_post_init,
        f"{mu}.PretrainedConfig.from_dict": from_dict,
        f"{mu}.PretrainedConfig.from_json_file": from_json_file,
        f"{mu}.PretrainedConfig.set_rank": set_rank,
        f"{mu}.PretrainedModel.from_checkpoint": from_checkpoint,
        "tensorrt_llm.builder.BuildConfig.from_dict": build_config_from_dict,
        "tensorrt_llm.builder.build": build,
        "tensorrt_llm.builder.Engine.save": engine_save,
        "tensorrt_llm.mapping.MpiTopology.tp_rank": property(tp_rank),
        "tensorrt_llm.mapping.MpiTopology.pp_rank": property(pp_rank),
    }


def install_in_worker(manifest_path: str = MANIFEST) -> None:
    """ProcessPoolExecutor initializer: a fresh fake in a spawned build worker, with GPU selection recorded."""
    fake = FakeTrtLlm(manifest_path).install()
    import kiln_bridge.build as bridge_build

    def select_gpu(gpu: int) -> None:
        fake.selected_gpu = gpu

    bridge_build.select_gpu = select_gpu
