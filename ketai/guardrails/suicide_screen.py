"""Clinician-written suicide screening questions with the triage logic of DOMAIN.md section 4.

The questions (our own words, not the licensed C-SSRS wording) live in ``guardrails/suicide_screen.yaml``.
Everything here is pure: ``next_question`` says what to ask, ``record_answer`` returns a new state,
``triage`` maps answers to a level (intent, plan or behaviour in the last three months -> emergency;
method -> clinician, urgent; wish or thoughts or older behaviour -> clinician; all no -> monitor).

Unclear answers are asked again up to ``max_retries`` times and then counted as yes: missing real risk is
the worse error.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from pydantic import BaseModel, Field

from ketai.guardrails.schema_texts import ScreenItem, ScreenQuestion, SuicideScreenFile
from ketai.models import EscalationLevel

Answer = Literal["yes", "no", "unclear"]
_WORD = re.compile(r"[\w']+")
_NEGATORS = frozenset(
    {"not", "no", "never", "nope", "nah", "don't", "dont", "didn't", "didnt", "haven't", "havent"}
)


class SuicideScreenState(BaseModel):
    """Answers so far (stored with the session, like ``SafetyMemory``)."""

    answers: dict[ScreenItem, Answer] = Field(default_factory=dict)
    retries: dict[ScreenItem, int] = Field(default_factory=dict)
    finished: bool = False


class Triage(BaseModel):
    level: EscalationLevel
    band: Literal["none", "low", "moderate", "high"]
    urgent: bool
    reasons: list[ScreenItem]


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'").strip()


def parse_yes_no(text: str, yes_words: list[str], no_words: list[str]) -> Answer:
    """A small, forgiving yes/no reader. Mixed or empty answers are ``unclear``.

    Multi-word phrases are matched first ("not really" is no even though "really" is not a yes word);
    a yes word right after a negator ("not sometimes") does not count as yes.
    """
    cleaned = _norm(text)
    if not cleaned:
        return "unclear"
    padded = f" {' '.join(_WORD.findall(cleaned))} "
    found_no = False
    for phrase in sorted(no_words, key=len, reverse=True):
        needle = f" {_norm(phrase)} "
        if needle in padded:
            found_no = True
            padded = padded.replace(needle, " ")
    tokens = padded.split()
    found_yes = False
    for phrase in sorted(yes_words, key=len, reverse=True):
        words = _norm(phrase).split()
        for i in range(len(tokens) - len(words) + 1):
            if tokens[i : i + len(words)] == words and not (i > 0 and tokens[i - 1] in _NEGATORS):
                found_yes = True
    if found_yes and not found_no:
        return "yes"
    if found_no and not found_yes:
        return "no"
    return "unclear"


def _positive(state: SuicideScreenState, item: ScreenItem) -> bool:
    return state.answers.get(item) in ("yes", "unclear")


def _applicable(question: ScreenQuestion, state: SuicideScreenState) -> bool:
    return question.ask_if_yes is None or _positive(state, question.ask_if_yes)


def next_question(spec: SuicideScreenFile, state: SuicideScreenState) -> ScreenQuestion | None:
    """The next question to ask, or None when the screen is complete."""
    if state.finished:
        return None
    for question in spec.questions:
        if not _applicable(question, state):
            continue
        answer = state.answers.get(question.id)
        if answer is None:
            return question
        if answer == "unclear" and state.retries.get(question.id, 0) < spec.max_retries:
            return question
    return None


def record_answer(
    spec: SuicideScreenFile, state: SuicideScreenState, item: ScreenItem, text: str
) -> SuicideScreenState:
    """Record the reply to ``item``; returns a new state (the input is not changed)."""
    updated = state.model_copy(deep=True)
    answer = parse_yes_no(text, spec.yes_words, spec.no_words)
    if item in updated.answers and updated.answers[item] == "unclear":
        updated.retries[item] = updated.retries.get(item, 0) + 1
    updated.answers[item] = answer
    updated.finished = next_question(spec, updated) is None
    return updated


def retry_text(spec: SuicideScreenFile, state: SuicideScreenState, item: ScreenItem) -> str | None:
    """The clarifying prompt when the last answer to ``item`` was unclear and a retry is left."""
    if state.answers.get(item) == "unclear" and state.retries.get(item, 0) < spec.max_retries:
        return spec.unclear_retry
    return None


def triage(spec: SuicideScreenFile, state: SuicideScreenState) -> Triage:
    """Map the answers to the ladder. Unclear counts as yes."""
    yes = [item for item in state.answers if _positive(state, item)]
    high = [item for item in spec.emergency_items if item in yes]
    if high:
        return Triage(level=EscalationLevel.EMERGENCY, band="high", urgent=True, reasons=high)
    moderate = [item for item in spec.urgent_items if item in yes]
    if moderate:
        return Triage(level=EscalationLevel.CLINICIAN, band="moderate", urgent=True, reasons=moderate)
    low = [item for item in spec.clinician_items if item in yes]
    if low:
        return Triage(level=EscalationLevel.CLINICIAN, band="low", urgent=False, reasons=low)
    return Triage(level=EscalationLevel.MONITOR, band="none", urgent=False, reasons=[])


def triage_level(spec: SuicideScreenFile, state: SuicideScreenState) -> EscalationLevel:
    return triage(spec, state).level


def closing_text(spec: SuicideScreenFile, state: SuicideScreenState) -> str:
    return spec.closing[triage(spec, state).level]
