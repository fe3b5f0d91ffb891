"""``ketai eval retrieval``: how well ``search`` finds the right exercises for what patients say.

Queries live in ``evals/retrieval/queries.jsonl``: ``{"id", "text", "dimension", "relevant", "split"}``,
written in patient words and labelled by reading the exercises. Only ``dev`` is used for tuning.

Metrics (search with no filters, as the CLI runs it):

* ``hit@3 (id)``: a labelled relevant exercise is in the top 3;
* ``MRR (id)``: mean of 1/rank of the first relevant exercise in the top 10 (0 if none);
* ``hit@3 (dimension)``: some top-3 exercise serves the query's dimension, overall and per dimension;
* query latency p50/p95 in ms (index already built, model loaded).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from ketai.content.paths import content_dir
from ketai.errors import ContentError, KetaiError
from ketai.models import Dimension
from ketai.retrieval.ranking import ExerciseSource
from ketai.retrieval.search import search

TOP_K = 3
MRR_DEPTH = 10
TARGET_DIMENSION_HIT = 0.8
TARGET_P95_MS = 20.0


class RetrievalQuery(BaseModel):
    id: str
    text: str = Field(min_length=3)
    dimension: Dimension
    relevant: list[str] = Field(min_length=1)
    split: Literal["dev", "test"]


class QueryResult(BaseModel):
    id: str
    text: str
    dimension: Dimension
    top: list[str]
    top_dimensions: list[list[str]]
    hit_id: bool
    hit_dimension: bool
    reciprocal_rank: float
    latency_ms: float


class Scorecard(BaseModel):
    split: str
    queries: int
    exercises: int
    hit_at_3_id: float
    mrr_id: float
    hit_at_3_dimension: float
    hit_at_3_dimension_by_dimension: dict[str, float]
    hit_at_3_id_by_dimension: dict[str, float]
    latency_p50_ms: float
    latency_p95_ms: float
    targets: dict[str, bool]
    misses: list[QueryResult]
    results: list[QueryResult]


def queries_file() -> Path:
    return content_dir("evals") / "retrieval" / "queries.jsonl"


def load_queries(path: Path | None = None, split: str = "test") -> list[RetrievalQuery]:
    """Queries of ``split`` (``dev``, ``test`` or ``all``) from ``path`` (default: the shipped file)."""
    source = path or queries_file()
    queries: list[RetrievalQuery] = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            query = RetrievalQuery.model_validate_json(line)
        except ValueError as exc:
            raise ContentError(f"{source.name} line {number}: {exc}") from exc
        if split in ("all", query.split):
            queries.append(query)
    if not queries:
        raise KetaiError(f"no retrieval queries for split {split!r} in {source}")
    return queries


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation), e.g. ``fraction=0.95``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def evaluate(queries: list[RetrievalQuery], index: ExerciseSource, split: str = "test") -> Scorecard:
    exercises = index.exercises
    unknown = sorted({rid for query in queries for rid in query.relevant if rid not in exercises})
    if unknown:
        raise ContentError(f"queries name exercises that are not in the library: {', '.join(unknown)}")
    search("warm up the model and the index", k=1, index=index)
    results: list[QueryResult] = []
    for query in queries:
        started = time.perf_counter()
        hits = search(query.text, k=MRR_DEPTH, index=index)
        latency_ms = (time.perf_counter() - started) * 1000
        top_ids = [hit.id for hit in hits]
        top_dimensions = [[d.value for d in hit.dimensions] for hit in hits[:TOP_K]]
        first = next((rank for rank, hit_id in enumerate(top_ids, 1) if hit_id in query.relevant), None)
        results.append(
            QueryResult(
                id=query.id,
                text=query.text,
                dimension=query.dimension,
                top=top_ids[:TOP_K],
                top_dimensions=top_dimensions,
                hit_id=first is not None and first <= TOP_K,
                hit_dimension=any(query.dimension.value in dims for dims in top_dimensions),
                reciprocal_rank=1.0 / first if first else 0.0,
                latency_ms=round(latency_ms, 3),
            )
        )
    by_dimension: dict[str, list[QueryResult]] = defaultdict(list)
    for result in results:
        by_dimension[result.dimension.value].append(result)
    latencies = [result.latency_ms for result in results]
    dimension_hit = _mean([r.hit_dimension for r in results])
    p95 = percentile(latencies, 0.95)
    return Scorecard(
        split=split,
        queries=len(results),
        exercises=len(exercises),
        hit_at_3_id=_mean([r.hit_id for r in results]),
        mrr_id=round(statistics.fmean(r.reciprocal_rank for r in results), 4),
        hit_at_3_dimension=dimension_hit,
        hit_at_3_dimension_by_dimension={
            name: _mean([r.hit_dimension for r in group]) for name, group in sorted(by_dimension.items())
        },
        hit_at_3_id_by_dimension={
            name: _mean([r.hit_id for r in group]) for name, group in sorted(by_dimension.items())
        },
        latency_p50_ms=round(percentile(latencies, 0.5), 3),
        latency_p95_ms=round(p95, 3),
        targets={
            f"hit@3 by dimension >= {TARGET_DIMENSION_HIT}": dimension_hit >= TARGET_DIMENSION_HIT,
            f"query p95 < {TARGET_P95_MS:g} ms": p95 < TARGET_P95_MS,
        },
        misses=[r for r in results if not (r.hit_id and r.hit_dimension)],
        results=results,
    )


def _mean(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def markdown_report(card: Scorecard) -> str:
    lines = [
        f"# Retrieval eval ({card.split})",
        "",
        f"{card.queries} queries over {card.exercises} exercises; `ketai exercises search` with no filters.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| hit@3 (relevant id) | {card.hit_at_3_id:.3f} |",
        f"| MRR@{MRR_DEPTH} (relevant id) | {card.mrr_id:.3f} |",
        f"| hit@3 (dimension) | {card.hit_at_3_dimension:.3f} |",
        f"| query latency p50 / p95 | {card.latency_p50_ms:.1f} / {card.latency_p95_ms:.1f} ms |",
        "",
        "| dimension | hit@3 (dimension) | hit@3 (id) |",
        "|---|---|---|",
    ]
    for name, value in card.hit_at_3_dimension_by_dimension.items():
        lines.append(f"| {name} | {value:.2f} | {card.hit_at_3_id_by_dimension[name]:.2f} |")
    lines += ["", "## Targets", ""]
    lines += [f"- {'PASS' if ok else 'MISS'}: {name}" for name, ok in card.targets.items()]
    lines += ["", "## Misses (id or dimension not in the top 3)", ""]
    for miss in card.misses:
        lines.append(f'- `{miss.id}` ({miss.dimension.value}) "{miss.text}" -> {", ".join(miss.top)}')
    return "\n".join(lines) + "\n"


def print_scorecard(card: Scorecard, console: Console) -> None:
    table = Table(title=f"Retrieval eval: {card.split} ({card.queries} queries, {card.exercises} exercises)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("hit@3 (id)", f"{card.hit_at_3_id:.3f}")
    table.add_row(f"MRR@{MRR_DEPTH} (id)", f"{card.mrr_id:.3f}")
    table.add_row("hit@3 (dimension)", f"{card.hit_at_3_dimension:.3f}")
    for name, value in card.hit_at_3_dimension_by_dimension.items():
        table.add_row(f"  {name}", f"{value:.2f}")
    table.add_row("latency p50 / p95 (ms)", f"{card.latency_p50_ms:.1f} / {card.latency_p95_ms:.1f}")
    console.print(table)
    for name, ok in card.targets.items():
        console.print(f"{'PASS' if ok else 'MISS'}: {name}")


def run(split: str, out_dir: Path, as_json: bool, index: ExerciseSource | None = None) -> int:
    """Score ``split`` (dev, test or all), write JSON + Markdown into ``out_dir``; exit code 0."""
    from ketai.retrieval.index import default_index

    queries = load_queries(split=split)
    card = evaluate(queries, index if index is not None else default_index(), split)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"retrieval-{split}.json").write_text(card.model_dump_json(indent=2), encoding="utf-8")
    (out_dir / f"retrieval-{split}.md").write_text(markdown_report(card), encoding="utf-8")
    if as_json:
        print(json.dumps(card.model_dump(mode="json")))
    else:
        print_scorecard(card, Console())
        Console().print(f"report: {out_dir / f'retrieval-{split}.md'}")
    return 0
