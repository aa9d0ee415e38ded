"""Make the eager package importable as `tensorrt_llm` inside this process, for the duration of a `with` block.

`as_tensorrt_llm()` puts every module of kiln_bridge.eager_trtllm into sys.modules under the matching
`tensorrt_llm.*` name and restores the previous entries (a real tensorrt_llm, or nothing) afterwards. Nothing is
installed on disk and no other process sees it. Invariant: generated code is imported only inside the block.
"""
from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
from collections.abc import Iterator

from . import __name__ as _PKG

_ALIAS = "tensorrt_llm"


def eager_modules() -> dict[str, object]:
    """{'tensorrt_llm.x.y': module} for every module of the eager package."""
    root = importlib.import_module(_PKG)
    out = {_ALIAS: root}
    for info in pkgutil.walk_packages(root.__path__, prefix=_PKG + "."):
        if info.name.endswith(".alias"):
            continue
        out[_ALIAS + info.name[len(_PKG):]] = importlib.import_module(info.name)
    return out


@contextlib.contextmanager
def as_tensorrt_llm() -> Iterator[None]:
    saved = {k: v for k, v in sys.modules.items() if k == _ALIAS or k.startswith(_ALIAS + ".")}
    for k in saved:
        del sys.modules[k]
    sys.modules.update(eager_modules())
    try:
        yield
    finally:
        for k in [k for k in sys.modules if k == _ALIAS or k.startswith(_ALIAS + ".")]:
            del sys.modules[k]
        sys.modules.update(saved)
