"""The out-of-author bars that let the classifier keep a rules-only signal at monitor (``train.rule_demotions``):
they rise only while the missed positives stay inside the label's budget and each lost positive spares enough
benign messages, and the higher bar for messages that re-read their own words applies to those messages alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ketai.guardrails.classifier import EMERGENCY_LABEL
from ketai.guardrails.train import RECOVERABLE_LABELS, SUICIDE_DEMOTION_FLOOR, choose_bars, rule_demotions
from ketai.guardrails.train_data import RuleMatrices
from ketai.models import SignalName

LABELS = [name.value for name in SignalName] + [EMERGENCY_LABEL]
SUICIDE = LABELS.index(SignalName.SUICIDE_RISK.value)
ADVERSE = LABELS.index(SignalName.ADVERSE_EFFECT.value)


def _matrices(strong: npt.NDArray[np.int8], disavowed: npt.NDArray[np.int8]) -> RuleMatrices:
    zeros = np.zeros_like(strong)
    return RuleMatrices(strong, strong, 1 - zeros, zeros, strong.max(axis=1), disavowed)


def _rows(column: int, specs: list[tuple[float, int, int]]) -> tuple[npt.NDArray[np.float64], ...]:
    """``specs``: (classifier score, is positive, re-reads its own words) for rows the rules flag in ``column``."""
    n = len(specs)
    scores = np.full((n, len(LABELS)), 0.5)
    y = np.zeros((n, len(LABELS)), dtype=np.int8)
    strong = np.zeros((n, len(LABELS)), dtype=np.int8)
    disavowed = np.zeros(n, dtype=np.int8)
    for i, (score, positive, rereads) in enumerate(specs):
        scores[i, column], y[i, column], strong[i, column], disavowed[i] = score, positive, 1, rereads
    benign = (1 - y[:, column]).astype(np.int8)
    return scores, y, strong, disavowed, benign


def test_a_crisis_bar_sits_just_above_the_benign_rule_hits_it_spares() -> None:
    # 1,000 suicide positives: 999 scored high and one at 0.12; 20 benign rule hits scored 0.04
    specs = [(0.9, 1, 0)] * 999 + [(0.12, 1, 0)] + [(0.04, 0, 0)] * 20
    scores, y, strong, disavowed, benign = _rows(SUICIDE, specs)
    bars, disavowal, metrics = rule_demotions(scores, y, _matrices(strong, disavowed), benign, LABELS)
    # it stops where it spared the last benign row, not at the grid's top where nothing more is spared
    assert bars[SignalName.SUICIDE_RISK.value] == 0.05
    assert metrics[f"demotion_lost_{SignalName.SUICIDE_RISK.value}"] == 0
    assert metrics[f"demotion_spared_benign_{SignalName.SUICIDE_RISK.value}"] == 20
    assert SignalName.SUICIDE_RISK.value not in disavowal


def test_a_crisis_bar_is_not_bought_with_too_few_false_alarms() -> None:
    specs = [(0.9, 1, 0)] * 999 + [(0.02, 1, 0)] + [(0.04, 0, 0)] * 3
    scores, y, strong, disavowed, benign = _rows(SUICIDE, specs)
    bars, _, _ = rule_demotions(scores, y, _matrices(strong, disavowed), benign, LABELS)
    # below 0.03 it would lose a positive for no benign row spared: no bar at all
    assert SignalName.SUICIDE_RISK.value not in bars


def test_a_crisis_bar_may_lose_a_positive_inside_budget_when_it_spares_enough() -> None:
    specs = [(0.9, 1, 0)] * 999 + [(0.02, 1, 0)] + [(0.01, 0, 0)] * 10 + [(0.04, 0, 0)] * 10
    scores, y, strong, disavowed, benign = _rows(SUICIDE, specs)
    bars, _, metrics = rule_demotions(scores, y, _matrices(strong, disavowed), benign, LABELS)
    assert bars[SignalName.SUICIDE_RISK.value] == 0.05
    assert metrics[f"demotion_lost_{SignalName.SUICIDE_RISK.value}"] == 1
    # with 100 positives one loss is 1%, far over the crisis budget of 0.2%: the bar stays below it
    specs = [(0.9, 1, 0)] * 99 + [(0.02, 1, 0)] + [(0.01, 0, 0)] * 10 + [(0.04, 0, 0)] * 10
    scores, y, strong, disavowed, benign = _rows(SUICIDE, specs)
    bars, _, _ = rule_demotions(scores, y, _matrices(strong, disavowed), benign, LABELS)
    assert bars[SignalName.SUICIDE_RISK.value] == 0.02


def test_the_disavowal_bar_rises_only_on_messages_that_reread_their_words() -> None:
    specs = (
        [(0.9, 1, 0)] * 500
        + [(0.35, 1, 0)]  # a positive at 0.35 told plainly
        + [(0.3, 0, 1)] * 10  # benign messages that re-read their words, scored 0.3
        + [(0.55, 1, 1)]  # a real crisis told with a re-reading, scored 0.55
    )
    scores, y, strong, disavowed, benign = _rows(SUICIDE, specs)
    bars, disavowal, _ = rule_demotions(scores, y, _matrices(strong, disavowed), benign, LABELS)
    assert SignalName.SUICIDE_RISK.value not in bars
    assert disavowal[SignalName.SUICIDE_RISK.value] == 0.32


def test_recoverable_signals_get_a_looser_budget_and_threats_none() -> None:
    assert SignalName.ADVERSE_EFFECT.value in RECOVERABLE_LABELS
    assert SignalName.HARM_TO_OTHERS.value not in RECOVERABLE_LABELS
    assert SignalName.ABUSE_OR_UNSAFE_HOME.value not in RECOVERABLE_LABELS
    # 100 adverse-effect positives: losing one (1%) for six benign rows is inside the recoverable budget (1%, 3:1)
    specs = [(0.9, 1, 0)] * 99 + [(0.05, 1, 0)] + [(0.02, 0, 0)] * 3 + [(0.1, 0, 0)] * 3
    scores, y, strong, disavowed, benign = _rows(ADVERSE, specs)
    bars, _, metrics = rule_demotions(scores, y, _matrices(strong, disavowed), benign, LABELS)
    assert bars[SignalName.ADVERSE_EFFECT.value] == 0.11
    assert metrics[f"demotion_lost_{SignalName.ADVERSE_EFFECT.value}"] == 1


def _saved_scores(path: Path, rows: list[dict[str, object]], held: list[bool]) -> None:
    rng = np.random.default_rng(7)
    np.savez_compressed(
        path,
        scores=rng.random((len(rows), len(LABELS))),
        held=np.array(held),
        labels=np.array(LABELS),
        rows=np.array(json.dumps(rows)),
    )


def test_bars_are_rederived_when_only_the_lexicon_examples_changed(tmp_path: Path) -> None:
    """A rules change adds lexicon examples; the saved out-of-author scores still belong to the authored messages,
    so the bars are recomputed from them (``train --bars-from``). Other authored messages are refused."""
    from ketai.guardrails.loader import load_content
    from ketai.guardrails.rules import RuleEngine
    from ketai.guardrails.train import crisis_floors, rederive_bars

    def row(text: str, signals: list[str], level: str, author: str) -> dict[str, object]:
        benign = level in ("none", "monitor")
        return {"text": text, "role": "patient", "phase": None, "signals": signals, "level": level,
                "benign": benign, "_author": author}  # fmt: skip

    authored = [
        row("I want to die tonight, I have the pills", ["suicide_risk"], "emergency", "a1"),
        row("I keep wishing I would not wake up", ["suicide_risk"], "clinician", "a1"),
        row("this traffic is killing me", [], "none", "a2"),
        row("lunch was lovely, feeling calm", [], "none", "a2"),
    ]
    old_lexicon = [row("lexicon example one", ["suicide_risk"], "clinician", "lexicon")]
    saved = tmp_path / "oof.npz"
    _saved_scores(saved, authored + old_lexicon, [True] * len(authored) + [False])
    artifact = tmp_path / "signal_classifier.json"
    artifact.write_text(json.dumps({"id": "signal-classifier"}), encoding="utf-8")
    engine = RuleEngine(load_content())
    new_lexicon = [
        *old_lexicon,
        row("a new example from today's rules", ["self_harm"], "clinician", "lexicon"),
    ]

    assert rederive_bars(saved, artifact, authored + new_lexicon, engine, LABELS) == 0
    written = json.loads(artifact.read_text(encoding="utf-8"))
    assert set(written["thresholds"]) == set(LABELS) and "veto_override" in written

    other = [*authored[:-1], row("a message the scores were not made for", [], "none", "a2")]
    assert rederive_bars(saved, artifact, other + new_lexicon, engine, LABELS) == 2

    # held at an earlier artifact's crisis bars: never lower than them, and the other labels as derived
    derived = written["thresholds"]
    earlier = tmp_path / "earlier.json"
    high = {label: 0.9 for label in LABELS}
    earlier.write_text(json.dumps({"thresholds": high}), encoding="utf-8")
    floors = crisis_floors(earlier)
    assert set(floors) == {"suicide_risk", "self_harm", "medical_emergency"}
    assert rederive_bars(saved, artifact, authored + new_lexicon, engine, LABELS, floors) == 0
    floored = json.loads(artifact.read_text(encoding="utf-8"))["thresholds"]
    for label in LABELS:
        expected = max(derived[label], 0.9) if label in floors else derived[label]
        assert floored[label] == expected, label
    assert any(floored[label] > derived[label] for label in floors)
    assert crisis_floors(None) == {}


def test_a_held_crisis_bar_reports_the_recall_at_that_bar() -> None:
    from ketai.guardrails.train import choose_thresholds

    n = 102
    probs = np.zeros((n, len(LABELS)))
    y = np.zeros((n, len(LABELS)), dtype=np.int8)
    probs[:2, SUICIDE], y[:2, SUICIDE] = [0.9, 0.5], 1  # two suicide positives
    probs[2:, SUICIDE] = 0.05  # a hundred benign messages the classifier barely leans on
    benign = np.array([0, 0] + [1] * 100, dtype=np.int8)
    allowed = np.ones_like(y)
    free, free_metrics = choose_thresholds(probs, y, allowed, benign, LABELS)
    held, held_metrics = choose_thresholds(probs, y, allowed, benign, LABELS, {"suicide_risk": 0.6})
    assert free["suicide_risk"] == 0.5 and free_metrics["dev_recall_suicide_risk"] == 1.0
    assert held["suicide_risk"] == 0.6 and held_metrics["dev_recall_suicide_risk"] == 0.5
    assert free["self_harm"] == held["self_harm"]


def test_bars_like_copies_every_bar_of_the_shipped_artifact_and_says_so() -> None:
    """``train --bars-like``: one fit, and the bars (with the metrics that chose them) of the artifact it names."""
    from ketai.content.paths import content_dir
    from ketai.guardrails.train import BAR_KEYS, copied_bars

    shipped = content_dir("guardrails") / "classifier" / "signal_classifier.json"
    artifact = json.loads(shipped.read_text(encoding="utf-8"))
    bars, metrics = copied_bars(shipped)
    assert {key: bars[key] for key in BAR_KEYS} == {key: artifact.get(key) for key in BAR_KEYS}
    assert metrics["bars_copied"] == 1.0
    assert {k: v for k, v in metrics.items() if k != "bars_copied"} == {
        k: float(v) for k, v in artifact["metrics"].items() if k != "bars_copied"
    }


def test_bars_like_refuses_options_it_would_ignore() -> None:
    import pytest

    from ketai.guardrails.train import main

    with pytest.raises(SystemExit) as stopped:
        main(["--bars-like", "a.json", "--save-oof", "b.npz"])
    assert stopped.value.code == 2


def test_a_derived_suicide_demotion_bar_is_held_at_rule_28s_floor() -> None:
    # the same rows as the first test: out of author alone the suicide bar would be 0.05
    specs = [(0.9, 1, 0)] * 999 + [(0.12, 1, 0)] + [(0.04, 0, 0)] * 20
    scores, y, strong, disavowed, benign = _rows(SUICIDE, specs)
    held = np.ones(len(specs), dtype=np.bool_)
    bars, _ = choose_bars(scores, held, y, _matrices(strong, disavowed), benign, LABELS)
    assert SUICIDE_DEMOTION_FLOOR == 0.2
    assert bars["rule_demotion"][SignalName.SUICIDE_RISK.value] == SUICIDE_DEMOTION_FLOOR
