"""The guardrail contract the engine relies on.

The engine calls, for every turn:

1. ``screen_input(text, phase=, role=, memory=)`` -> ``Assessment``
2. ``actions_for(assessment, phase=, role=, locale=)`` -> ``EscalationActions``
   (deterministic, clinician-written text only; never waits for a responder)
3. ``screen_output(draft, phase=, assessment=)`` -> ``OutputVerdict``

``SafetyMemory`` is the session's risk memory; the engine stores it with
every turn and passes it back on the next one. ``remember`` returns the
updated memory (pure: no I/O).
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field

from ketai.models import Assessment, EscalationLevel, OutputVerdict, Phase, Role, SignalName


class RiskEvent(BaseModel):
    signal: SignalName
    level: EscalationLevel
    turn_seq: int
    phase: Phase | None = None


class SafetyMemory(BaseModel):
    """What the session remembers about risk (stored with each turn)."""

    risk_events: list[RiskEvent] = Field(default_factory=list)
    reassurance_counts: dict[str, int] = Field(default_factory=dict)
    """Reassurance-seeking count per topic within this session."""
    turn_seq: int = 0

    @property
    def highest_recent(self) -> EscalationLevel:
        return EscalationLevel.highest([e.level for e in self.risk_events])


class EscalationActions(BaseModel):
    """What one assessment requires, from the ladder (data in ``guardrails/``)."""

    level: EscalationLevel = EscalationLevel.NONE
    patient_text: str | None = None
    """Clinician-written text to show the patient (crisis text, safety text)."""
    patient_text_id: str | None = None
    companion_alert: str | None = None
    """Text the companion must see and acknowledge."""
    companion_ack_required: bool = False
    clinician_notice: bool = False
    safety_hold: bool = False
    """Put the session in ``safety_hold``: no further dosing or peak guidance."""
    block_dosing: bool = False
    """Dosing may not proceed until a clinician clears it."""
    start_suicide_screen: bool = False
    """Ask the clinician-written suicide screening questions next."""


class Guardrails(Protocol):
    def screen_input(
        self, text: str, *, phase: Phase | None, role: Role, memory: SafetyMemory | None = None
    ) -> Assessment: ...

    def remember(
        self, memory: SafetyMemory, assessment: Assessment, *, phase: Phase | None
    ) -> SafetyMemory: ...

    def actions_for(
        self, assessment: Assessment, *, phase: Phase | None, role: Role, locale: str
    ) -> EscalationActions: ...

    def screen_output(
        self, draft: str, *, phase: Phase | None, assessment: Assessment | None
    ) -> OutputVerdict: ...
