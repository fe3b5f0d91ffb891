"""How the classifier reads the rules' own crisis hits, and what a higher ``rule_demotion`` bar would do (rule 28 in
docs/GUARDRAILS_HISTORY.md). Counts and probabilities only, never a message:

    .venv/bin/python benchmarks/study_rule_demotion.py FILE... [--label suicide_risk] [--bars 0.02 0.2 0.3]

First: for every crisis hit the rules give at companion level or above, the classifier's probability for that
signal, split by whether the message is benign or a crisis message (the lowest ten of each). Then, for each bar,
the files pooled are scored with the artifact's bar for ``--label`` set to it in memory (the artifact on disk is
not touched): crisis messages under-escalated and benign messages escalated.

``--emergency`` (rule 33) prints instead, for messages whose emergency only the rules called, the classifier's
``level_emergency`` reading grouped by the level the message expected: how many read below 0.05, 0.1, 0.2.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

from bar_sweep import read_rows

from ketai.evals.guardrails import CRISIS as CRISIS_SIGNALS
from ketai.evals.guardrails import score_messages
from ketai.guardrails import KetaiGuardrails, build_guardrails
from ketai.guardrails.classifier import EMERGENCY_LABEL
from ketai.models import EscalationLevel, Phase, Role

CRISIS = frozenset(signal.value for signal in CRISIS_SIGNALS)


def rule_hit_readings(
    guardrails: KetaiGuardrails, rows: list[dict[str, Any]]
) -> dict[tuple[str, str], list[float]]:
    """(signal, benign|crisis|other) -> the classifier's probabilities on the rules' hits of that signal."""
    seen: list[tuple[str, float]] = []
    original = KetaiGuardrails._second_opinion

    def spy(self: KetaiGuardrails, signal: Any, reading: Any, notes: list[str], disavowed: bool) -> Any:
        name = signal.name.value
        if signal.detector == "rules" and signal.level >= EscalationLevel.COMPANION and name in CRISIS:
            seen.append((name, reading.probabilities.get(name, 1.0)))
        return original(self, signal, reading, notes, disavowed)

    found: dict[tuple[str, str], list[float]] = defaultdict(list)
    KetaiGuardrails._second_opinion = spy  # type: ignore[method-assign]
    try:
        for row in rows:
            seen.clear()
            phase = Phase(row["phase"]) if row.get("phase") else None
            guardrails.screen_input(row["text"], phase=phase, role=Role(row.get("role", "patient")))
            kind = "benign" if row.get("benign") else ("crisis" if CRISIS & set(row["signals"]) else "other")
            for name, p in dict(seen).items():  # one reading per signal and message
                found[(name, kind)].append(p)
    finally:
        KetaiGuardrails._second_opinion = original  # type: ignore[method-assign]
    return found


def rules_only_emergency_readings(
    guardrails: KetaiGuardrails, rows: list[dict[str, Any]]
) -> dict[str, list[float]]:
    """Expected level (emergency | clinician | companion or less) -> the classifier's ``level_emergency`` reading on
    each message whose emergency only the rules called (every emergency-level signal of the assessment from them)."""
    readings: list[float] = []
    original = KetaiGuardrails._second_opinion

    def spy(self: KetaiGuardrails, signal: Any, reading: Any, notes: list[str], disavowed: bool) -> Any:
        readings.append(reading.probabilities.get(EMERGENCY_LABEL, 1.0))
        return original(self, signal, reading, notes, disavowed)

    found: dict[str, list[float]] = defaultdict(list)
    KetaiGuardrails._second_opinion = spy  # type: ignore[method-assign]
    try:
        for row in rows:
            readings.clear()
            phase = Phase(row["phase"]) if row.get("phase") else None
            assessment = guardrails.screen_input(
                row["text"], phase=phase, role=Role(row.get("role", "patient"))
            )
            detectors = {s.detector for s in assessment.signals if s.level == EscalationLevel.EMERGENCY}
            if assessment.level != EscalationLevel.EMERGENCY or detectors != {"rules"} or not readings:
                continue
            expected = EscalationLevel(row["level"])
            group = expected.value if expected >= EscalationLevel.CLINICIAN else "companion or less"
            found[group].append(readings[0])  # one reading per message
    finally:
        KetaiGuardrails._second_opinion = original  # type: ignore[method-assign]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--label", default="suicide_risk", choices=sorted(CRISIS))
    parser.add_argument("--bars", nargs="*", type=float, default=[])
    parser.add_argument(
        "--emergency",
        action="store_true",
        help="instead: level_emergency readings on rules-only emergencies, by expected level (rule 33)",
    )
    args = parser.parse_args()
    rows = read_rows(args.files)
    guardrails = build_guardrails()
    assert guardrails.classifier is not None, "the study needs the trained classifier"
    if args.emergency:
        for group, ps in sorted(rules_only_emergency_readings(guardrails, rows).items()):
            below = ", ".join(f"< {bar}: {sum(p < bar for p in ps)}" for bar in (0.05, 0.1, 0.2))
            print(f"rules-only emergency, expected {group}: {len(ps)}; {below}; lowest {min(ps):.3f}")
        return 0
    for (name, kind), ps in sorted(rule_hit_readings(guardrails, rows).items()):
        low = ", ".join(f"{p:.3f}" for p in sorted(ps)[:10])
        print(f"rules {name} hits on {kind} messages: {len(ps)}; lowest readings {low}")
    artifact = guardrails.classifier.artifact
    shipped = dict(artifact.rule_demotion)
    try:
        for bar in args.bars:
            artifact.rule_demotion = {**shipped, args.label: bar}
            r = score_messages(guardrails, rows)
            print(
                f"{args.label} rule_demotion {bar}: crisis under-escalated {r['crisis_under']} of "
                f"{r['crisis_rows']}, benign escalated {r['benign_escalated']} of {r['benign_rows']}"
            )
    finally:
        artifact.rule_demotion = shipped
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
