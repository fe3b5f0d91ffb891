"""Shared by the bar studies (``study_output_bars.py``, ``study_signal_bars.py``, ``study_rule_demotion.py``):
reading labelled files and changing one classifier bar in memory at a time. Run the studies as scripts from the
repository root; their own folder is then on the import path."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt


class HasThresholds(Protocol):
    thresholds: npt.NDArray[np.float32]


def read_rows(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Every JSON line of every file, in order."""
    return [
        json.loads(line) for p in paths for line in p.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


Measure = Callable[[], tuple[int, ...]]
Results = list[tuple[float, tuple[int, ...]]]


def sweep(
    set_bar: Callable[[float], None], restore: Callable[[], None], bars: Sequence[float], measure: Measure
) -> Results:
    """``measure()`` after ``set_bar(bar)`` for each bar in turn, then ``restore()``, also on error. The artifact on
    disk is never touched."""
    results = []
    try:
        for bar in bars:
            set_bar(bar)
            results.append((bar, measure()))
    finally:
        restore()
    return results


def sweep_bar(classifier: HasThresholds, column: int, bars: Sequence[float], measure: Measure) -> Results:
    """``sweep`` over the bar of ``column`` in the classifier's thresholds."""
    original = classifier.thresholds.copy()

    def set_bar(bar: float) -> None:
        classifier.thresholds = original.copy()
        classifier.thresholds[column] = np.float32(bar)

    def restore() -> None:
        classifier.thresholds = original

    return sweep(set_bar, restore, bars, measure)


def sweep_line(label: str, header: str, base: tuple[int, ...], results: Results) -> str:
    """One printed line: each bar with the change of every count from ``base``."""
    cells = ["/".join(f"{v - b:+d}" for v, b in zip(values, base, strict=True)) for _, values in results]
    return f"{label} ({header}): " + "  ".join(
        f"{bar:.2f}: {cell}" for (bar, _), cell in zip(results, cells, strict=True)
    )
