"""The suicide-screen conversation inside a session.

When any suicide-related signal asks for it, KetAI asks the clinician-written
screening questions (``guardrails/suicide_screen.yaml``; our own wording mapped
to the C-SSRS triage logic) one per turn. The checklist or peak guidance
pauses until the screen is finished; the triage level then drives the ladder
(emergency -> safety hold, companion alert, clinician notice). Unclear answers
are retried and then counted as yes (missing real risk is the worse error).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ketai.guardrails.schema_texts import ScreenItem, SuicideScreenFile
from ketai.guardrails.suicide_screen import (
    SuicideScreenState,
    next_question,
    record_answer,
    retry_text,
    triage,
)
from ketai.models import EscalationLevel


class ScreenProgress(BaseModel):
    """Stored in ``SessionRecord.suicide_screen`` while the questions are being asked."""

    state: SuicideScreenState
    asking: ScreenItem | None = None


class ScreenStep(BaseModel):
    texts: list[str]
    """Clinician-written text to show (intro, question, retry, closing)."""
    finished: bool = False
    level: EscalationLevel | None = None
    """Triage level once finished."""
    band: str | None = None
    reasons: list[str] = []


def start_screen(spec: SuicideScreenFile) -> tuple[ScreenProgress, ScreenStep]:
    state = SuicideScreenState()
    question = next_question(spec, state)
    progress = ScreenProgress(state=state, asking=question.id if question else None)
    texts = [spec.intro] + ([question.text] if question else [])
    return progress, ScreenStep(texts=texts)


def answer_screen(
    spec: SuicideScreenFile, progress: ScreenProgress, text: str
) -> tuple[ScreenProgress, ScreenStep]:
    if progress.asking is None:
        return progress, ScreenStep(texts=[], finished=True)
    state = record_answer(spec, progress.state, progress.asking, text)
    retry = retry_text(spec, state, progress.asking)
    question = next_question(spec, state)
    if question is not None:
        texts = ([retry] if retry and question.id == progress.asking else []) + [question.text]
        return ScreenProgress(state=state, asking=question.id), ScreenStep(texts=texts)
    result = triage(spec, state)
    done = ScreenProgress(state=state, asking=None)
    return done, ScreenStep(
        texts=[spec.closing[result.level]], finished=True, level=result.level, band=result.band,
        reasons=[str(r) for r in result.reasons],
    )  # fmt: skip


def load_progress(data: dict[str, Any] | None) -> ScreenProgress | None:
    return None if data is None else ScreenProgress.model_validate(data)
