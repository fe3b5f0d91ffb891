"""Our own clinician-written text must pass our own output policy, and ordinary answers must not alarm.

Every scripted prompt is screened like any draft before it is sent; a policy that replaces the checklist's
own questions would break every session (and train companions to ignore us). Likewise the plain answers a
session needs ("swallowed", "placed", "146/92" at the BP step) must not raise a safety signal by themselves.
"""

from __future__ import annotations

from functools import cache

import pytest

from ketai.content.prompts import load_prompt_book
from ketai.guardrails import KetaiGuardrails, build_guardrails
from ketai.models import EscalationLevel, Phase, Role

PHASE_OF_FILE = {
    "scripted.pre_session": Phase.PRE_SESSION,
    "scripted.dosing": Phase.DOSING,
    "scripted.peak": Phase.PEAK,
    "scripted.integration": Phase.INTEGRATION,
    "scripted.common": None,
    "scripted.companion": None,
}
VARIABLES = {
    "patient_name": "Sam", "companion_name": "Jamie", "clinic_name": "Example Clinic", "prescriber": "Dr. Rivera",
    "dose_text": "one troche as labelled on your pharmacy bottle", "formulation": "troche", "hold_minutes": "15",
    "fasting_hours": "3", "no_substances_hours": "24", "bp_max_systolic": 140, "bp_max_diastolic": 90,
    "on_call_hours": "weekdays 8:00-18:00 Eastern", "on_call_contact": "the clinic line on your care card",
    "checkin_interval_minutes": "15", "intention": "let the doubt be there", "hold_remaining": "5 min 10 s",
    "systolic": 150, "diastolic": 96, "exercise_title": "Put a timer between you and the recheck",
    "exercise_list": "\n  1. Put a timer between you and the recheck: wait ten minutes before any check.",
}  # fmt: skip


@cache
def guardrails() -> KetaiGuardrails:
    return build_guardrails()


def _rendered() -> list[tuple[str, Phase | None, str]]:
    book = load_prompt_book()
    variables = dict(VARIABLES) | guardrails().ladder.locale_values("US")
    cases = []
    for step, (prompt_file, texts) in book._index.items():
        for key, raw in texts.items():
            for variant in range(len(raw) if isinstance(raw, list) else 1):
                text = book.render(step, key, variables, variant=variant)
                cases.append((text.id, PHASE_OF_FILE[prompt_file.id], text.text))
    return cases


@pytest.mark.parametrize(
    ("prompt_id", "phase", "text"), _rendered(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_scripted_prompt_passes_the_output_policy(
    prompt_id: str, phase: Phase | None, text: str
) -> None:
    for screened_phase in {phase, None}:
        verdict = guardrails().screen_output(text, phase=screened_phase, assessment=None)
        assert verdict.verdict == "pass", f"{prompt_id} replaced in {screened_phase}: {verdict.rules}"


ORDINARY_ANSWERS = [
    ("swallowed", Phase.DOSING), ("done, I swallowed what was left", Phase.DOSING), ("spat it out", Phase.DOSING),
    ("placed", Phase.DOSING), ("ok it's under my tongue", Phase.DOSING), ("yes", Phase.PRE_SESSION),
    ("no", Phase.PRE_SESSION), ("none", Phase.PRE_SESSION), ("yes it matches", Phase.PRE_SESSION),
    ("ready", Phase.PEAK), ("I'm back, ready", Phase.PEAK), ("about 45", Phase.PRE_SESSION),
    ("6", Phase.PRE_SESSION), ("1", Phase.INTEGRATION), ("none for now", Phase.INTEGRATION),
    ("yes, last ate at 7 this morning", Phase.PRE_SESSION), ("to be kinder to myself", Phase.PRE_SESSION),
]  # fmt: skip


@pytest.mark.parametrize(("text", "phase"), ORDINARY_ANSWERS)
def test_ordinary_session_answers_raise_no_alarm(text: str, phase: Phase) -> None:
    assessment = guardrails().screen_input(text, phase=phase, role=Role.PATIENT)
    assert assessment.level < EscalationLevel.COMPANION, assessment.signals
