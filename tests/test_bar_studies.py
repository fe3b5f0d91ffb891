"""The bar studies in ``benchmarks/`` change a classifier's bars in memory only, and always put them back."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bar_sweep import sweep_bar, sweep_line
from study_signal_bars import sweep_emergency_bar

from ketai.content.paths import content_dir
from ketai.embeddings import shared_embedder
from ketai.guardrails.classifier import ARTIFACT_NAME, SignalClassifier


class Bars:
    def __init__(self) -> None:
        self.thresholds = np.array([0.5, 0.25], dtype=np.float32)


def test_a_bar_sweep_measures_each_bar_and_restores_the_bars_even_when_a_measure_fails() -> None:
    bars = Bars()
    seen: list[float] = []

    def measure() -> tuple[int, ...]:
        seen.append(float(bars.thresholds[1]))
        return (int(bars.thresholds[1] * 100),)

    results = sweep_bar(bars, 1, [0.3, 0.7], measure)
    assert seen == pytest.approx([0.3, 0.7])
    assert [values for _, values in results] == [(30,), (70,)]
    assert list(bars.thresholds) == pytest.approx([0.5, 0.25])
    assert sweep_line("x", "bar 0.25", (25,), results) == "x (bar 0.25): 0.30: +5  0.70: +45"

    def failing() -> tuple[int, ...]:
        raise RuntimeError("measure failed")

    with pytest.raises(RuntimeError):
        sweep_bar(bars, 0, [0.9], failing)
    assert list(bars.thresholds) == pytest.approx([0.5, 0.25])


def test_an_emergency_bar_sweep_restores_the_artifact_even_when_a_measure_fails() -> None:
    classifier = SignalClassifier.load(
        content_dir("guardrails") / "classifier" / ARTIFACT_NAME, shared_embedder()
    )
    original = classifier.artifact
    seen: list[float | None] = []

    def measure() -> tuple[int, ...]:
        seen.append(classifier.artifact.suicide_emergency_threshold)
        if len(seen) == 2:
            raise RuntimeError("measure failed")
        return (len(seen),)

    with pytest.raises(RuntimeError):
        sweep_emergency_bar(classifier, "suicide_emergency_threshold", [0.2, 0.6], measure)
    assert seen == [0.2, 0.6]
    assert classifier.artifact is original
