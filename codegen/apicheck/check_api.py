#!/usr/bin/env python3
"""Command line of the TensorRT-LLM API checker (see checker.py for what is checked).

    python3 check_api.py FILE.py [--manifest PATH]... [--json] [--strict] [--verbose]

Invariants: Python 3.9+ standard library only; FILE is parsed, never imported or run.
Problems print as `FILE:LINE:COL: message` (1-based), or as one JSON object with --json:
{"ok", "problems": [{line, col, message}], "checked", "unverified": [{line, col, name}]}.
Exit status: 0 clean, 1 problems, 2 usage, interpreter or manifest error.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Sequence

from api_manifest import ManifestSet, default_manifest_paths
from checker import Checker
from values import Report


def check_file(path: str, ms: ManifestSet, strict: bool = False) -> Report:
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        return Report(problems=[(e.lineno or 1, e.offset or 1, f"syntax error: {e.msg}")])
    report = Checker(ms).check(tree)
    report.problems = sorted(set(report.problems))
    report.unverified = sorted(set(report.unverified))
    if strict:
        report.problems = sorted(report.problems + [(line, col, f"not covered by the API manifest: {name}")
                                                    for line, col, name in report.unverified])
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Check a Python file against TensorRT-LLM API manifests.")
    ap.add_argument("file")
    ap.add_argument("--manifest", action="append",
                    help="API manifest JSON (repeatable; default: trtllm-1.2.json beside this script)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--strict", action="store_true", help="references the manifests cannot check are problems")
    ap.add_argument("--verbose", action="store_true", help="also list every checked and unverified reference")
    a = ap.parse_args(argv)
    try:
        ms = ManifestSet(a.manifest or default_manifest_paths())
        report = check_file(a.file, ms, a.strict)
    except (OSError, ValueError) as e:
        print(f"check_api: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps({
            "ok": not report.problems,
            "problems": [{"line": ln, "col": c, "message": m} for ln, c, m in report.problems],
            "checked": len(report.checked),
            "unverified": [{"line": ln, "col": c, "name": n} for ln, c, n in report.unverified],
        }))
    else:
        for line, col, message in report.problems:
            print(f"{a.file}:{line}:{col}: {message}")
        for line, col, what in sorted(report.checked) if a.verbose else []:
            print(f"{a.file}:{line}:{col}: ok {what}")
        for line, col, name in report.unverified if a.verbose else []:
            print(f"{a.file}:{line}:{col}: unverified {name}")
        print(f"{a.file}: {len(report.problems)} problem(s), {len(report.checked)} reference(s) checked, "
              f"{len(report.unverified)} unverified")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
