"""How safe the two-step kNN search is, and what it costs. Counts and timings only, never a message:

    .venv/bin/python benchmarks/study_knn_candidates.py FILE... [--timed 300]

For every message of the files: where the nearest ``knn_k`` bank sentences by the full float32 product rank among the
graph's ``KNN_CANDIDATES`` (the worst position; the candidates must hold them all) and how far the vote from the
candidates is from the full product's. Then the screening network's time per message (p50 / p95 over the first
``--timed`` messages, one at a time) with the kNN search and without it (the same graph built without a bank).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bar_sweep import read_rows

from ketai.guardrails import build_guardrails
from ketai.guardrails.classifier import vote_from_candidates, vote_from_similarities
from ketai.guardrails.encoder import KNN_CANDIDATES, SignalEncoder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--timed", type=int, default=300)
    args = parser.parse_args()
    texts = [str(row["text"]) for row in read_rows(args.files)]
    classifier = build_guardrails().classifier
    if classifier is None or classifier.bank is None or classifier.bank_labels is None:
        raise SystemExit("the study needs the trained classifier with its kNN bank")
    k = classifier.artifact.knn_k
    worst, outside, vote_gap = 0, 0, 0.0
    for start in range(0, len(texts), 64):
        encoded = classifier.encoder.encode(texts[start : start + 64])
        assert encoded.candidates is not None and encoded.similarities is not None
        full = encoded.state @ classifier.bank.T
        for row, candidates in zip(
            np.argpartition(-full, k - 1, axis=1)[:, :k], encoded.candidates, strict=True
        ):
            position = {int(c): i for i, c in enumerate(candidates)}
            outside += sum(int(r) not in position for r in row)
            worst = max(worst, *(position.get(int(r), KNN_CANDIDATES) for r in row))
        expected = vote_from_similarities(full, classifier.bank_labels, k)
        got = vote_from_candidates(encoded.similarities, encoded.candidates, classifier.bank_labels, k)
        vote_gap = max(vote_gap, float(np.abs(got - expected).max()))
    print(
        f"{len(texts)} messages, bank {classifier.bank.shape[0]}: nearest {k} outside the {KNN_CANDIDATES} "
        f"candidates {outside}; worst position {worst}; largest vote difference {vote_gap:.1e}"
    )
    without_bank = SignalEncoder(classifier.embedder, classifier.tuned_layers, None)
    for name, encoder in (("with the kNN search", classifier.encoder), ("without it", without_bank)):
        encoder.encode(["warm up"])
        timings = []
        for text in texts[: args.timed]:
            started = time.perf_counter()
            encoder.encode([text])
            timings.append((time.perf_counter() - started) * 1000)
        p50, p95 = np.percentile(timings, [50, 95])
        print(f"network {name}: p50 {p50:.2f} ms, p95 {p95:.2f} ms ({len(timings)} messages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
