"""What each column bar of the draft classifier does on drafts screened without their assessment (the contract
format of ``ketai screen --direction output``). Counts only, never a draft:

    .venv/bin/python benchmarks/study_output_bars.py FILE... [--bars 0.4 0.5 0.6 0.7 0.8] [--set LABEL=BAR ...]
        [--no-topics]

First: which rules replaced the safe drafts, and which rules the missed unsafe drafts were labelled with, at the
artifact's bars (or the ``--set`` ones). Then, for each column alone, with its bar set to each value in memory (the
artifact on disk is not touched): unsafe drafts replaced and safe drafts replaced, over the files pooled. ``--set``
changes bars first (in memory too), so a combination is read as the base and each column swept from there. The
classifier's probabilities are computed once per draft and reused, so the sweep costs one pass of the network.
``--no-topics`` drops the policy's ``classifier_topics`` in memory (the classifier may then report any rule without
its topic), to read what the topic requirement does (rule 41 in docs/GUARDRAILS_HISTORY.md).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from bar_sweep import read_rows, sweep_bar, sweep_line

from ketai.evals.guardrails import score_outputs
from ketai.guardrails import KetaiGuardrails, build_guardrails
from ketai.guardrails.output_classifier import FloatArray, OutputClassifier


def memoise_probabilities(classifier: OutputClassifier) -> None:
    """The network's reading depends only on (text, phase, level); the bars are applied after it."""
    cache: dict[tuple[Any, ...], FloatArray] = {}
    compute = classifier.probabilities

    def cached(text: str, phase: Any, level: Any) -> FloatArray:
        key = (text, phase, level)
        if key not in cache:
            cache[key] = compute(text, phase, level)
        return cache[key]

    classifier.probabilities = cached  # type: ignore[method-assign]


def counts(guardrails: KetaiGuardrails, rows: list[dict[str, Any]]) -> tuple[int, int, dict[str, Any]]:
    report = score_outputs(guardrails, rows, level_blind=True)
    unsafe_caught = report["unsafe"] - sum(1 for f in report["failures"] if f["expected"] == "replace")
    safe_replaced = sum(1 for f in report["failures"] if f["expected"] == "pass")
    return unsafe_caught, safe_replaced, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--bars", nargs="+", type=float, default=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    parser.add_argument("--set", nargs="*", default=[], metavar="LABEL=BAR")
    parser.add_argument("--no-sweep", action="store_true", help="only the counts at the (--set) bars")
    parser.add_argument("--no-topics", action="store_true", help="drop classifier_topics (in memory)")
    args = parser.parse_args()
    rows = read_rows(args.files)
    guardrails = build_guardrails()
    classifier = guardrails.output_policy.classifier
    if classifier is None:
        raise SystemExit("no draft classifier in this build")
    memoise_probabilities(classifier)
    if args.no_topics:
        guardrails.output_policy.classifier_topics = {}
    for item in args.set:
        label, _, bar = item.partition("=")
        if label not in classifier.artifact.labels:
            parser.error(
                f"--set {item}: no column {label!r}; columns: {', '.join(classifier.artifact.labels)}"
            )
        classifier.thresholds[classifier.artifact.labels.index(label)] = np.float32(float(bar))
    caught, false, report = counts(guardrails, rows)
    print(f"{len(rows)} drafts: {report['unsafe']} unsafe, {report['safe']} safe")
    bars = {
        k: round(float(v), 3) for k, v in zip(classifier.artifact.labels, classifier.thresholds, strict=True)
    }
    print(f"bars {bars}")
    print(f"at these bars: unsafe replaced {caught}, safe replaced {false}")
    fired: Counter[str] = Counter(
        r for f in report["failures"] if f["expected"] == "pass" for r in f["fired"]
    )
    missed: Counter[str] = Counter(f["rule"] for f in report["failures"] if f["expected"] == "replace")
    print(f"   safe drafts replaced, by rule fired: {dict(fired.most_common())}")
    print(f"   unsafe drafts missed, by labelled rule: {dict(missed.most_common())}")
    if args.no_sweep:
        return 0
    for i, label in enumerate(classifier.artifact.labels):
        results = sweep_bar(classifier, i, args.bars, lambda: counts(guardrails, rows)[:2])
        print(sweep_line(label, "unsafe/safe replaced vs these bars", (caught, false), results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
