"""Checks the argument shape of one call against a manifest parameter list, as Python binds them.

Invariants:
- Pure: no AST and no manifest access; parameters are the manifest's `params` records
  ({name, kind, has_default}) with `self`/`cls` already removed.
- Messages are one line and carry no location; the caller adds the callee and the line.
- When the call spreads `*args` or `**kwargs`, only what is certain is reported: a spread
  may supply any positional or keyword parameter, so "missing" is not claimed for those.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

POSITIONAL = ("positional_only", "positional_or_keyword")
BY_KEYWORD = ("positional_or_keyword", "keyword_only")


@dataclass(frozen=True)
class ArgProblem:
    message: str
    keyword: str | None = None  # the keyword argument at fault, if one is
    positional_index: int | None = None  # the positional argument at fault, if one is


@dataclass(frozen=True)
class CallShape:
    n_positional: int  # positional arguments, not counting `*spread`
    keywords: tuple[str, ...]  # explicit `name=` arguments, in order
    star_args: bool  # the call spreads `*iterable`
    star_kwargs: bool  # the call spreads `**mapping`


def did_you_mean(name: str, candidates: Sequence[str]) -> str:
    """Hint for a misspelt name: a candidate extending it (kv_cache -> kv_cache_params), else the closest."""
    extending = sorted((c for c in candidates if c.startswith(name) and c != name), key=len)
    close = extending[:1] or difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_arguments(params: Sequence[dict[str, Any]], call: CallShape,
                    explicit_self: bool = False) -> list[ArgProblem]:
    """Problems binding `call` to `params`; `explicit_self`: an instance method called through
    its class (`Base.__init__(self, ...)`), whose first positional argument is the instance."""
    n_pos = call.n_positional
    first = 0  # index of the first positional argument that binds a parameter
    if explicit_self:
        if n_pos == 0 and not call.star_args:
            return [ArgProblem("missing the instance argument (called through the class, pass 'self' first)")]
        n_pos, first = max(n_pos - 1, 0), 1
    positional = [p["name"] for p in params if p["kind"] in POSITIONAL]
    by_keyword = [p["name"] for p in params if p["kind"] in BY_KEYWORD]
    positional_only = {p["name"] for p in params if p["kind"] == "positional_only"}
    var_positional = any(p["kind"] == "var_positional" for p in params)
    var_keyword = any(p["kind"] == "var_keyword" for p in params)

    problems: list[ArgProblem] = []
    if n_pos > len(positional) and not var_positional:
        keyword_only = [p["name"] for p in params if p["kind"] == "keyword_only"]
        why = f"; keyword-only: {', '.join(keyword_only)}" if keyword_only else ""
        problems.append(ArgProblem(f"takes at most {len(positional)} positional argument(s), {n_pos} given{why}",
                                   positional_index=first + len(positional)))
    filled = set(positional[:n_pos])
    for k in call.keywords:
        if k in positional_only and not var_keyword:
            problems.append(ArgProblem(f"positional-only argument '{k}' passed by keyword", keyword=k))
        elif k not in by_keyword and not var_keyword:
            problems.append(ArgProblem(f"unknown keyword argument '{k}'{did_you_mean(k, by_keyword)}", keyword=k))
        elif k in filled and not call.star_args:
            problems.append(ArgProblem(f"argument '{k}' given by position and by keyword", keyword=k))
    missing = _missing(params, filled | set(call.keywords), call)
    if missing:
        problems.append(ArgProblem("missing required argument(s) " + ", ".join(f"'{m}'" for m in missing)))
    return problems


def _missing(params: Sequence[dict[str, Any]], given: set, call: CallShape) -> list[str]:
    out = []
    for p in params:
        if p["has_default"] or p["name"] in given or p["kind"] not in POSITIONAL + ("keyword_only",):
            continue
        may_be_spread = (call.star_args and p["kind"] in POSITIONAL) or \
            (call.star_kwargs and p["kind"] in BY_KEYWORD)
        if not may_be_spread:
            out.append(p["name"])
    return out
