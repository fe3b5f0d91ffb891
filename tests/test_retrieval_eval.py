"""The retrieval eval: the labelled queries are well formed, and the scorer computes what it says."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from ketai.content.exercises import load_library
from ketai.evals.retrieval import evaluate, load_queries, markdown_report, percentile, queries_file
from ketai.models import Dimension
from ketai.retrieval.index import ExerciseIndex
from ketai.settings import Settings
from tests.conftest import EvalRunner

FIXTURES = Path(__file__).parent / "fixtures" / "exercises"


def test_shipped_queries_are_labelled_against_the_library() -> None:
    queries = load_queries(split="all")
    assert len(queries) >= 70
    assert len({query.id for query in queries}) == len(queries)
    assert len({query.text.lower() for query in queries}) == len(queries)
    library = {exercise.id: exercise for exercise in load_library()}
    for query in queries:
        assert set(query.relevant) <= set(library), query.id
        # The query's dimension is served by at least one of its relevant exercises.
        assert any(query.dimension in library[rid].dimensions for rid in query.relevant), query.id
    splits = Counter(query.split for query in queries)
    assert 0.4 <= splits["dev"] / len(queries) <= 0.6
    for split in ("dev", "test"):
        assert {query.dimension for query in queries if query.split == split} == set(Dimension)


def test_scores_on_a_small_library(tmp_path: Path) -> None:
    library = tmp_path / "library"
    shutil.copytree(FIXTURES, library)
    index = ExerciseIndex.open(Settings(home=tmp_path / "home", chroma_mode="persistent"), library)
    lines = [
        # relevant exercise ranks first
        {
            "id": "q1",
            "text": "I keep asking if the door is locked",
            "dimension": "checking",
            "relevant": ["fixture-door-delay"],
            "split": "dev",
        },
        # labelled with an exercise that is not the best match: reciprocal rank below 1
        {
            "id": "q2",
            "text": "I touched the bin and want to wash",
            "dimension": "defusion",
            "relevant": ["fixture-thought-label"],
            "split": "dev",
        },
    ]
    path = tmp_path / "queries.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    queries = load_queries(path, split="dev")
    card = evaluate(queries, index, "dev")
    by_id = {result.id: result for result in card.results}
    assert card.queries == 2 and card.exercises == 3
    assert by_id["q1"].top[0] == "fixture-door-delay" and by_id["q1"].reciprocal_rank == 1.0
    assert by_id["q2"].top[0] == "fixture-bin-touch"
    assert 0 < by_id["q2"].reciprocal_rank < 1
    assert card.mrr_id == pytest.approx((1 + by_id["q2"].reciprocal_rank) / 2, abs=1e-4)
    assert card.hit_at_3_id == 1.0  # three exercises: everything is in the top 3
    assert card.hit_at_3_dimension_by_dimension == {"checking": 1.0, "defusion": 1.0}
    assert card.latency_p95_ms >= card.latency_p50_ms > 0
    report = markdown_report(card)
    assert "| hit@3 (relevant id) | 1.000 |" in report
    assert card.misses == []


def test_unknown_relevant_ids_are_refused(tmp_path: Path) -> None:
    library = tmp_path / "library"
    shutil.copytree(FIXTURES, library)
    index = ExerciseIndex.open(Settings(home=tmp_path / "home", chroma_mode="persistent"), library)
    path = tmp_path / "queries.jsonl"
    path.write_text(
        json.dumps(
            {"id": "q", "text": "door", "dimension": "checking", "relevant": ["nope"], "split": "test"}
        )
        + "\n"
    )
    with pytest.raises(Exception, match="nope"):
        evaluate(load_queries(path), index)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0], 0.95) == 3.0


@pytest.mark.slow
def test_ketai_eval_retrieval_writes_reports(
    tmp_path: Path, run_eval: EvalRunner, cli_env: dict[str, str]
) -> None:
    out = tmp_path / "reports"
    card = run_eval("retrieval", "dev", out, cli_env)
    dev = [query for query in load_queries(queries_file(), "dev")]
    assert card["queries"] == len(dev)
    for key in ("hit_at_3_id", "mrr_id", "hit_at_3_dimension", "latency_p50_ms", "latency_p95_ms"):
        assert card[key] >= 0
    assert set(card["hit_at_3_dimension_by_dimension"]) == {dimension.value for dimension in Dimension}
    assert (out / "retrieval-dev.json").is_file() and (out / "retrieval-dev.md").is_file()
