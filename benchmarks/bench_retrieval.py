"""Retrieval benchmark: index build, incremental re-sync, query latency. Prints numbers.

    .venv/bin/python benchmarks/bench_retrieval.py [--json] [--repeat N]

Everything runs in a fresh temporary KETAI_HOME on a temporary copy of the shipped library, with
the persistent Chroma client and the bundled embedding model (no network).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ketai.content.exercises import default_library_dir
from ketai.embeddings import shared_embedder
from ketai.evals.retrieval import load_queries, percentile
from ketai.models import Dimension
from ketai.retrieval.index import ExerciseIndex
from ketai.retrieval.ranking import PatientContext, recommend
from ketai.retrieval.search import search
from ketai.settings import Settings


def timed_ms(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the queries (default 3)")
    args = parser.parse_args()

    results: dict[str, float | int | str] = {}
    with tempfile.TemporaryDirectory(prefix="ketai-bench-") as scratch:
        root = Path(scratch)
        library = root / "library"
        shutil.copytree(default_library_dir(), library)
        settings = Settings(home=root / "home", chroma_mode="persistent")

        results["model_load_ms"] = round(timed_ms(shared_embedder().warm_up), 1)
        started = time.perf_counter()
        index = ExerciseIndex.open(settings, library, recheck_interval_s=0)
        build = index.sync()
        results["full_build_s"] = round(time.perf_counter() - started, 2)
        results["exercises"] = build.added
        results["records"] = build.records

        results["resync_unchanged_ms"] = round(timed_ms(index.sync), 1)
        changed = sorted(library.glob("*.md"))[0]
        changed.write_text(changed.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
        started = time.perf_counter()
        report = index.sync()
        results["resync_one_changed_ms"] = round((time.perf_counter() - started) * 1000, 1)
        results["resync_one_changed_updated"] = report.updated

        started = time.perf_counter()
        ExerciseIndex.open(settings, library).ensure_fresh()
        results["reopen_and_check_ms"] = round((time.perf_counter() - started) * 1000, 1)

        index.recheck_interval_s = 1.0  # as in production: one folder look per second
        queries = load_queries(split="all")
        search("warm up", k=1, index=index)
        search_ms: list[float] = []
        recommend_ms: list[float] = []
        context = PatientContext(dimensions=[Dimension.CHECKING], current_suds=35, companion_available=True)
        for _ in range(max(args.repeat, 1)):
            for query in queries:
                search_ms.append(timed_ms(partial(search, query.text, k=5, index=index)))
                recommend_ms.append(timed_ms(partial(recommend, query.text, context, k=3, index=index)))
        results["queries"] = len(search_ms)
        results["search_p50_ms"] = round(percentile(search_ms, 0.5), 2)
        results["search_p95_ms"] = round(percentile(search_ms, 0.95), 2)
        results["search_mean_ms"] = round(statistics.fmean(search_ms), 2)
        results["recommend_p50_ms"] = round(percentile(recommend_ms, 0.5), 2)
        results["recommend_p95_ms"] = round(percentile(recommend_ms, 0.95), 2)

    if args.json:
        print(json.dumps(results))
        return 0
    print(f"library: {results['exercises']} exercises, {results['records']} Chroma records")
    print(f"model load:               {results['model_load_ms']} ms")
    print(f"full index build:         {results['full_build_s']} s   (target < 30 s)")
    print(f"re-sync, nothing changed: {results['resync_unchanged_ms']} ms")
    print(
        f"re-sync, one file changed: {results['resync_one_changed_ms']} ms "
        f"({results['resync_one_changed_updated']} updated)"
    )
    print(f"reopen + freshness check: {results['reopen_and_check_ms']} ms")
    print(
        f"search    p50 / p95:      {results['search_p50_ms']} / {results['search_p95_ms']} ms "
        f"over {results['queries']} queries (target p95 < 20 ms)"
    )
    print(f"recommend p50 / p95:      {results['recommend_p50_ms']} / {results['recommend_p95_ms']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
