"""``ketai eval guardrails|retrieval|sessions``: print a scorecard, write a report under ``evals/reports/``.

Each target is a module ``ketai.evals.<target>`` with
``run(split: str, out_dir: Path, as_json: bool) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

TARGETS = ("guardrails", "retrieval", "sessions")


def default_reports_dir() -> Path:
    """``evals/reports`` in a checkout; ``$KETAI_HOME/reports`` when installed from a wheel."""
    from ketai.content.paths import content_dir
    from ketai.settings import Settings

    evals = content_dir("evals")
    if "_content" in evals.parts:
        return Settings().home_dir / "reports"
    return evals / "reports"


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"ketai.evals.{args.target}")
    out_dir: Path = args.out or default_reports_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    code: int = module.run(split=args.split, out_dir=out_dir, as_json=args.json)
    return code


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("eval", help="run an evaluation and write a report under evals/reports/")
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--split", default="test", help="which labelled split to score (default: test)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: evals/reports/)")
    parser.add_argument("--json", action="store_true", help="print the scorecard as JSON")
    parser.set_defaults(func=_run)
