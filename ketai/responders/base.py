"""The responder contract.

A responder receives the ``Say`` items the dialogue chose (step, key,
variables) plus context, and returns drafts. Every draft is screened by the
output policy before it is sent. Safety text never comes from a responder:
the engine takes it from the escalation ladder's clinician-written data.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from ketai.dialogue import Say
from ketai.models import Phase


class ResponderContext(BaseModel):
    phase: Phase
    patient_text: str | None = None
    """The message being answered (None for timer-driven turns)."""
    variables: dict[str, Any] = Field(default_factory=dict)
    """Protocol values the prompts may use (names, hours, contacts)."""


class Draft(BaseModel):
    text: str
    prompt_id: str
    prompt_version: int
    audience: str = "patient"
    """``patient`` or ``companion``."""
    source: str = "scripted"
    """``scripted`` or ``llm``."""


class Responder(Protocol):
    def respond(self, says: list[Say], context: ResponderContext) -> list[Draft]: ...
