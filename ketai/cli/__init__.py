"""The ``ketai`` console script: parse, call the engine, render with rich.

Each command group lives in its own module with a ``register(subparsers)``
function that adds its parsers and sets ``func`` (``args -> exit code``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ketai.errors import KetaiError

_COMMAND_MODULES = (
    "ketai.cli.session_cmds",
    "ketai.cli.screen",
    "ketai.cli.exercises",
    "ketai.cli.evals",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ketai",
        description="KetAI: session companion for at-home ketamine therapy for OCD (offline by default).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name in _COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KetaiError as exc:
        print(f"ketai: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nketai: interrupted; everything said so far is saved.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(main())
