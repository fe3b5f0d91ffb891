"""What each bar of the input classifier does on labelled messages. Counts only, never a message:

    .venv/bin/python benchmarks/study_signal_bars.py FILE... [--labels abuse_or_unsafe_home ...] [--bars 0.3 0.5 0.7]

For each label (default: every label with a bar below 1), with its bar set to each value in memory (the artifact on
disk is not touched), over the files pooled: crisis messages under-escalated, benign messages escalated to
companion or above, other (non-benign, non-crisis) messages given a lower level than expected, and messages raised
to emergency (which puts the session in safety hold) that expected less, each as a change from the artifact's bars.
``--emergency-bars`` sweeps the artifact's lower emergency bars for suicide risk and self-harm the same way. The
network's output is computed once per message and reused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bar_sweep import Measure, Results, read_rows, sweep, sweep_bar, sweep_line

from ketai.evals.guardrails import CRISIS, score_messages
from ketai.guardrails import KetaiGuardrails, build_guardrails
from ketai.guardrails.classifier import NetworkOutput, SignalClassifier

LEVELS = ("none", "monitor", "companion", "clinician", "emergency")
CRISIS_NAMES = frozenset(signal.value for signal in CRISIS)


def memoise_network(classifier: SignalClassifier) -> None:
    """The head and kNN vote depend only on (text, context); blending and bars come after. The blend writes into
    the probabilities, so each call gets a copy."""
    cache: dict[tuple[str, bytes], NetworkOutput] = {}
    compute = classifier._network

    def cached(texts: list[str], contexts: list[Any]) -> NetworkOutput:
        if len(texts) != 1:
            return compute(texts, contexts)
        key = (texts[0], contexts[0].tobytes())
        if key not in cache:
            cache[key] = compute(texts, contexts)
        probs, vote = cache[key]
        return probs.copy(), None if vote is None else vote.copy()

    classifier._network = cached  # type: ignore[method-assign]


def counts(guardrails: KetaiGuardrails, rows: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    """Crisis under-escalated, benign escalated, other non-benign under-escalated, raised to emergency unasked."""
    report = score_messages(guardrails, rows)
    by_id = {row["id"]: row for row in rows}
    other_under = sum(
        1
        for m in report["misses"]
        if not by_id[m["id"]].get("benign")
        and not CRISIS_NAMES & set(m["expected"])
        and LEVELS.index(m["given_level"]) < LEVELS.index(m["expected_level"])
    )
    confusion = report["confusion"]
    over_emergency = sum(
        given.get("emergency", 0) for expected, given in confusion.items() if expected != "emergency"
    )
    return report["crisis_under"], report["benign_escalated"], other_under, over_emergency


EMERGENCY_BARS = ("suicide_emergency_threshold", "self_harm_emergency_threshold")


def sweep_emergency_bar(
    classifier: SignalClassifier, field: str, bars: list[float], measure: Measure
) -> Results:
    """``sweep`` over the artifact's ``field`` (a copy of the artifact per bar; the original put back after)."""
    original = classifier.artifact

    def set_bar(bar: float) -> None:
        classifier.artifact = original.model_copy(update={field: bar})

    def restore() -> None:
        classifier.artifact = original

    return sweep(set_bar, restore, bars, measure)


COUNTS = "crisis under/benign escalated/other under/over emergency"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--labels", nargs="*", default=None)
    parser.add_argument("--bars", nargs="+", type=float, default=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    parser.add_argument(
        "--emergency-bars", action="store_true", help=f"sweep {' and '.join(EMERGENCY_BARS)} too"
    )
    args = parser.parse_args()
    rows = read_rows(args.files)
    guardrails = build_guardrails()
    classifier = guardrails.classifier
    if classifier is None:
        raise SystemExit("the study needs the trained classifier")
    memoise_network(classifier)
    base = counts(guardrails, rows)
    print(
        f"{len(rows)} messages; at the artifact's bars: crisis under {base[0]}, benign escalated {base[1]}, "
        f"other under {base[2]}, raised to emergency unasked {base[3]}"
    )
    labels = args.labels or [
        name for name, t in zip(classifier.labels, classifier.thresholds, strict=True) if t < 1.0
    ]
    for label in labels:
        i = classifier.labels.index(label)
        results = sweep_bar(classifier, i, args.bars, lambda: counts(guardrails, rows))
        print(sweep_line(label, f"bar {classifier.thresholds[i]:.3f}; {COUNTS}", base, results))
    for field in EMERGENCY_BARS if args.emergency_bars else ():
        results = sweep_emergency_bar(classifier, field, args.bars, lambda: counts(guardrails, rows))
        print(sweep_line(field, f"bar {getattr(classifier.artifact, field)}; {COUNTS}", base, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
