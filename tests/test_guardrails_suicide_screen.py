"""Suicide screen: question flow, the yes/no reader and the triage table (DOMAIN.md section 4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketai.guardrails import load_content
from ketai.guardrails.schema_texts import SuicideScreenFile
from ketai.guardrails.suicide_screen import (
    SuicideScreenState,
    next_question,
    parse_yes_no,
    record_answer,
    triage,
    triage_level,
)
from ketai.models import EscalationLevel as L

SPEC: SuicideScreenFile = load_content().suicide_screen


def answer_all(answers: dict[str, str]) -> SuicideScreenState:
    state = SuicideScreenState()
    while (question := next_question(SPEC, state)) is not None:
        state = record_answer(SPEC, state, question.id, answers.get(question.id, "no"))
    return state


TRIAGE = [
    ({}, L.MONITOR, "none"),
    ({"wish_dead": "yes"}, L.CLINICIAN, "low"),
    ({"wish_dead": "yes", "thoughts": "yes"}, L.CLINICIAN, "low"),
    ({"thoughts": "yes", "method": "yes"}, L.CLINICIAN, "moderate"),
    ({"thoughts": "yes", "intent": "yes"}, L.EMERGENCY, "high"),
    ({"thoughts": "yes", "plan": "yeah I have"}, L.EMERGENCY, "high"),
    ({"behaviour": "yes", "behaviour_recent": "no"}, L.CLINICIAN, "low"),
    ({"behaviour": "yes", "behaviour_recent": "yes"}, L.EMERGENCY, "high"),
]


@pytest.mark.parametrize(("answers", "level", "band"), TRIAGE)
def test_triage_table(answers: dict[str, str], level: L, band: str) -> None:
    state = answer_all(answers)
    assert state.finished
    result = triage(SPEC, state)
    assert (result.level, result.band) == (level, band)
    assert triage_level(SPEC, state) == level


def test_no_to_thoughts_skips_to_behaviour() -> None:
    state = answer_all({"wish_dead": "yes", "thoughts": "no"})
    assert list(state.answers) == ["wish_dead", "thoughts", "behaviour"]


def test_unclear_is_asked_again_then_counted_as_yes() -> None:
    state = SuicideScreenState()
    first = next_question(SPEC, state)
    assert first is not None and first.id == "wish_dead"
    state = record_answer(SPEC, state, "wish_dead", "hmm")
    again = next_question(SPEC, state)
    assert again is not None and again.id == "wish_dead"
    state = record_answer(SPEC, state, "wish_dead", "I don't know")
    nxt = next_question(SPEC, state)
    assert nxt is not None and nxt.id == "thoughts"
    assert triage_level(SPEC, answer_all({"wish_dead": "?", "thoughts": "no"})) == L.CLINICIAN


def test_questions_come_from_the_file_and_are_our_own_words() -> None:
    texts = [q.text for q in SPEC.questions]
    assert len(texts) == 7 and all(t.endswith("?") or t.endswith(".") for t in texts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("Yeah, sometimes", "yes"),
        ("kinda", "yes"),
        ("sí", "yes"),
        ("no", "no"),
        ("Nope.", "no"),
        ("not really", "no"),
        ("never", "no"),
        ("I have not", "no"),
        ("", "unclear"),
        ("what do you mean?", "unclear"),
        ("yes and no", "unclear"),
        ("not sometimes", "unclear"),
    ],
)
def test_yes_no_reader(text: str, expected: str) -> None:
    assert parse_yes_no(text, SPEC.yes_words, SPEC.no_words) == expected


@given(st.text(max_size=200))
def test_yes_no_reader_never_crashes(text: str) -> None:
    assert parse_yes_no(text, SPEC.yes_words, SPEC.no_words) in ("yes", "no", "unclear")
