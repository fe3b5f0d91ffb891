"""``ketai exercises search|lint|sync|show``: the integration-exercise library from the command line.

``search TEXT [--dimension D] [--max-suds N] [--k K] [--json]`` is a contract: with ``--json`` it
prints a list of ``{"id", "title", "score", "dimensions"}``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from ketai.errors import KetaiError
from ketai.models import Dimension, ExerciseKind


def _dimension_arg(value: str) -> Dimension:
    from ketai.retrieval.search import parse_dimension

    try:
        return parse_dimension(value)
    except KetaiError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _suds_arg(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"SUDS must be a whole number 0-100, got {value!r}") from exc
    if not 0 <= number <= 100:
        raise argparse.ArgumentTypeError(f"SUDS must be between 0 and 100, got {number}")
    return number


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from exc
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _search(args: argparse.Namespace) -> int:
    from ketai.retrieval.search import search

    text = " ".join(args.text)
    hits = search(text, dimension=args.dimension, max_suds=args.max_suds, k=args.k)
    if args.json:
        print(json.dumps([hit.contract_dict() for hit in hits], ensure_ascii=False))
        return 0
    console = Console()
    if not hits:
        console.print("No exercise matches these filters.")
        return 0
    table = Table(title=f"Exercises for: {text}", show_lines=False)
    for column in ("#", "id", "title", "score", "dimensions", "kind", "SUDS"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        table.add_row(
            str(rank),
            hit.id,
            hit.title,
            f"{hit.score:.3f}",
            ", ".join(dimension.value for dimension in hit.dimensions),
            hit.kind.value,
            f"{hit.suds_min}-{hit.suds_max}",
        )
    console.print(table)
    return 0


def _lint(args: argparse.Namespace) -> int:
    from ketai.content.exercises import lint_library

    result = lint_library(args.path)
    if args.json:
        payload: dict[str, Any] = {
            "directory": result.directory,
            "files": result.files,
            "exercises": len(result.exercises),
            "problems": [problem.model_dump() for problem in result.problems],
        }
        print(json.dumps(payload, ensure_ascii=False))
        return 1 if result.problems else 0
    console = Console()
    if result.problems:
        table = Table(title=f"{len(result.problems)} problem(s) in {result.directory}")
        for column in ("file", "field", "reason"):
            table.add_column(column, overflow="fold")
        for problem in result.problems:
            table.add_row(Path(problem.file).name, problem.field, problem.reason)
        console.print(table)
        return 1
    dimensions = Counter(d.value for exercise in result.exercises for d in exercise.dimensions)
    kinds = Counter(exercise.kind.value for exercise in result.exercises)
    console.print(f"{len(result.exercises)} exercises in {result.directory}: no problems.")
    missing_dimensions = [d.value for d in Dimension if not dimensions[d.value]]
    missing_kinds = [k.value for k in ExerciseKind if not kinds[k.value]]
    console.print("dimensions: " + ", ".join(f"{name} {count}" for name, count in sorted(dimensions.items())))
    console.print("kinds: " + ", ".join(f"{name} {count}" for name, count in sorted(kinds.items())))
    if missing_dimensions or missing_kinds:
        console.print(f"not covered yet: {', '.join(missing_dimensions + missing_kinds)}")
    return 0


def _sync(args: argparse.Namespace) -> int:
    from ketai.retrieval.index import ExerciseIndex
    from ketai.retrieval.store import ExerciseStore, make_client
    from ketai.settings import Settings

    settings = Settings()
    client = make_client(settings)
    if args.rebuild:
        existing = {collection.name for collection in client.list_collections()}
        if settings.chroma_collection in existing:
            client.delete_collection(settings.chroma_collection)
    index = ExerciseIndex(ExerciseStore(client, settings.chroma_collection), args.path)
    report = index.sync()
    if args.json:
        print(json.dumps(report.model_dump()))
        return 0
    where = (
        f"{settings.chroma_host}:{settings.chroma_port}"
        if settings.chroma_mode == "http"
        else settings.chroma_path
    )
    Console().print(
        f"synced {settings.chroma_collection} ({where}): added {report.added}, updated {report.updated}, "
        f"unchanged {report.unchanged}, removed {report.removed}; {report.records} records "
        f"in {report.seconds:.2f} s"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from ketai.content.exercises import load_library

    exercises = {exercise.id: exercise for exercise in load_library(args.path)}
    exercise = exercises.get(args.id)
    if exercise is None:
        close = [known for known in sorted(exercises) if args.id in known][:5]
        hint = f" (did you mean: {', '.join(close)}?)" if close else ""
        raise KetaiError(f"no exercise with id {args.id!r}{hint}")
    if args.json:
        print(exercise.model_dump_json())
        return 0
    console = Console()
    console.print(f"[bold]{exercise.title}[/bold]  ({exercise.id}, v{exercise.version})")
    console.print(exercise.summary)
    facts = Table(show_header=False, box=None)
    facts.add_column("field", style="dim")
    facts.add_column("value", overflow="fold")
    facts.add_row("dimensions", ", ".join(d.value for d in exercise.dimensions))
    facts.add_row("kind", exercise.kind.value)
    facts.add_row("SUDS", f"{exercise.suds_min}-{exercise.suds_max}")
    facts.add_row("duration", f"{exercise.duration_minutes} min")
    facts.add_row("timing", ", ".join(t.value for t in exercise.timing))
    facts.add_row("companion", exercise.companion_role)
    facts.add_row("contraindications", ", ".join(c.value for c in exercise.contraindications) or "none")
    if exercise.max_post_session_suds is not None:
        facts.add_row("max post-session SUDS", str(exercise.max_post_session_suds))
    if exercise.feared_outcome:
        facts.add_row("feared outcome", exercise.feared_outcome)
    facts.add_row("rationale", exercise.rationale)
    console.print(facts)
    console.print(Markdown(exercise.body))
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``ketai exercises ...`` to the ketai parser."""
    parser = sub.add_parser("exercises", help="search, lint, sync or show integration exercises")
    commands = parser.add_subparsers(dest="exercises_command", required=True)

    search = commands.add_parser("search", help="find exercises by meaning")
    search.add_argument("text", nargs="+", help="what the patient said or what you are looking for")
    search.add_argument(
        "--dimension",
        type=_dimension_arg,
        default=None,
        help="only this dimension (enum value, or an alias: just_right, religious, moral, health...)",
    )
    search.add_argument(
        "--max-suds", type=_suds_arg, default=None, help="only exercises that can start at or below this SUDS"
    )
    search.add_argument("--k", type=_positive_int, default=5, help="how many results (default 5)")
    search.add_argument("--json", action="store_true", help='print [{"id","title","score","dimensions"}]')
    search.set_defaults(func=_search)

    lint = commands.add_parser("lint", help="check every exercise file; exit 1 if any problem")
    lint.add_argument(
        "--path", type=Path, default=None, help="folder to check (default: the shipped library)"
    )
    lint.add_argument("--json", action="store_true")
    lint.set_defaults(func=_lint)

    sync = commands.add_parser("sync", help="build or refresh the Chroma index (only changed files)")
    sync.add_argument("--path", type=Path, default=None, help="library folder (default: the shipped library)")
    sync.add_argument("--rebuild", action="store_true", help="delete the collection first and re-embed all")
    sync.add_argument("--json", action="store_true")
    sync.set_defaults(func=_sync)

    show = commands.add_parser("show", help="print one exercise")
    show.add_argument("id")
    show.add_argument("--path", type=Path, default=None, help="library folder (default: the shipped library)")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
