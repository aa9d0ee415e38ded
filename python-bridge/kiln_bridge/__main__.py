"""Command line: `python -m kiln_bridge verify|build|calibrate|eval|tokenize ...`.

Exit codes: 0 success; 1 verification outside tolerance; 2 a malformed or unsupported checkpoint, a missing
tensorrt_llm, or bad arguments (one line on stderr naming the file, tensor or field at fault).
"""
from __future__ import annotations

import argparse
import sys

from . import build, torch_commands, verify
from .errors import BridgeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiln_bridge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    verify.add_arguments(sub.add_parser("verify", help="execute a TensorRT-LLM checkpoint in PyTorch and compare "
                                                       "with golden logits"))
    build.add_arguments(sub.add_parser("build", help="build TensorRT engines for every rank of a checkpoint"))
    torch_commands.add_arguments(sub)
    args = parser.parse_args(argv)
    commands = {"verify": verify.main, "build": build.main}
    try:
        return commands.get(args.command, torch_commands.main)(args)
    except BridgeError as e:
        print(f"kiln_bridge {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
